"""The prober with real ICMP on loopback; silence is real (an nftables drop rule), not a mock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitor.engine import Engine
from monitor.model import EventKind, Ont, Severity, Status
from monitor.prober import Prober
from monitor.sweep import Sweeper, detect_icmp_mode
from storage.queries import Queries
from tests.conftest import ManualClock
from tests.netfilter import is_loopback, missing_privileges, nft_table, silence_rule

MODE = detect_icmp_mode()
pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(MODE == "none", reason="no ICMP socket allowed on this machine"),
    pytest.mark.skipif(
        missing_privileges("nft") is not None, reason=missing_privileges("nft") or ""
    ),
]


@pytest.fixture
def sweeper() -> Iterator[Sweeper]:
    s = Sweeper(timeout=0.3, allowed=is_loopback)  # the guard: tests probe loopback only
    yield s
    s.close()


def onts(prefix: str, n: int, area: str) -> list[Ont]:
    return [
        Ont(id=f"{area}-{i}", name=f"{area} {i}", area=area, ip=f"{prefix}.{i}")
        for i in range(1, n + 1)
    ]


async def test_silent_onts_go_off_after_down_after_sweeps(
    engine: Engine, sweeper: Sweeper, clock: ManualClock, reads: Queries
) -> None:
    # One silent ONT in each of four areas: no area has a mass outage.
    answering = onts("127.3.0", 30, "Answer")
    silent = [
        Ont(id=f"S{i}", name=f"Silent {i}", area=f"Area{i}", ip=f"127.2.0.{i}") for i in range(1, 5)
    ]
    await engine.upsert(answering + silent)
    prober = Prober(engine, sweeper, interval=5, clock=clock)
    with nft_table(silence_rule("127.2.0.0/16")):
        first = await prober.sweep_once()
        assert (first.targets, first.replied, first.silent, first.held) == (34, 30, 4, False)
        assert engine.get("Answer-1")[1].status is Status.ON  # type: ignore[index]
        s1 = engine.get("S1")[1]  # type: ignore[index]
        assert (s1.status, s1.rto_count, s1.severity) == (Status.UNKNOWN, 1, Severity.WARNING)
        clock.advance(seconds=5)
        await prober.sweep_once()
        s1 = engine.get("S1")[1]  # type: ignore[index]
        assert (s1.status, s1.rto_count) == (Status.OFF, 2)  # down_after = 2
        clock.advance(seconds=5)
        await prober.sweep_once()
        assert engine.get("S1")[1].severity is Severity.CRITICAL  # type: ignore[index]
    clock.advance(seconds=5)
    await prober.sweep_once()  # the rule is gone: they answer again
    s1 = engine.get("S1")[1]  # type: ignore[index]
    assert (s1.status, s1.rto_count, s1.incident) == (Status.ON, 0, None)
    kinds = [(n.ont_id, n.kind) for n in reversed(await reads.notifications(ont_id="S1"))]
    assert kinds == [("S1", "opened"), ("S1", "escalated"), ("S1", "resolved")]
    assert await reads.notifications(ont_id="Answer-1") == []


async def test_monitor_losing_its_network_is_one_alert(
    engine: Engine, sweeper: Sweeper, clock: ManualClock, reads: Queries
) -> None:
    fleet = onts("127.2.1", 30, "Baciro")
    await engine.upsert(fleet)
    prober = Prober(engine, sweeper, interval=5, clock=clock, silent_share=0.9)
    await prober.sweep_once()
    with nft_table(silence_rule("127.2.0.0/16")):
        for _ in range(4):
            clock.advance(seconds=5)
            report = await prober.sweep_once()
            assert report.held and report.silent == 30
    assert all(s.status is Status.ON for _, s in engine.items())  # transitions were held
    clock.advance(seconds=5)
    report = await prober.sweep_once()
    assert not report.held and report.replied == 30
    kinds = [n.kind for n in reversed(await reads.notifications())]
    assert kinds == [EventKind.MONITOR_OFFLINE.value, EventKind.MONITOR_ONLINE.value]


async def test_a_silent_area_is_one_mass_outage(
    engine: Engine, sweeper: Sweeper, clock: ManualClock, reads: Queries
) -> None:
    await engine.upsert(onts("127.3.1", 20, "Demangan") + onts("127.2.2", 12, "Baciro"))
    prober = Prober(engine, sweeper, interval=5, clock=clock)
    await prober.sweep_once()
    with nft_table(silence_rule("127.2.0.0/16")):
        for _ in range(3):
            clock.advance(seconds=5)
            await prober.sweep_once()
    notes = await reads.notifications()
    area_events = [n for n in notes if not n.ont_id]
    assert [n.kind for n in area_events] == ["mass_outage"]
    assert len(area_events[0].payload["members"]) == 12
    # The members' own messages are folded into it: the first lost probe opened their
    # incidents and the outage was seen in that same sweep.
    assert all(not n.payload["notify"] for n in notes if n.ont_id)
