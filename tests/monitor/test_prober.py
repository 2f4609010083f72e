"""The prober with real ICMP on loopback; silence is real (an nftables drop rule), not a mock."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from monitor.engine import Engine
from monitor.model import EventKind, Ont, Severity, Status
from monitor.prober import Prober
from monitor.rounds import CANARIES
from monitor.sweep import Sweeper, SweepResult, detect_icmp_mode
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


# -- the quick second echo (monitor.rounds) ----------------------------------------------


def with_gone(answering: list[Ont], ip: str) -> list[Ont]:
    """The answering ONTs and G, alone in its area (no mass outage), at ip."""
    return [*answering, Ont(id="G", area="Gone", ip=ip)]


class SteppingClock:
    """The test's clock, moved one second at each read: each echo's time is its own."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    def __call__(self) -> datetime:
        return self.clock.advance(seconds=1)


async def test_an_ont_going_silent_is_off_within_one_round(
    engine: Engine, sweeper: Sweeper, clock: ManualClock, reads: Queries
) -> None:
    await engine.upsert(with_gone(onts("127.3.2", 20, "Answer"), "127.2.3.1"))
    prober = Prober(engine, sweeper, interval=5, clock=SteppingClock(clock))
    first = await prober.sweep_once()
    assert (first.replied, first.retried) == (21, 0)  # a healthy network: one echo each
    with nft_table(silence_rule("127.2.3.1")):
        clock.advance(seconds=5)
        report = await prober.sweep_once()
        assert (report.targets, report.silent, report.retried) == (21, 1, 1)
        assert prober.retries == 1 + CANARIES  # G, and 10 answering ONTs along with it
        assert "1 retried" in report.reason
        g = engine.get("G")[1]  # type: ignore[index]
        assert (g.status, g.rto_count) == (Status.OFF, 2)  # down_after 2, in one round
        # Both echoes applied, in time order, each at the time it was known.
        rows = [r for r in reversed(await reads.history("G")) if r.rto_count]
        assert [r.rto_count for r in rows] == [1, 2]
        assert rows[0].at < rows[1].at
        clock.advance(seconds=5)
        later = await prober.sweep_once()
        assert later.retried == 0  # silent last time: no more echoes for an ONT long dark
        assert engine.get("G")[1].rto_count == 3  # type: ignore[index]
    clock.advance(seconds=5)
    back = await prober.sweep_once()
    assert (back.replied, back.retried) == (21, 0)
    assert engine.get("G")[1].status is Status.ON  # type: ignore[index]


async def test_with_the_retry_off_it_takes_two_sweeps(
    engine: Engine, sweeper: Sweeper, clock: ManualClock
) -> None:
    await engine.upsert(with_gone(onts("127.3.3", 12, "Answer"), "127.2.4.1"))
    prober = Prober(engine, sweeper, interval=5, clock=clock, retry=False)
    await prober.sweep_once()
    with nft_table(silence_rule("127.2.4.1")):
        clock.advance(seconds=5)
        report = await prober.sweep_once()
        assert report.retried == 0
        g = engine.get("G")[1]  # type: ignore[index]
        assert g.rto_count == 1 and g.status is not Status.OFF
        clock.advance(seconds=5)
        await prober.sweep_once()
        assert engine.get("G")[1].status is Status.OFF  # type: ignore[index]


async def test_after_a_restart_an_ont_that_was_on_is_retried(
    engine: Engine, sweeper: Sweeper, clock: ManualClock
) -> None:
    await engine.upsert(with_gone(onts("127.3.4", 12, "Answer"), "127.2.5.1"))
    await Prober(engine, sweeper, interval=5, clock=clock).sweep_once()  # all ON
    fresh = Prober(engine, sweeper, interval=5, clock=clock)  # knows nothing of past echoes
    with nft_table(silence_rule("127.2.5.1")):
        clock.advance(seconds=5)
        report = await fresh.sweep_once()
    assert report.retried == 1  # the engine's state said ON
    assert engine.get("G")[1].status is Status.OFF  # type: ignore[index]


async def test_the_gate_holding_retries_nothing_and_remembers_who_answered(
    engine: Engine, sweeper: Sweeper, clock: ManualClock
) -> None:
    await engine.upsert(onts("127.2.6", 12, "Baciro"))
    prober = Prober(engine, sweeper, interval=5, clock=clock)
    await prober.sweep_once()
    with nft_table(silence_rule("127.2.6.0/24")):
        clock.advance(seconds=5)
        held = await prober.sweep_once()
        assert held.held and held.retried == 0
    # Back, but one ONT stays silent: it answered before the gate held, so it is retried.
    with nft_table(silence_rule("127.2.6.1")):
        clock.advance(seconds=5)
        report = await prober.sweep_once()
    assert not report.held and report.retried == 1
    assert engine.get("Baciro-1")[1].status is Status.OFF  # type: ignore[index]


@dataclass
class Board:
    """The AgentBoard port, as monitor.agents.AgentDesk answers it: a fixed assignment."""

    theirs: frozenset[str]
    asked: int = 0

    def statuses(self) -> Sequence[Any]:
        return ()

    def assigned(self) -> frozenset[str]:
        self.asked += 1
        return self.theirs

    async def refresh(self) -> None:
        """Nothing to bring up to date: the assignment is fixed."""


async def test_onts_an_agent_sweeps_are_left_to_it(
    engine: Engine, sweeper: Sweeper, clock: ManualClock
) -> None:
    mine = onts("127.3.5", 12, "Pusat")
    theirs = onts("127.2.7", 5, "Pop2")
    await engine.upsert(mine + theirs)
    board = Board(frozenset(o.id for o in theirs))
    engine.agents = board
    prober = Prober(engine, sweeper, interval=5, clock=clock)
    with nft_table(silence_rule("127.2.7.0/24")):
        report = await prober.sweep_once()
    assert (report.targets, report.replied, report.silent) == (12, 12, 0)
    assert board.asked == 1  # once per sweep, not once per ONT
    assert all(engine.get(o.id)[1].rto_count == 0 for o in theirs)  # type: ignore[index]
    assert all(engine.get(o.id)[1].status is Status.UNKNOWN for o in theirs)  # type: ignore[index]
    board.theirs = frozenset()  # revoked: the centre sweeps them again
    report = await prober.sweep_once()
    assert report.targets == 17


@dataclass
class CutAfterSweep:
    """The real sweeper; after its next full sweep the monitor's network is cut (a rule)."""

    sweeper: Sweeper
    rules: ExitStack
    armed: bool = False

    @property
    def mode(self) -> str:
        return self.sweeper.mode

    async def sweep(self, addresses: Sequence[str]) -> SweepResult:
        result = await self.sweeper.sweep(addresses)
        if self.armed:
            self.armed = False
            self.rules.enter_context(nft_table(silence_rule("127.2.8.0/24")))
        return result


async def test_a_cut_right_after_a_sweep_is_held_not_off(
    engine: Engine, sweeper: Sweeper, clock: ManualClock, reads: Queries
) -> None:
    fleet = onts("127.2.8", 40, "Baciro")
    await engine.upsert(fleet)
    with ExitStack() as rules:
        cutting = CutAfterSweep(sweeper, rules)
        prober = Prober(engine, cutting, interval=5, clock=clock)
        await prober.sweep_once()
        rules.enter_context(nft_table(silence_rule("127.2.8.37-127.2.8.40")))
        cutting.armed = True
        clock.advance(seconds=5)
        report = await prober.sweep_once()
        assert (report.held, report.retried) == (True, 4)  # 4 of one area: no mass outage
        # The sweep's own echoes were applied before the retry, as without it (rto 1); the
        # retry's were not: no ONT is OFF.
        rto = {o.id: engine.states[o.id].rto_count for o in fleet}
        assert rto == {o.id: int(o.id in {f"Baciro-{i}" for i in range(37, 41)}) for o in fleet}
        assert all(s.status is not Status.OFF for _, s in engine.items())
    clock.advance(seconds=5)
    back = await prober.sweep_once()
    assert not back.held and back.replied == 40
    kinds = [n.kind for n in reversed(await reads.notifications()) if not n.ont_id]
    assert kinds == [EventKind.MONITOR_OFFLINE.value, EventKind.MONITOR_ONLINE.value]


@dataclass
class Spy:
    """The real sweeper, noting G's rto count in the engine when each sweep is asked for."""

    sweeper: Sweeper
    engine: Engine
    seen: list[tuple[int, int]]  # (addresses swept, G's rto count then)

    @property
    def mode(self) -> str:
        return self.sweeper.mode

    async def sweep(self, addresses: Sequence[str]) -> SweepResult:
        self.seen.append((len(addresses), self.engine.states["G"].rto_count))
        return await self.sweeper.sweep(addresses)


async def test_the_first_lost_echo_is_applied_before_the_retry(
    engine: Engine, sweeper: Sweeper, clock: ManualClock, reads: Queries
) -> None:
    """The retry must not delay the incident opening at the first lost echo by a timeout."""
    await engine.upsert(with_gone(onts("127.3.6", 20, "Answer"), "127.2.9.1"))
    spy = Spy(sweeper, engine, [])
    prober = Prober(engine, spy, interval=5, clock=clock)
    await prober.sweep_once()
    with nft_table(silence_rule("127.2.9.1")):
        clock.advance(seconds=5)
        await prober.sweep_once()
    assert spy.seen == [(21, 0), (21, 0), (1 + CANARIES, 1)]  # rto 1 stored before the retry
    assert [n.kind for n in await reads.notifications(ont_id="G")] == ["opened"]
