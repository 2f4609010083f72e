"""The prober: every interval, one sweep of every ONT with a valid IP, fed to the engine."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from monitor.engine import Engine
from monitor.model import Event, EventKind, Observation, Ont, Reason, ReasonCode, Severity
from monitor.ports import Clock
from monitor.sweep import SweepResult

log = logging.getLogger(__name__)

# With fewer probed ONTs than this, "all silent" may be real: the self-health gate stays off.
MIN_GATE_TARGETS = 10
APPLY_SLICE = 250  # sweep results per engine batch: a few ms of the event loop each


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
    # ONT id -> (the Ont seen, whether its IP can be probed): 10,000 IPs are not re-parsed
    # (ipaddress) on every sweep; an updated ONT is a new object, so it is parsed again.
    _valid: dict[str, tuple[Ont, bool]] = field(default_factory=dict, repr=False)

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
        known = self._valid
        for ont_id, ont in self.engine.onts.items():
            seen = known.get(ont_id)
            if seen is None or seen[0] is not ont:  # new or changed: parse its IP once
                seen = known[ont_id] = (ont, ont.ip_valid)
            if seen[1]:
                by_ip.setdefault(ont.ip.strip(), []).append(ont_id)
        if len(known) > len(self.engine.onts):  # deleted ONTs
            for ont_id in known.keys() - self.engine.onts.keys():
                del known[ont_id]
        return by_ip

    async def apply(self, replies: list[tuple[list[str], bool]], now: datetime) -> None:
        """Hand a sweep's results to the engine in slices, one batch each, one after the other:
        between two slices the event loop serves pushes and pages (10,000 results applied at
        once held it for a quarter of a second)."""
        for start in range(0, len(replies), APPLY_SLICE):
            observations = [
                Observation.probe(ont_id, replied, now)
                for ids, replied in replies[start : start + APPLY_SLICE]
                for ont_id in ids
            ]
            await self.engine.ingest_many(observations)

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
            replies = [(ids, result.results[ip].replied) for ip, ids in by_ip.items()]
            await self.apply(replies, now)
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
