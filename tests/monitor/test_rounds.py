"""probe_round: the quick second echo to addresses that just went silent.

First the decision logic with a small scripted sweeper (which addresses are retried, when
the gate stops the retry, echo order and times, counts), then the same with the real
Sweeper on loopback, the silence made by an nftables drop rule (as in test_sweep.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TypeVar

import pytest

from monitor import prober
from monitor.rounds import CANARIES, MIN_GATE_TARGETS, Round, Sweeps, gate_holds, probe_round
from monitor.sweep import ProbeResult, Sweeper, SweepResult, detect_icmp_mode
from tests.netfilter import (
    is_loopback,
    missing_privileges,
    nft_table,
    require_loopback,
    silence_rule,
)

T0 = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)


@dataclass
class ScriptedSweeper:
    """Implements the Sweeps protocol from a script: sweep n answers every address except
    silent[n] (the last entry repeats); errors names addresses that get an error instead."""

    silent: list[set[str]]
    errors: list[set[str]] = field(default_factory=list)
    mode: str = "scripted"
    calls: list[list[str]] = field(default_factory=list)

    async def sweep(self, addresses: Sequence[str]) -> SweepResult:
        n = len(self.calls)
        self.calls.append(list(addresses))
        silent = self.silent[min(n, len(self.silent) - 1)]
        failing = self.errors[min(n, len(self.errors) - 1)] if self.errors else set()
        results = {}
        for a in addresses:
            if a in failing:
                results[a] = ProbeResult(a, False, None, "sendto: refused")
            elif a in silent:
                results[a] = ProbeResult(a, False)
            else:
                results[a] = ProbeResult(a, True, 0.1)
        replied = sum(1 for r in results.values() if r.replied)
        errors = sum(1 for r in results.values() if r.error)
        return SweepResult(MappingProxyType(results), 0.0, 0.01, len(results), replied, errors)


class StepClock:
    """A wall clock that moves one second each time it is read: echo times tell the reads."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> datetime:
        self.reads += 1
        return T0 + timedelta(seconds=self.reads)


def addrs(n: int, prefix: str = "127.23.0") -> list[str]:
    return [f"{prefix}.{i}" for i in range(1, n + 1)]


def addrs_wide(n: int) -> list[str]:
    return [f"127.23.{i // 250}.{i % 250 + 1}" for i in range(n)]


def always(_a: str) -> bool:
    return True


async def run(
    sweeper: ScriptedSweeper,
    addresses: Sequence[str],
    answered_last: Callable[[str], bool] = always,
    silent_share: float = 0.9,
) -> tuple[Round, StepClock]:
    wall = StepClock()
    result = await probe_round(
        sweeper, addresses, wall=wall, answered_last=answered_last, silent_share=silent_share
    )
    return result, wall


# -- the decision logic -------------------------------------------------------------------


async def test_a_healthy_network_is_one_sweep() -> None:
    sweeper = ScriptedSweeper(silent=[set()])
    result, wall = await run(sweeper, addrs(20))
    assert len(sweeper.calls) == 1 and wall.reads == 1
    assert (result.targets, result.replied, result.silent, result.retried) == (20, 20, 0, 0)
    assert all(e == (result.echoes[a][0],) and e[0].replied for a, e in result.echoes.items())
    assert not result.held


async def test_silent_now_but_answered_last_is_swept_again_alone() -> None:
    targets = addrs(20)
    gone, dark = targets[3], targets[7]
    sweeper = ScriptedSweeper(silent=[{gone, dark}])
    result, _ = await run(sweeper, targets, answered_last=lambda a: a != dark)
    # gone again, with canaries that answered (dark was silent last time: no retry).
    answered = [a for a in targets if a not in (gone, dark)]
    assert sweeper.calls == [targets, [gone, *answered[:CANARIES]]]
    assert (result.retried, result.canaries, result.held) == (1, CANARIES, False)
    assert set(result.echoes) == set(targets)  # canaries are a check, not echoes of the round
    assert all(len(result.echoes[a]) == 1 for a in answered)
    first, second = result.echoes[gone]
    assert (first.replied, second.replied) == (False, False)
    assert (first.at, second.at) == (T0 + timedelta(seconds=1), T0 + timedelta(seconds=2))
    assert len(result.echoes[dark]) == 1 and not result.echoes[dark][0].replied
    assert (result.replied, result.silent) == (18, 2)


async def test_an_echo_lost_once_and_answered_on_the_retry_counts_as_replied() -> None:
    targets = addrs(12)
    sweeper = ScriptedSweeper(silent=[{targets[0]}, set()])
    result, _ = await run(sweeper, targets)
    assert [e.replied for e in result.echoes[targets[0]]] == [False, True]
    assert result.last(targets[0]) is True
    assert (result.replied, result.silent, result.retried) == (12, 0, 1)


async def test_answered_last_is_asked_only_of_the_silent() -> None:
    targets = addrs(15)
    asked: list[str] = []
    sweeper = ScriptedSweeper(silent=[{targets[2], targets[9]}])

    def answered_last(a: str) -> bool:
        asked.append(a)
        return True

    await run(sweeper, targets, answered_last=answered_last)
    assert asked == [targets[2], targets[9]]


async def test_when_the_gate_holds_nothing_is_retried() -> None:
    targets = addrs(MIN_GATE_TARGETS)
    sweeper = ScriptedSweeper(silent=[set(targets)])
    result, wall = await run(sweeper, targets)
    assert result.held and result.retried == 0
    assert len(sweeper.calls) == 1 and wall.reads == 1
    assert (result.replied, result.silent) == (0, MIN_GATE_TARGETS)


@dataclass(frozen=True)
class GateCase:
    name: str
    targets: int
    silent: int
    share: float


GATE_CASES = [
    GateCase("all_silent_below_the_minimum", 9, 9, 0.9),
    GateCase("exactly_the_share", 10, 9, 0.9),
    GateCase("just_above_the_share", 100, 91, 0.9),
    GateCase("just_below_the_share", 100, 90, 0.9),
    GateCase("half_share_above", 20, 11, 0.5),
]


@pytest.mark.parametrize("case", GATE_CASES, ids=lambda c: c.name)
async def test_the_gate_decides_on_the_first_sweep(case: GateCase) -> None:
    targets = addrs(case.targets)
    sweeper = ScriptedSweeper(silent=[set(targets[: case.silent])])
    result, _ = await run(sweeper, targets, silent_share=case.share)
    holds = gate_holds(case.targets, case.silent, case.share)
    assert result.held is holds
    assert result.retried == (0 if holds else case.silent)
    assert len(sweeper.calls) == (1 if holds else 2)


async def test_an_address_given_twice_gets_one_echo_and_one_retry() -> None:
    sweeper = ScriptedSweeper(silent=[{"127.23.0.1"}])
    result, _ = await run(sweeper, ["127.23.0.1", "127.23.0.2", "127.23.0.1"])
    assert sweeper.calls == [["127.23.0.1", "127.23.0.2"], ["127.23.0.1", "127.23.0.2"]]
    assert result.targets == 2 and len(result.echoes["127.23.0.1"]) == 2
    assert result.canaries == 1 and not result.held  # too few for the gate to judge


@dataclass(frozen=True)
class CanaryCase:
    name: str
    targets: int
    gone: int  # silent from the first sweep on (swept last: a cut during the sweep)
    canaries_lost: int  # of the canaries, silent in the retry
    canaries: int
    held: bool


CANARY_CASES = [
    CanaryCase("all_canaries_silent_holds", 100, 30, 10, 10, True),
    CanaryCase("nine_of_ten_is_not_more_than_the_share", 100, 30, 9, 10, False),
    CanaryCase("one_canary_lost_is_an_ont", 100, 30, 1, 10, False),
    CanaryCase("the_spread_is_over_the_answering", 1000, 400, 10, 10, True),
    CanaryCase("fewer_than_ten_answering_never_holds", 20, 11, 9, 9, False),
]


@pytest.mark.parametrize("case", CANARY_CASES, ids=lambda c: c.name)
async def test_canaries_tell_a_cut_in_the_monitors_network(case: CanaryCase) -> None:
    targets = addrs(case.targets) if case.targets <= 254 else addrs_wide(case.targets)
    gone = set(targets[case.targets - case.gone :])
    answered = targets[: case.targets - case.gone]
    step = max(1, len(answered) // CANARIES)
    canaries = answered[::step][:CANARIES]
    assert len(canaries) == case.canaries
    lost = set(canaries[: case.canaries_lost])
    sweeper = ScriptedSweeper(silent=[gone, gone | lost])
    result, _ = await run(sweeper, targets)
    assert sweeper.calls[1] == [*sorted(gone, key=targets.index), *canaries]
    assert result.held is case.held
    assert (result.retried, result.canaries) == (case.gone, case.canaries)
    assert (result.canaries_lost, result.blind) == (case.canaries_lost, case.gone + len(lost))
    # The canaries' second echoes are not the round's: their ONTs answered this round.
    assert all(result.last(a) for a in canaries)


async def test_errors_count_the_latest_echo() -> None:
    targets = addrs(12)
    flaky, broken = targets[0], targets[1]
    # The first sweep fails both sends; the retry sends flaky's, broken's fails again.
    sweeper = ScriptedSweeper(silent=[set()], errors=[{flaky, broken}, {broken}])
    result, _ = await run(sweeper, targets)
    assert result.retried == 2
    assert result.errors == 1
    assert result.last(flaky) and not result.last(broken)


async def test_on_first_is_told_the_sweep_before_the_retry_goes_out() -> None:
    targets = addrs(20)
    sweeper = ScriptedSweeper(silent=[{targets[4]}])
    told: list[tuple[int, Round]] = []

    async def on_first(partial: Round) -> None:
        told.append((len(sweeper.calls), partial))

    result = await probe_round(
        sweeper, targets, wall=StepClock(), answered_last=always, on_first=on_first
    )
    [(calls_then, partial)] = told
    assert calls_then == 1  # the retry was not sent yet
    assert (partial.retried, partial.replied, partial.silent, partial.held) == (1, 19, 1, False)
    assert all(len(e) == 1 for e in partial.echoes.values())
    assert len(result.echoes[targets[4]]) == 2  # the round returned has both


async def test_on_first_is_told_a_held_sweep_too() -> None:
    targets = addrs(12)
    sweeper = ScriptedSweeper(silent=[set(targets)])
    told: list[Round] = []

    async def on_first(partial: Round) -> None:
        told.append(partial)

    await probe_round(sweeper, targets, wall=StepClock(), answered_last=always, on_first=on_first)
    assert [(r.held, r.retried) for r in told] == [(True, 0)]


async def test_no_addresses_is_an_empty_round() -> None:
    sweeper = ScriptedSweeper(silent=[set()])
    result, _ = await run(sweeper, [])
    assert (result.targets, result.retried, result.held, dict(result.echoes)) == (0, 0, False, {})


def test_the_prober_still_exports_the_gate() -> None:
    assert prober.gate_holds is gate_holds and prober.MIN_GATE_TARGETS == MIN_GATE_TARGETS


# -- the real sweeper on loopback ---------------------------------------------------------

MODE = detect_icmp_mode()
NO_NFT = missing_privileges("nft")
TIMEOUT = 0.3
F = TypeVar("F")


def real(test: F) -> F:
    """Real ICMP and nftables: skipped without them (ci_guard fails such skips on CI)."""
    for mark in (
        pytest.mark.privileged,
        pytest.mark.skipif(MODE == "none", reason="no ICMP socket allowed on this machine"),
        pytest.mark.skipif(NO_NFT is not None, reason=NO_NFT or ""),
    ):
        test = mark(test)
    return test


@pytest.fixture
def sweeper() -> Iterator[Sweeper]:
    s = Sweeper(timeout=TIMEOUT, allowed=is_loopback)  # the guard: tests probe loopback only
    yield s
    s.close()


def wall() -> datetime:
    return datetime.now(UTC)


async def real_round(
    sweeper: Sweeps, targets: list[str], answered_last: Callable[[str], bool] = always
) -> Round:
    require_loopback(targets)
    return await asyncio.wait_for(
        probe_round(sweeper, targets, wall=wall, answered_last=answered_last), timeout=30
    )


@real
async def test_real_healthy_round_is_one_short_sweep(sweeper: Sweeper) -> None:
    result = await real_round(sweeper, addrs(50, "127.23.1"))
    assert (result.replied, result.retried) == (50, 0)
    assert result.duration < TIMEOUT  # every echo answered: the sweep ends before its deadline


@real
async def test_real_silenced_addresses_are_confirmed_within_the_round(sweeper: Sweeper) -> None:
    targets = addrs(30, "127.23.2")
    dark = {"127.23.2.29", "127.23.2.30"}  # silent before: not retried
    with nft_table(silence_rule("127.23.2.25-127.23.2.30")):
        result = await real_round(sweeper, targets, answered_last=lambda a: a not in dark)
    assert (result.replied, result.silent, result.retried) == (24, 6, 4)
    for i in range(25, 29):
        first, second = result.echoes[f"127.23.2.{i}"]
        assert not first.replied and not second.replied
        # The retry is its own sweep, waited out to its own deadline: about one timeout later.
        gap = (second.at - first.at).total_seconds()
        assert TIMEOUT * 0.8 <= gap < TIMEOUT + 1.0
    assert all(len(result.echoes[a]) == 1 for a in dark)
    assert all(len(result.echoes[a]) == 1 and result.last(a) for a in targets[:24])


@dataclass
class AfterFirst:
    """The real sweeper, with a change to the drop rules between its first and second sweep."""

    sweeper: Sweeper
    change: Callable[[], object]
    swept: int = 0

    @property
    def mode(self) -> str:
        return self.sweeper.mode

    async def sweep(self, addresses: Sequence[str]) -> SweepResult:
        result = await self.sweeper.sweep(addresses)
        self.swept += 1
        if self.swept == 1:
            self.change()
        return result


@real
async def test_real_retry_probes_again(sweeper: Sweeper) -> None:
    """An address silenced only during the first sweep answers the retry."""
    targets = addrs(12, "127.23.3")
    with ExitStack() as rules:
        rules.enter_context(nft_table(silence_rule("127.23.3.5")))
        result = await real_round(AfterFirst(sweeper, rules.close), targets)
    assert [e.replied for e in result.echoes["127.23.3.5"]] == [False, True]
    assert (result.replied, result.silent, result.retried) == (12, 0, 1)


@real
async def test_real_cut_after_the_sweep_holds_the_round(sweeper: Sweeper) -> None:
    """The monitor loses its network right after a sweep that missed a few: the canaries
    sent with the retry fall silent too, so the round is held instead of confirming OFF."""
    targets = addrs(40, "127.23.5")
    with ExitStack() as rules:
        rules.enter_context(nft_table(silence_rule("127.23.5.35-127.23.5.40")))

        def cut() -> None:
            rules.enter_context(nft_table(silence_rule("127.23.5.0/24")))

        result = await real_round(AfterFirst(sweeper, cut), targets)
    assert (result.retried, result.canaries, result.held) == (6, CANARIES, True)


@real
async def test_real_gate_holds_and_nothing_is_sent_again(sweeper: Sweeper) -> None:
    targets = addrs(12, "127.23.4")
    with nft_table(silence_rule("127.23.4.0/24")):
        result = await real_round(sweeper, targets)
    assert result.held and result.retried == 0 and result.silent == 12
    assert all(len(e) == 1 for e in result.echoes.values())
    assert result.duration < TIMEOUT + 0.5  # one deadline, not two
