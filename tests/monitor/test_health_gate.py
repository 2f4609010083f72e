"""The self-health gate: its minimum of 10 probed ONTs and its strict `>` pinned, table-driven.

First the pure rule (gate_holds), then the same boundaries through the real prober with real
ICMP on loopback, the silence made by an nftables drop rule (as in test_prober.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from monitor.engine import Engine
from monitor.model import Ont
from monitor.prober import MIN_GATE_TARGETS, Prober, gate_holds
from monitor.sweep import Sweeper, detect_icmp_mode
from tests.conftest import ManualClock
from tests.netfilter import is_loopback, missing_privileges, nft_table, silence_rule


@dataclass(frozen=True)
class Case:
    name: str
    targets: int
    silent: int
    share: float
    holds: bool


CASES = [
    Case("all_silent_at_the_minimum", 10, 10, 0.9, True),
    Case("all_silent_below_the_minimum", 9, 9, 0.9, False),  # 9 ONTs all down may be real
    Case("one_all_silent", 1, 1, 0.9, False),
    Case("no_targets", 0, 0, 0.9, False),
    Case("exactly_the_share_is_not_more", 10, 9, 0.9, False),  # `>`, not `>=`
    Case("exactly_the_share_of_100", 100, 90, 0.9, False),
    Case("just_above_the_share_of_100", 100, 91, 0.9, True),
    Case("just_below_the_share_of_1000", 1000, 899, 0.9, False),
    Case("just_above_the_share_of_1000", 1000, 901, 0.9, True),
    Case("share_one_never_holds", 50, 50, 1.0, False),
    Case("half_share", 20, 11, 0.5, True),
    Case("half_share_exactly", 20, 10, 0.5, False),
    Case("none_silent", 500, 0, 0.9, False),
]


def test_the_minimum_is_ten() -> None:
    assert MIN_GATE_TARGETS == 10


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_gate_holds(case: Case) -> None:
    assert gate_holds(case.targets, case.silent, case.share) is case.holds


# -- the same boundaries through the prober, real ICMP on loopback ------------------------

MODE = detect_icmp_mode()
NO_NFT = missing_privileges("nft")

REAL = [
    Case("ten_all_silent_holds", 10, 10, 0.9, True),
    Case("nine_all_silent_passes", 9, 9, 0.9, False),
    Case("nine_of_ten_silent_passes", 10, 9, 0.9, False),
]


@pytest.fixture
def sweeper() -> Iterator[Sweeper]:
    s = Sweeper(timeout=0.3, allowed=is_loopback)  # the guard: tests probe loopback only
    yield s
    s.close()


@pytest.mark.privileged
@pytest.mark.skipif(MODE == "none", reason="no ICMP socket allowed on this machine")
@pytest.mark.skipif(NO_NFT is not None, reason=NO_NFT or "")
@pytest.mark.parametrize("case", REAL, ids=lambda c: c.name)
async def test_prober_gate(
    engine: Engine, sweeper: Sweeper, clock: ManualClock, case: Case
) -> None:
    # Silent ONTs on 127.7.1.x (dropped), answering ones on 127.7.2.x; one area each.
    silent = [Ont(id=f"s{i}", area="Sepi", ip=f"127.7.1.{i}") for i in range(1, case.silent + 1)]
    answering = [
        Ont(id=f"a{i}", area="Ramai", ip=f"127.7.2.{i}")
        for i in range(1, case.targets - case.silent + 1)
    ]
    await engine.upsert(silent + answering)
    prober = Prober(engine, sweeper, interval=5, clock=clock, silent_share=case.share)
    with nft_table(silence_rule("127.7.1.0/24")):
        report = await prober.sweep_once()
    assert (report.targets, report.silent) == (case.targets, case.silent)
    assert report.held is case.holds and prober.holding is case.holds
    # Held: no ONT's state moved. Not held: the silent ONTs counted their lost echo.
    counted = [engine.states[o.id].rto_count for o in silent]
    assert counted == ([0] * case.silent if case.holds else [1] * case.silent)
