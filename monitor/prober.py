"""The prober: every interval, one probe round of every ONT with a valid IP, fed to the engine.

A round (monitor.rounds.probe_round) is one sweep plus, at once, a second echo to the
addresses that just went silent, so OFF is confirmed within about a second of the sweep
that first missed an ONT. ONTs a probe agent sweeps (engine.agents.assigned()) are left to
their agent.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from monitor.engine import Engine
from monitor.model import Event, EventKind, Observation, Ont, Reason, ReasonCode, Severity, Status
from monitor.ports import Clock
from monitor.rounds import MIN_GATE_TARGETS, Round, Sweeps, gate_holds, probe_round, sweep_forever

__all__ = ["APPLY_SLICE", "MIN_GATE_TARGETS", "Prober", "SweepReport", "Sweeps", "gate_holds"]

log = logging.getLogger(__name__)

APPLY_SLICE = 250  # sweep results per engine batch: a few ms of the event loop each


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
    retried: int = 0  # addresses given a second echo at once (silent now, answered last time)


@dataclass
class Prober:
    """Runs sweeps back to back at the interval; a sweep never overlaps the next."""

    engine: Engine
    sweeper: Sweeps
    interval: float
    clock: Clock
    silent_share: float = 0.9
    retry: bool = True  # the quick second echo; off = OFF after two sweeps (the old way)
    holding: bool = False
    last: SweepReport | None = None
    sweeps: int = 0
    overruns: int = 0
    # Echoes of retry sweeps since start, canaries included: the quick confirmation's cost.
    retries: int = 0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    # ONT id -> (the Ont seen, whether its IP can be probed): 10,000 IPs are not re-parsed
    # (ipaddress) on every sweep; an updated ONT is a new object, so it is parsed again.
    _valid: dict[str, tuple[Ont, bool]] = field(default_factory=dict, repr=False)
    # IP -> whether its latest echo was answered: who gets the quick second echo.
    _answered: dict[str, bool] = field(default_factory=dict, repr=False)
    _ids_of: dict[str, list[str]] = field(default_factory=dict, repr=False)  # this round's

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
        await sweep_forever(self.interval, self.sweep_once, self._overran)

    def _overran(self) -> None:
        self.overruns += 1

    def targets(self) -> dict[str, list[str]]:
        """ONT ids by IP, for every ONT whose IP can be probed and no agent sweeps."""
        by_ip: dict[str, list[str]] = {}
        known = self._valid
        board = self.engine.agents
        # One frozenset per call (the desk keeps it between assignment changes): a set
        # lookup per ONT is the whole cost, about 3 ms for 100,000 ONTs.
        theirs = board.assigned() if board is not None else frozenset()
        for ont_id, ont in self.engine.onts.items():
            if theirs and ont_id in theirs:
                continue
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

    async def apply_echoes(self, result: Round, by_ip: dict[str, list[str]], nth: int) -> None:
        """Apply each address's nth echo of a round (0: the sweep's, 1: the retry's), at the
        time it was known, in time order (two lost echoes of a retried ONT = rto 2 = OFF)."""
        by_time: dict[datetime, list[tuple[list[str], bool]]] = {}
        for ip, ids in by_ip.items():
            echoes = result.echoes[ip]
            if len(echoes) > nth:
                echo = echoes[nth]
                by_time.setdefault(echo.at, []).append((ids, echo.replied))
        for at in sorted(by_time):
            await self.apply(by_time[at], at)

    def answered_last(self, ip: str) -> bool:
        """Whether ip answered its latest echo; for an IP not swept yet (a restart), whether
        its ONTs are ON: an ONT already dark or never seen gets no quick second echo."""
        known = self._answered.get(ip)
        if known is not None:
            return known
        states = self.engine.states
        ids = self._ids_of.get(ip, ())
        return any(
            (st := states.get(i)) is not None and st.status is Status.ON and st.rto_count == 0
            for i in ids
        )

    def _remember(self, result: Round, by_ip: dict[str, list[str]]) -> None:
        """Keep each swept IP's latest answer (a held round's losses were not applied: an IP
        silent in it keeps what it had); IPs no longer swept are forgotten."""
        held, before = result.held, self.answered_last
        self._answered = {ip: result.last(ip) or (held and before(ip)) for ip in by_ip}

    async def sweep_once(self) -> SweepReport:
        """One round; its echoes go through engine.ingest_many unless the gate holds them.

        The sweep's echoes are applied before the retry goes out (a first lost echo opens
        its incident as early as without the retry); the retry's echoes after it, unless
        its canaries say the monitor itself went blind.
        """
        if self.engine.agents is not None:
            # ONTs added or moved since the agents' plan was last brought up to date would
            # otherwise be swept once by the centre, which may not reach them at all.
            await self.engine.agents.refresh()
        by_ip = self.targets()
        if not by_ip:
            report = SweepReport(0, 0, 0, 0, 0.0, False, "no ONT with a valid IP")
            self.last = report
            return report
        self._ids_of = by_ip

        async def first(partial: Round) -> None:
            if not partial.held:
                await self._resume(partial)
                await self.apply_echoes(partial, by_ip, 0)

        result = await probe_round(
            self.sweeper,
            list(by_ip),
            wall=self.clock,
            answered_last=self.answered_last if self.retry else _never,
            silent_share=self.silent_share,
            on_first=first,
        )
        self.sweeps += 1
        self.retries += result.retried + result.canaries
        if result.held:
            reason = await self._hold(result)
        else:
            await self.apply_echoes(result, by_ip, 1)
            reason = f"{result.replied} replied, {result.silent} silent, {result.retried} retried"
        self._remember(result, by_ip)
        report = SweepReport(
            targets=result.targets,
            replied=result.replied,
            silent=result.silent,
            errors=result.errors,
            duration=result.duration,
            held=result.held,
            reason=reason,
            retried=result.retried,
        )
        self.last = report
        return report

    async def _hold(self, result: Round) -> str:
        """The gate holds: one MONITOR_OFFLINE when it starts holding; the reason."""
        blind = result.blind  # with a retry's canaries that fell silent too
        reason = (
            f"{blind} of {result.targets} ONT addresses silent in one round: the monitor's own "
            "network is the likely fault; ONT alerts are held until replies come back"
        )
        if not self.holding:
            self.holding = True
            log.error("%s", reason)
            why = Reason.of(ReasonCode.MONITOR_BLIND, silent=blind, targets=result.targets)
            event = Event(EventKind.MONITOR_OFFLINE, Severity.CRITICAL, self.clock(), why)
            await self.engine.announce(event)
        return reason

    async def _resume(self, partial: Round) -> None:
        """A sweep the gate lets through after holding: one MONITOR_ONLINE, then its echoes."""
        if not self.holding:
            return
        self.holding = False
        log.warning(
            "replies are back (%d of %d): probing resumed", partial.replied, partial.targets
        )
        why = Reason.of(ReasonCode.MONITOR_SEES, replied=partial.replied, targets=partial.targets)
        await self.engine.announce(Event(EventKind.MONITOR_ONLINE, Severity.OK, self.clock(), why))


def _never(_ip: str) -> bool:
    """answered_last with the retry off: every address gets one echo per round."""
    return False
