"""One probe round: a sweep, then a quick second echo to the addresses that just went silent.

fping-style confirmation shared by the central prober and the agents: an address that
missed its echo but answered last time is probed once more right after the sweep, so OFF
(two lost echoes) is confirmed about one interval plus two seconds after an ONT goes silent,
not two intervals. Addresses already silent are not retried: no extra load on a healthy
network, none on ONTs long dark.

The self-health gate lives here (the prober re-exports it as monitor.prober.gate_holds): the
round must know whether the gate holds before it decides to retry, and the prober imports
this module, so the gate cannot live in the prober without a circular import.

Call: ``await probe_round(sweeper, addresses, wall=clock, answered_last=f, silent_share=0.9)``;
the signature is the one committed with the agents' skeleton.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from monitor.sweep import SweepResult

# With fewer probed addresses than this, "all silent" may be real: the self-health gate stays off.
MIN_GATE_TARGETS = 10


def gate_holds(targets: int, silent: int, silent_share: float) -> bool:
    """The self-health gate: more than silent_share of at least MIN_GATE_TARGETS addresses
    silent in one sweep means the monitor's own network is down, not the ONTs."""
    return targets >= MIN_GATE_TARGETS and silent / targets > silent_share


class Sweeps(Protocol):
    """What a round needs of monitor.sweep.Sweeper."""

    mode: str

    async def sweep(self, addresses: Sequence[str]) -> SweepResult:
        """One echo to each address, one deadline."""
        ...


@dataclass(frozen=True, slots=True)
class Echo:
    """One echo's outcome at the wall-clock time it was known."""

    at: datetime
    replied: bool


@dataclass(frozen=True, slots=True)
class Round:
    """A round's results: per address one echo, or two when it was retried (time order)."""

    echoes: Mapping[str, tuple[Echo, ...]]
    targets: int
    replied: int  # after the retry
    silent: int  # after the retry
    retried: int
    errors: int
    duration: float  # seconds, sweep and retry
    held: bool  # the self-health gate held: nothing retried, losses not to be applied

    def last(self, address: str) -> bool:
        """Whether the address's latest echo of this round was answered."""
        return self.echoes[address][-1].replied


def _distinct(addresses: Sequence[str]) -> list[str]:
    """Addresses in input order, each once: one echo (and one retry) per address."""
    return list(dict.fromkeys(addresses))


def _to_retry(
    addresses: Sequence[str], first: SweepResult, answered_last: Callable[[str], bool]
) -> list[str]:
    """Silent now but answered last time: the ones whose silence is news worth confirming."""
    results = first.results
    return [a for a in addresses if not results[a].replied and answered_last(a)]


async def probe_round(
    sweeper: Sweeps,
    addresses: Sequence[str],
    *,
    wall: Callable[[], datetime],
    answered_last: Callable[[str], bool],
    silent_share: float = 0.9,
) -> Round:
    """Sweep addresses; retry at once those silent now that answered_last(address).

    When the self-health gate holds on the first sweep nothing is retried (the monitor's own
    network is the likely fault, a second echo would only double the load) and the round
    says held. Each echo carries wall() read when its sweep ended, so a retried address has
    two echoes about one timeout apart, in time order.
    """
    targets = _distinct(addresses)
    started = time.perf_counter()
    first = await sweeper.sweep(targets)
    first_at = wall()
    silent_first = sum(1 for a in targets if not first.results[a].replied)
    held = gate_holds(len(targets), silent_first, silent_share)
    echoes: dict[str, tuple[Echo, ...]] = {
        a: (Echo(first_at, first.results[a].replied),) for a in targets
    }
    errors = {a for a in targets if first.results[a].error}
    retry = [] if held else _to_retry(targets, first, answered_last)
    if retry:
        second = await sweeper.sweep(retry)
        second_at = wall()
        for a in retry:
            result = second.results[a]
            echoes[a] = (*echoes[a], Echo(second_at, result.replied))
            if result.error:
                errors.add(a)
            else:
                errors.discard(a)
    replied = sum(1 for a in targets if echoes[a][-1].replied)
    return Round(
        echoes=echoes,
        targets=len(targets),
        replied=replied,
        silent=len(targets) - replied,
        retried=len(retry),
        errors=len(errors),
        duration=time.perf_counter() - started,
        held=held,
    )
