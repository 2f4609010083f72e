"""One probe round: a sweep, then a quick second echo to the addresses that just went silent.

fping-style confirmation shared by the central prober and the agents: an address that
missed its echo but answered last time is probed once more right after the sweep, so OFF
(two lost echoes) is confirmed about one interval plus two seconds after an ONT goes silent,
not two intervals. Addresses already silent are not retried: no extra load on a healthy
network, none on ONTs long dark.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from monitor.sweep import SweepResult


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


async def probe_round(
    sweeper: Sweeps,
    addresses: Sequence[str],
    *,
    wall: Callable[[], datetime],
    answered_last: Callable[[str], bool],
    silent_share: float = 0.9,
) -> Round:
    """Sweep addresses; retry at once those silent now that answered_last(address)."""
    raise NotImplementedError
