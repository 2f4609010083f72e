"""One probe round: a sweep, then a quick second echo to the addresses that just went silent.

fping-style confirmation shared by the central prober and the agents: an address that
missed its echo but answered last time is probed once more right after the sweep, so OFF
(two lost echoes) is confirmed about one interval plus two seconds after an ONT goes silent,
not two intervals. Addresses already silent are not retried: no extra load on a healthy
network, none on ONTs long dark.

A retry carries up to CANARIES addresses that just answered: should they fall silent too,
the monitor's own network failed during the round, and the round is held (the gate again)
rather than confirming OFF for every ONT swept after the cut. On a healthy network there is
no retry, so no canary either.

The self-health gate lives here (the prober re-exports it as monitor.prober.gate_holds): the
round must know whether the gate holds before it decides to retry, and the prober imports
this module, so the gate cannot live in the prober without a circular import.

Call: ``await probe_round(sweeper, addresses, wall=clock, answered_last=f, silent_share=0.9)``,
the signature committed with the agents' skeleton; the keyword ``on_first`` (optional) is
told the first sweep's echoes before the retry goes out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from monitor.sweep import SweepResult

log = logging.getLogger(__name__)

# With fewer probed addresses than this, "all silent" may be real: the self-health gate stays off.
MIN_GATE_TARGETS = 10
# Answering addresses probed again with a retry, to tell a cut in the monitor's own network
# during the sweep from ONTs going dark: the gate's minimum, so the gate can judge them.
CANARIES = MIN_GATE_TARGETS


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
    held: bool  # the self-health gate held: losses not to be applied
    canaries: int = 0  # answering addresses sent along with the retry (see _canaries)
    canaries_lost: int = 0  # of them, silent in the retry

    @property
    def blind(self) -> int:
        """Addresses silent at their latest echo, the canaries' second echo included."""
        return self.silent + self.canaries_lost

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


def _canaries(addresses: Sequence[str], first: SweepResult) -> list[str]:
    """Up to CANARIES addresses that answered the first sweep, spread over the list.

    They ride along with the retry: if the monitor's own network failed during the sweep,
    the addresses swept after the cut are silent and would be confirmed OFF a second later,
    before the next sweep's gate could see the whole picture; the canaries falling silent
    too says it is the monitor, and the round is held.
    """
    answered = [a for a in addresses if first.results[a].replied]
    step = max(1, len(answered) // CANARIES)
    return answered[::step][:CANARIES]


def _summary(
    targets: Sequence[str],
    echoes: Mapping[str, tuple[Echo, ...]],
    errors: set[str],
    started: float,
    held: bool,
    retried: int,
    canaries: int = 0,
    canaries_lost: int = 0,
) -> Round:
    """The Round as far as it is known: counts from each address's latest echo."""
    replied = sum(1 for a in targets if echoes[a][-1].replied)
    return Round(
        echoes=echoes,
        targets=len(targets),
        replied=replied,
        silent=len(targets) - replied,
        retried=retried,
        errors=len(errors),
        duration=time.perf_counter() - started,
        held=held,
        canaries=canaries,
        canaries_lost=canaries_lost,
    )


async def probe_round(
    sweeper: Sweeps,
    addresses: Sequence[str],
    *,
    wall: Callable[[], datetime],
    answered_last: Callable[[str], bool],
    silent_share: float = 0.9,
    on_first: Callable[[Round], Awaitable[None]] | None = None,
) -> Round:
    """Sweep addresses; retry at once those silent now that answered_last(address).

    When the self-health gate holds on the first sweep nothing is retried (the monitor's own
    network is the likely fault, a second echo would only double the load) and the round
    says held; it is held as well when the canaries sent with the retry (see _canaries) fall
    silent. Each echo carries wall() read when its sweep ended, so a retried address has two
    echoes about one timeout apart, in time order.

    on_first, if given, is awaited with the round as the first sweep left it (one echo per
    address; retried = how many are about to be) before the retry is sent: a caller that
    applies those echoes at once tells a first lost echo (an incident opening) as early as
    without the retry, instead of a timeout later. The Round returned holds every echo.
    """
    targets = _distinct(addresses)
    started = time.perf_counter()
    first = await sweeper.sweep(targets)
    first_at = wall()
    echoes: dict[str, tuple[Echo, ...]] = {
        a: (Echo(first_at, first.results[a].replied),) for a in targets
    }
    errors = {a for a in targets if first.results[a].error}
    silent_first = sum(1 for echo in echoes.values() if not echo[0].replied)
    held = gate_holds(len(targets), silent_first, silent_share)
    retry = [] if held else _to_retry(targets, first, answered_last)
    if on_first is not None:
        # A copy: the retry adds to echoes, the first sweep's view stays as it was told.
        await on_first(_summary(targets, dict(echoes), errors, started, held, len(retry)))
    if not retry:
        return _summary(targets, echoes, errors, started, held, 0)
    canaries = _canaries(targets, first)
    second = await sweeper.sweep(retry + canaries)
    second_at = wall()
    for a in retry:
        result = second.results[a]
        echoes[a] = (*echoes[a], Echo(second_at, result.replied))
        if result.error:
            errors.add(a)
        else:
            errors.discard(a)
    lost = sum(1 for a in canaries if not second.results[a].replied)
    held = gate_holds(len(canaries), lost, silent_share)
    return _summary(targets, echoes, errors, started, held, len(retry), len(canaries), lost)


async def sweep_forever(
    interval: float, sweep_once: Callable[[], Awaitable[object]], overran: Callable[[], None]
) -> None:
    """Rounds back to back at the interval (the central prober's and each agent's loop): a
    round never overlaps the next; one that fails is logged and tried again next interval;
    one longer than the interval is logged and counted (overran), and the next starts now."""
    while True:
        started = time.monotonic()
        try:
            await sweep_once()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sweep failed; trying again next interval")
        elapsed = time.monotonic() - started
        if elapsed > interval:
            overran()
            log.warning(
                "sweep took %.2f s, longer than the %.1f s interval; the next one starts now "
                "(sweeps never overlap)",
                elapsed,
                interval,
            )
        await asyncio.sleep(max(0.0, interval - elapsed))
