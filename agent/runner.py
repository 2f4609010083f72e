"""The agent's loop: follow the assignment, sweep every interval, queue the report, send it.

Three tasks that never wait on each other: the assignment is fetched at start, every 30 s
and when an answer names another version; sweeps run back to back at the interval (never
overlapping) and each ends with one report committed to the queue; the sender drains the
queue oldest first, one request at a time, so a slow or absent centre never delays a sweep
and the centre sees the reports in the order they were made. Stopping (SIGTERM) cancels the
tasks: a report in flight is sent again next time, and the centre knows it by (epoch, seq).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.client import (
    AssignmentError,
    Backoff,
    CentralClient,
    Outcome,
    Verdict,
    parse_assignment,
)
from agent.queue import Queued, QueueError, ReportQueue
from agent.settings import AgentSettings
from agent.tracker import Step, Tracker
from monitor.agents import Assignment
from monitor.rounds import Echo, Round, Sweeps, probe_round, sweep_forever

log = logging.getLogger("agent")

ASSIGNMENT_EVERY = 30.0  # seconds between two assignment fetches (docs/agents.md)
MAX_SENDS_PER_WAKE = 100  # reports sent back to back while catching up, then a breath
REFUSED_WAIT = 60.0  # seconds between tries while the token is refused
# Longest wait between two tries while the centre is unreachable: after the link heals, the
# backlog starts within this; 100 agents at it cost the centre ~3 requests a second.
BACKOFF_CAP = 30.0
COUNTS_KEPT_FOR = 600.0  # seconds a stopped agent's lost counts stay worth resuming
ProbeRound = Callable[..., Awaitable[Round]]


def wall_clock() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def _stamp(at: datetime) -> float:
    """Unix seconds to the millisecond: what a report carries."""
    return round(at.timestamp(), 3)


def blind(rnd: Round) -> bool:
    """Whether a round says nothing about the ONTs: the self-health gate held, or not one
    echo could be sent (no ICMP socket, every send refused) — an error is not silence, so a
    small POP with a broken socket is "agent cannot reach its ONTs", not five OFFs."""
    return rnd.held or (rnd.targets > 0 and rnd.errors >= rnd.targets and rnd.replied == 0)


def probe_able(ip: str) -> bool:
    """Whether an assigned address is one the sweep can probe (the centre should not send
    others; if it does, they are left out rather than reported as silent)."""
    try:
        ipaddress.ip_address(ip.strip())
    except ValueError:
        return False
    return True


@dataclass
class SenderStats:
    """The sender's counters, for the agent's own view and its log."""

    sent: int = 0  # requests made
    acked: int = 0
    duplicates: int = 0
    bad: int = 0  # set aside after a 4xx
    refused: int = 0  # 401/403 answers
    retries: int = 0  # 5xx, 429, no answer
    accepted: int = 0  # observations the centre applied
    stale: int = 0
    refused_obs: int = 0
    last_ok: float | None = None
    last_error: str = ""


@dataclass
class AgentRunner:
    """One agent: its queue, its client, its sweeper and the tracker between them."""

    name: str
    interval: float
    queue: ReportQueue
    client: CentralClient
    sweeper: Sweeps
    silent_share: float = 0.9
    wall: Callable[[], datetime] = wall_clock
    probe: ProbeRound = probe_round
    assignment_every: float = ASSIGNMENT_EVERY
    refused_wait: float = REFUSED_WAIT
    backoff: Backoff = field(default_factory=lambda: Backoff(base=1.0, cap=BACKOFF_CAP))
    tracker: Tracker = field(default_factory=Tracker)
    assignment: Assignment | None = None
    etag: str | None = None
    stats: SenderStats = field(default_factory=SenderStats)
    last_sweep: dict[str, Any] | None = None
    sweeps: int = 0
    overruns: int = 0
    full_reports: int = 0
    _by_ip: dict[str, list[str]] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _assignment_due: asyncio.Event = field(default_factory=asyncio.Event)
    _first_fetch: asyncio.Event = field(default_factory=asyncio.Event)
    _reachable: asyncio.Event = field(default_factory=asyncio.Event)  # the centre answered
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _refused_logged: bool = False
    _refused_said: float = -1e9  # monotonic time of the last "refused observations" line

    def __post_init__(self) -> None:
        self.tracker.interval = self.interval

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume the last assignment kept in the queue file, then start the three tasks."""
        saved = await self.queue.meta("assignment")
        if saved:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                data = json.loads(saved)
                self._follow(parse_assignment(data["assignment"]), data.get("etag"))
        await self._restore_counts()
        self._tasks = [
            asyncio.create_task(self._assignment_loop(), name="agent-assignment"),
            asyncio.create_task(self._sweep_loop(), name="agent-sweep"),
            asyncio.create_task(self._send_loop(), name="agent-send"),
        ]

    async def stop(self) -> None:
        """Cancel the tasks (a report in flight stays queued and is sent next time) and keep
        the lost counts for the next start."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tasks:
            blob = {"at": time.time(), "lost": self.tracker.snapshot()}
            await self.queue.set_meta("lost", json.dumps(blob, separators=(",", ":")))
        self._tasks = []

    async def _restore_counts(self) -> None:
        """Lost counts kept at the last graceful stop, if recent (an upgrade, a restart):
        an ONT dark for an hour goes on counting instead of starting again at 1."""
        saved = await self.queue.meta("lost")
        if not saved:
            return
        with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
            blob = json.loads(saved)
            if time.time() - float(blob["at"]) <= COUNTS_KEPT_FOR:
                self.tracker.restore(blob["lost"])

    def status(self) -> dict[str, Any]:
        """The agent's own state: assignment, last sweep, queue, sender counters."""
        return {
            "agent": self.name,
            "assignment": self.assignment.version if self.assignment else None,
            "targets": len(self.assignment.targets) if self.assignment else 0,
            "sweeps": self.sweeps,
            "full_reports": self.full_reports,
            "overruns": self.overruns,
            "sweep": self.last_sweep,
            "queue": {**self.queue.stats(), "set_aside": self.queue.set_aside},
            "sender": {k: v for k, v in vars(self.stats).items()},
        }

    # -- assignment ---------------------------------------------------------------------------

    async def _assignment_loop(self) -> None:
        while True:
            self._assignment_due.clear()
            try:
                await self.refresh_assignment()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("assignment: unexpected failure; trying again later")
            self._first_fetch.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._assignment_due.wait(), self.assignment_every)

    async def refresh_assignment(self) -> bool:
        """Fetch the assignment (If-None-Match); whether it changed."""
        try:
            got = await self.client.assignment(self.etag)
        except AssignmentError as exc:
            self._log_assignment_failure(exc.outcome)
            return False
        self._reachable.set()  # cuts a backoff wait short: the centre is back
        if got is None:
            return False
        assignment, etag = got
        if assignment.agent != self.name:
            log.warning(
                "assignment: the centre knows this token as agent %r, not %r "
                "(ONTWATCH_AGENT_NAME); following the centre",
                assignment.agent,
                self.name,
            )
        changed = self._follow(assignment, etag)
        if changed:
            blob = {"assignment": _assignment_json(assignment), "etag": etag}
            await self.queue.set_meta("assignment", json.dumps(blob, separators=(",", ":")))
        return changed

    def _follow(self, assignment: Assignment, etag: str | None) -> bool:
        """Take an assignment; whether its version is new (then a full report is due)."""
        self.etag = etag
        if self.assignment is not None and self.assignment.version == assignment.version:
            return False
        by_ip: dict[str, list[str]] = {}
        skipped = 0
        for ont_id, ip in assignment.targets:
            if probe_able(ip):
                by_ip.setdefault(ip.strip(), []).append(ont_id)
            else:
                skipped += 1
        if skipped:
            log.warning("assignment: %d ONTs without a probe-able IP are left out", skipped)
        self._by_ip = by_ip
        self.tracker.assign(
            [i for ids in by_ip.values() for i in ids],
            refresh_s=assignment.refresh_s,
            down_after=assignment.down_after,
            critical_rto=assignment.critical_rto,
        )
        log.info(
            "assignment %s: %d ONTs at %d addresses",
            assignment.version[:12],
            len(assignment.targets),
            len(by_ip),
        )
        self.assignment = assignment
        return True

    def _log_assignment_failure(self, outcome: Outcome) -> None:
        if outcome.verdict is Verdict.REFUSED:
            log.error(
                "assignment: the centre refused this agent's token (HTTP %s): check "
                "ONTWATCH_AGENT_TOKEN(_FILE) and `ontwatch agents token %s` at the centre",
                outcome.status,
                self.name,
            )
        else:
            log.warning(
                "assignment: %s (HTTP %s); keeping %s",
                outcome.detail or outcome.verdict.value,
                outcome.status,
                "the last one" if self.assignment else "no targets yet",
            )

    # -- sweeps --------------------------------------------------------------------------------

    async def _sweep_loop(self) -> None:
        # The first sweep waits (a little) for the first assignment answer: without it the
        # first report would be an empty "full" one, and the real one an interval later.
        if self.assignment is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first_fetch.wait(), min(self.interval, 5.0))
        await sweep_forever(self.interval, self.sweep_once, self._overran)

    def _overran(self) -> None:
        self.overruns += 1

    async def sweep_once(self) -> int:
        """One round, one report into the queue (durably); the report's seq."""
        by_ip = self._by_ip
        # The version swept: an assignment arriving mid-round is the next round's (the report
        # then names the old one and the centre asks for the full report that follows).
        version = self.assignment.version if self.assignment else ""
        at = self.wall()
        echoes: dict[str, tuple[Echo, ...]] = {}
        sweep: dict[str, Any] = {
            "at": _stamp(at),
            "duration": 0.0,
            "targets": 0,
            "replied": 0,
            "silent": 0,
            "retried": 0,
        }
        held = False
        if by_ip:
            rnd = await self.probe(
                self.sweeper,
                list(by_ip),
                wall=self.wall,
                answered_last=lambda ip: self.tracker.answered_last(by_ip[ip][0]),
                silent_share=self.silent_share,
            )
            echoes = {
                i: rnd.echoes[ip] for ip, ids in by_ip.items() for i in ids if ip in rnd.echoes
            }
            held = blind(rnd)
            sweep.update(
                duration=round(rnd.duration, 4),
                targets=rnd.targets,
                replied=rnd.replied,
                silent=rnd.silent,
                retried=rnd.retried,
            )
        sweep["held"] = held
        if self.queue.take_overflow():
            self.tracker.want_full()
        step = self.tracker.step(echoes, held=held)
        self.sweeps += 1
        self.full_reports += step.full
        self.last_sweep = sweep
        seq = await self.queue.put(self._payload(step, sweep, version))
        self._wake.set()
        return seq

    def _payload(self, step: Step, sweep: Mapping[str, Any], version: str) -> dict[str, Any]:
        """What the queue keeps of a report; epoch, seq, sent_at and queue come at sending."""
        return {
            "interval": self.interval,
            "assignment": version,
            "full": step.full,
            "sweep": dict(sweep),
            "obs": [[i, _stamp(at), lost] for i, at, lost in step.obs],
        }

    # -- sending ---------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sending failed; trying again next interval")

    def body(self, item: Queued) -> dict[str, Any]:
        """The request body of a queued report, stamped now."""
        return {
            "epoch": self.queue.epoch,
            "seq": item.seq,
            "sent_at": round(time.time(), 3),
            **item.payload,
            "queue": self.backlog(),
        }

    def backlog(self) -> dict[str, Any]:
        """The queue behind the report being sent: a healthy agent says 0, not its own report."""
        stats = self.queue.stats()
        behind = max(0, stats["depth"] - 1)
        return {**stats, "depth": behind, "oldest": stats["oldest"] if behind else None}

    async def flush(self, limit: int = MAX_SENDS_PER_WAKE) -> int:
        """Send queued reports oldest first, one at a time, until empty, stuck or `limit`;
        how many the centre took."""
        done = 0
        while done < limit:
            batch = await self.queue.peek(1)
            if not batch:
                return done
            item = batch[0]
            outcome = await self.client.send(self.body(item))
            self.stats.sent += 1
            if outcome.verdict is Verdict.ACK:
                await self._acked(item, outcome)
                done += 1
            elif outcome.verdict is Verdict.BAD:
                await self._bad(item, outcome)
            elif outcome.verdict is Verdict.REFUSED:
                self._refused(outcome)
                await asyncio.sleep(self.refused_wait * random.uniform(0.8, 1.2))
                return done
            else:
                await self._retry_wait(outcome)
        return done

    async def _acked(self, item: Queued, outcome: Outcome) -> None:
        await self.queue.ack(item.seq)
        self.backoff.reset()
        if self._refused_logged or self.stats.last_error:
            log.info("the centre takes reports again (%d queued)", self.queue.depth)
        self._refused_logged = False
        self.stats.acked += 1
        self.stats.last_ok = time.time()
        self.stats.last_error = ""
        answer = outcome.answer
        if answer is None:
            return
        self.stats.duplicates += answer.duplicate
        self.stats.accepted += answer.accepted
        self.stats.stale += answer.stale
        self.stats.refused_obs += answer.refused
        if answer.refused and time.monotonic() - self._refused_said >= 60:
            self._refused_said = time.monotonic()  # at most a line a minute
            log.warning(
                "report %d: the centre refused %d observations of ONTs not assigned to this "
                "agent (%d since start)",
                item.seq,
                answer.refused,
                self.stats.refused_obs,
            )
        if answer.want_full:
            self.tracker.want_full()
        if self.assignment is None or (
            answer.assignment and answer.assignment != self.assignment.version
        ):
            self._assignment_due.set()

    async def _bad(self, item: Queued, outcome: Outcome) -> None:
        self.stats.bad += 1
        why = f"HTTP {outcome.status}: {outcome.detail}"
        log.error("report %d refused by the centre (%s); set aside, not sent again", item.seq, why)
        await self.queue.put_aside(item.seq, why)

    def _refused(self, outcome: Outcome) -> None:
        self.stats.refused += 1
        self.stats.last_error = f"HTTP {outcome.status}: token refused"
        if not self._refused_logged:
            self._refused_logged = True
            log.error(
                "the centre refused this agent's token (HTTP %s): reports stay queued (%d) "
                "and are tried again every %.0f s; check ONTWATCH_AGENT_TOKEN(_FILE)",
                outcome.status,
                self.queue.depth,
                self.refused_wait,
            )

    async def _retry_wait(self, outcome: Outcome) -> None:
        self.stats.retries += 1
        wait = self.backoff.next(outcome.retry_after)
        what = outcome.detail or f"HTTP {outcome.status}"
        if (
            what != self.stats.last_error
            or self.backoff.failures in (1, 5, 10)
            or self.backoff.failures % 50 == 0
        ):
            log.warning(
                "centre unavailable (%s): %d reports queued, next try in %.1f s",
                what,
                self.queue.depth,
                wait,
            )
        self.stats.last_error = what
        if outcome.status is not None:  # the centre answered (503, 429): as long as it asked
            await asyncio.sleep(wait)
            return
        self._reachable.clear()  # no answer at all: an assignment answer ends the wait early
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._reachable.wait(), wait)


def _assignment_json(a: Assignment) -> dict[str, Any]:
    """An assignment as the centre sends it (kept in the queue file across restarts)."""
    return {
        "agent": a.agent,
        "version": a.version,
        "refresh_s": a.refresh_s,
        "down_after": a.down_after,
        "critical_rto": a.critical_rto,
        "targets": [list(t) for t in a.targets],
    }


# -- the process ---------------------------------------------------------------------------


async def run_agent(settings: AgentSettings, *, sweeper: Sweeps | None = None) -> None:
    """Run the agent until SIGTERM or SIGINT."""
    from monitor.sweep import Sweeper

    own = sweeper is None
    sweeps: Sweeps = sweeper or Sweeper(timeout=settings.probe_timeout)
    mode = getattr(sweeps, "mode", "?")
    if mode == "none":
        log.error("ICMP probing unavailable: %s", getattr(sweeps, "mode_reason", ""))
    queue = await ReportQueue(settings.agent_queue, settings.queue_max_bytes).open()
    client = CentralClient(settings.central_url, settings.token)
    runner = AgentRunner(
        name=settings.agent_name,
        interval=settings.probe_interval,
        queue=queue,
        client=client,
        sweeper=sweeps,
        silent_share=settings.health_silent_share,
    )
    print(
        f"ontwatch agent {settings.agent_name}: centre {settings.central_url}, "
        f"queue {settings.agent_queue} ({queue.depth} queued), every {settings.probe_interval:g} s, "
        f"ICMP {mode}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runner.start()
        await stop.wait()
        log.info("stopping: %d reports stay queued", queue.depth)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.stop()
        await client.close()
        await queue.close()
        if own and hasattr(sweeps, "close"):
            sweeps.close()


def main(settings: AgentSettings) -> int:
    """`ontwatch agent`: log set-up (the token redacted), then run."""
    from ontwatch.logs import setup_logging

    setup_logging(settings.log_level, json_lines=settings.log_json, secrets=[settings.token])
    try:
        asyncio.run(run_agent(settings))
    except QueueError as exc:
        print(f"ontwatch agent: {exc}", file=sys.stderr)
        return 1
    return 0


__all__ = ["AgentRunner", "main", "run_agent"]
