"""The prober: every interval, one sweep of every ONT with a valid IP, fed to the engine."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from monitor.engine import Engine
from monitor.model import Event, EventKind, Observation, Reason, ReasonCode, Severity
from monitor.ports import Clock
from monitor.sweep import SweepResult

log = logging.getLogger(__name__)

# With fewer probed ONTs than this, "all silent" may be real: the self-health gate stays off.
MIN_GATE_TARGETS = 10
APPLY_SLICE = 500  # sweep results per engine batch: a few ms of the event loop each


def gate_holds(targets: int, silent: int, silent_share: float) -> bool:
    """The self-health gate: more than silent_share of at least MIN_GATE_TARGETS addresses
    silent in one sweep means the monitor's own network is down, not the ONTs."""
    return targets >= MIN_GATE_TARGETS and silent / targets > silent_share


class Sweeps(Protocol):
    """What the prober needs of monitor.sweep.Sweeper."""

    mode: str

    async def sweep(self, addresses: Sequence[str]) -> SweepResult:
        """One echo to each address, one deadline."""
        ...


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one sweep saw and what was done with it."""

    targets: int
    replied: int
    silent: int
    errors: int
    duration: float
    held: bool  # the self-health gate held ONT transitions back
    reason: str


@dataclass
class Prober:
    """Runs sweeps back to back at the interval; a sweep never overlaps the next."""

    engine: Engine
    sweeper: Sweeps
    interval: float
    clock: Clock
    silent_share: float = 0.9
    holding: bool = False
    last: SweepReport | None = None
    sweeps: int = 0
    overruns: int = 0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start the sweep loop in the running event loop."""
        self._task = asyncio.create_task(self._run(), name="ontwatch-prober")

    async def stop(self) -> None:
        """Stop after the current sweep's work is cancelled."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sweep failed; trying again next interval")
            elapsed = time.monotonic() - started
            if elapsed > self.interval:
                self.overruns += 1
                log.warning(
                    "sweep took %.2f s, longer than the %.1f s probe interval; the next one "
                    "starts now (sweeps never overlap)",
                    elapsed,
                    self.interval,
                )
            await asyncio.sleep(max(0.0, self.interval - elapsed))

    def targets(self) -> dict[str, list[str]]:
        """ONT ids by IP, for every ONT whose IP can be probed."""
        by_ip: dict[str, list[str]] = {}
        for ont in self.engine.onts.values():
            if ont.ip_valid:
                by_ip.setdefault(ont.ip.strip(), []).append(ont.id)
        return by_ip

    async def apply(self, observations: list[Observation]) -> None:
        """Hand a sweep's results to the engine in slices, one batch each, one after the other:
        between two slices the event loop serves pushes and pages (10,000 results applied at
        once held it for a quarter of a second)."""
        for start in range(0, len(observations), APPLY_SLICE):
            await self.engine.ingest_many(observations[start : start + APPLY_SLICE])

    async def sweep_once(self) -> SweepReport:
        """One sweep; its results go through engine.ingest_many unless the gate holds them."""
        by_ip = self.targets()
        if not by_ip:
            report = SweepReport(0, 0, 0, 0, 0.0, False, "no ONT with a valid IP")
            self.last = report
            return report
        result = await self.sweeper.sweep(list(by_ip))
        now = self.clock()
        replied = sum(1 for r in result.results.values() if r.replied)
        silent = len(by_ip) - replied
        self.sweeps += 1
        gate = gate_holds(len(by_ip), silent, self.silent_share)
        if gate:
            reason = (
                f"{silent} of {len(by_ip)} ONT addresses silent in one sweep: the monitor's own "
                "network is the likely fault; ONT alerts are held until replies come back"
            )
            if not self.holding:
                self.holding = True
                log.error("%s", reason)
                why = Reason.of(ReasonCode.MONITOR_BLIND, silent=silent, targets=len(by_ip))
                await self.engine.announce(
                    Event(EventKind.MONITOR_OFFLINE, Severity.CRITICAL, now, why)
                )
        else:
            if self.holding:
                self.holding = False
                reason = f"replies are back ({replied} of {len(by_ip)}): probing resumed"
                log.warning("%s", reason)
                why = Reason.of(ReasonCode.MONITOR_SEES, replied=replied, targets=len(by_ip))
                await self.engine.announce(Event(EventKind.MONITOR_ONLINE, Severity.OK, now, why))
            observations = [
                Observation.probe(ont_id, result.results[ip].replied, now)
                for ip, ids in by_ip.items()
                for ont_id in ids
            ]
            await self.apply(observations)
            reason = f"{replied} replied, {silent} silent"
        report = SweepReport(
            targets=len(by_ip),
            replied=replied,
            silent=silent,
            errors=result.errors,
            duration=result.duration,
            held=gate,
            reason=reason,
        )
        self.last = report
        return report
