"""Probe agents at the centre: who they are, what they are assigned, whether they live.

The desk (AgentDesk) is the centre's one place for agents: it answers assignments, takes
reports (through the engine's one ingest path), and turns an agent's silence into one
"agent lost" alert with its ONTs UNKNOWN — never OFFs, never a mass outage. Contract with
the agent process: docs/agents.md. Pure decisions (assignment, liveness, clock skew) are
functions of their inputs and `now`, table-tested in tests/monitor/test_agents.py.

Storage (storage/agents.py, `Agents`) is reached only through the AgentStore protocol
below: `all()` at start and on reload, `by_token()` to authenticate, `save_contacts()` with
AgentContact records every few seconds and at stop.

Cost at the design scale (100,000 ONTs, 4 agents, a report every 5 s from each): the
ONT -> agent assignment is computed once (on a thread) and again only when the inventory
or the agent configs change — the desk watches the engine's commit feed and compares the
Ont objects it assigned; a report costs O(its observations), never O(all ONTs).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import enum
import hashlib
import ipaddress
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from monitor.engine import EARLIEST, Engine
from monitor.feed import Commit, FeedItem
from monitor.model import (
    Decision,
    Event,
    EventKind,
    Observation,
    Ont,
    Reason,
    ReasonCode,
    Severity,
    id_sort_key,
)

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MIN_LOST_S = 10.0  # an agent is never declared lost after less silence than this
SKEW_TOLERANCE_S = 1.0  # clock differences up to this are left alone (network delay)
APPLY_SLICE = 2000  # observations per engine batch: a full report of 25,000 is 13 slices
TOKEN_TTL_S = 5.0  # an authenticated token is looked up again after this (rotation)
RELOAD_EVERY_S = 5.0  # check() re-reads the agent configs (the CLI changes them)
SAVE_EVERY_S = 5.0  # check() writes changed contact figures
MERGE_MAX = 200  # ONTs joining one agent's sorted targets one by one; more: sort again
INCREMENTAL_MAX = 5000  # more ONTs changed than this since the plan: plan them all (thread)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """An agent as configured centrally (storage/agents.py keeps it)."""

    name: str
    areas: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()  # CIDR texts, as given
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class SweepStats:
    """What an agent said of its latest sweep."""

    at: datetime
    duration: float
    targets: int
    replied: int
    silent: int
    retried: int = 0
    held: bool = False

    def record(self) -> dict[str, Any]:
        """JSON shape (GET /api/agents)."""
        return {
            "at": self.at.isoformat(),
            "duration": self.duration,
            "targets": self.targets,
            "replied": self.replied,
            "silent": self.silent,
            "retried": self.retried,
            "held": self.held,
        }


@dataclass(frozen=True, slots=True)
class AgentReport:
    """One report, parsed and checked by api/agents.py (times already as datetimes)."""

    epoch: str
    seq: int
    sent_at: datetime
    interval: float
    assignment: str
    full: bool
    sweep: SweepStats | None
    queue_depth: int
    queue_oldest: datetime | None
    dropped: int
    obs: Sequence[tuple[str, datetime, int]]  # (ont id, observed at, lost)


@dataclass(frozen=True, slots=True)
class ReportAnswer:
    """What the centre did with a report (the JSON answer's fields)."""

    accepted: int
    stale: int
    refused: int
    duplicate: bool
    want_full: bool
    assignment: str

    def record(self) -> dict[str, Any]:
        """The answer's JSON (docs/agents.md)."""
        return {
            "accepted": self.accepted,
            "stale": self.stale,
            "refused": self.refused,
            "duplicate": self.duplicate,
            "want_full": self.want_full,
            "assignment": self.assignment,
        }


@dataclass(frozen=True, slots=True)
class Assignment:
    """The ONTs one agent sweeps, with the version the agent follows (an ETag)."""

    agent: str
    version: str
    targets: tuple[tuple[str, str], ...]  # (ont id, ip) in id order
    refresh_s: int = 300
    down_after: int = 2
    critical_rto: int = 3

    def record(self) -> dict[str, Any]:
        """GET /api/agent/assignment's JSON (docs/agents.md)."""
        return {
            "agent": self.agent,
            "version": self.version,
            "refresh_s": self.refresh_s,
            "down_after": self.down_after,
            "critical_rto": self.critical_rto,
            "targets": [list(t) for t in self.targets],
        }


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """One agent as the pages, the bot, /metrics and `ontwatch agents` show it."""

    name: str
    onts: int  # ONTs assigned now
    revoked: bool = False
    last_contact: datetime | None = None
    interval: float | None = None
    lost: bool = False
    lost_since: datetime | None = None
    sweep: SweepStats | None = None
    queue_depth: int = 0
    queue_oldest: datetime | None = None
    dropped: int = 0
    skew_s: float = 0.0
    accepted: int = 0  # observations applied since the centre started
    stale: int = 0
    refused: int = 0
    reports: int = 0
    areas: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        """JSON shape (GET /api/agents; `ontwatch agents --json`): times ISO 8601."""
        return {
            "name": self.name,
            "onts": self.onts,
            "revoked": self.revoked,
            "last_contact": _iso(self.last_contact),
            "interval": self.interval,
            "lost": self.lost,
            "lost_since": _iso(self.lost_since),
            "sweep": self.sweep.record() if self.sweep is not None else None,
            "queue_depth": self.queue_depth,
            "queue_oldest": _iso(self.queue_oldest),
            "dropped": self.dropped,
            "skew_s": self.skew_s,
            "accepted": self.accepted,
            "stale": self.stale,
            "refused": self.refused,
            "reports": self.reports,
            "areas": list(self.areas),
            "prefixes": list(self.prefixes),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# -- pure decisions --------------------------------------------------------------------------


def _networks(configs: Iterable[AgentConfig]) -> dict[tuple[int, int], dict[int, str]]:
    """(ip version, prefix length) -> network address as int -> the first agent by name."""
    table: dict[tuple[int, int], dict[int, str]] = {}
    for cfg in sorted(configs, key=lambda c: c.name):
        for text in cfg.prefixes:
            try:
                net = ipaddress.ip_network(text.strip(), strict=False)
            except ValueError:
                log.warning("agent %s: prefix %r is not a prefix; ignored", cfg.name, text)
                continue
            table.setdefault((net.version, net.prefixlen), {}).setdefault(
                int(net.network_address), cfg.name
            )
    return table


def _by_area(configs: Iterable[AgentConfig]) -> dict[str, str]:
    """Area name -> the first agent by name that names it."""
    table: dict[str, str] = {}
    for cfg in sorted(configs, key=lambda c: c.name):
        for area in cfg.areas:
            table.setdefault(area.strip(), cfg.name)
    return table


def _parse_ip(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The ONT's address when an echo can be sent to it (as monitor.model.ip_is_valid)."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if addr.is_unspecified or addr.is_multicast:
        return None
    if isinstance(addr, ipaddress.IPv4Address) and int(addr) == 0xFFFFFFFF:
        return None
    return addr


def _longest(
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
    lengths: Sequence[tuple[int, int]],
    table: Mapping[tuple[int, int], Mapping[int, str]],
) -> str | None:
    if not lengths:
        return None
    bits = 32 if addr.version == 4 else 128
    value = int(addr)
    for version, length in lengths:  # longest first
        if version != addr.version:
            continue
        mask = ((1 << length) - 1) << (bits - length) if length else 0
        owner = table[(version, length)].get(value & mask)
        if owner is not None:
            return owner
    return None


class Assigner:
    """The agent configs as lookup tables: which agent sweeps one ONT (docs/agents.md).

    An ONT belongs to the agent naming its area, else to the agent with the longest prefix
    holding its IP; ties go to the name that sorts first. Revoked agents get nothing, and an
    ONT whose IP cannot be probed is nobody's target (it stays with the central prober).
    """

    def __init__(self, configs: Iterable[AgentConfig]) -> None:
        live = [c for c in configs if not c.revoked]
        self.areas = _by_area(live)
        self.table = _networks(live)
        self.lengths = sorted(self.table, key=lambda k: (-k[1], k[0]))

    def owner_of(self, ont: Ont) -> str | None:
        """The agent that sweeps this ONT, or None (the centre's)."""
        area_owner = self.areas.get(ont.area)
        if area_owner is None and not self.lengths:
            return None
        addr = _parse_ip(ont.ip) if ont.ip else None
        if addr is None:
            return None
        return area_owner or _longest(addr, self.lengths, self.table)


def assign(onts: Mapping[str, Ont], configs: Iterable[AgentConfig]) -> dict[str, str]:
    """ONT id -> the agent that sweeps it; ONTs not in the answer are the centre's."""
    assigner = Assigner(configs)
    out: dict[str, str] = {}
    for ont_id, ont in onts.items():
        owner = assigner.owner_of(ont)
        if owner is not None:
            out[ont_id] = owner
    return out


class Liveness(enum.StrEnum):
    """What check() should do about one agent now."""

    ALIVE = "alive"  # heard from within its window
    LOSE = "lose"  # silent past its window and not yet lost: announce it lost now
    LOST = "lost"  # already lost (announced); "back" is decided when it reports


def lost_window(interval: float, multiple: float) -> float:
    """Seconds of silence after which an agent is lost: multiple x interval, at least 10 s."""
    return max(MIN_LOST_S, multiple * interval)


def liveness(
    last_contact: datetime, interval: float, lost: bool, now: datetime, multiple: float
) -> Liveness:
    """An agent's liveness at now, from its last contact (or when the desk started)."""
    if lost:
        return Liveness.LOST
    silent = (now - last_contact).total_seconds()
    return Liveness.LOSE if silent > lost_window(interval, multiple) else Liveness.ALIVE


def skew_of(sent_at: datetime, now: datetime) -> float:
    """Seconds to add to the agent's times to get the centre's (0 within the tolerance)."""
    skew = (now - sent_at).total_seconds()
    return skew if abs(skew) > SKEW_TOLERANCE_S else 0.0


def corrected(at: datetime, skew: float, now: datetime) -> datetime:
    """An observation's time on the centre's clock: never in the centre's future, never
    before the engine's earliest time (an agent's clock can be off by centuries)."""
    if skew:
        try:
            at = at + timedelta(seconds=skew)
        except OverflowError:
            return now if skew > 0 else EARLIEST
    return min(max(at, EARLIEST), now)


def assignment_version(
    targets: Sequence[tuple[str, str]], refresh_s: int, down_after: int, critical_rto: int
) -> str:
    """A stable hash of what the agent does: its targets and its parameters (the ETag)."""
    digest = hashlib.sha256(json.dumps([refresh_s, down_after, critical_rto]).encode())
    text = "".join(f"\x00{ont_id}\x01{ip}" for ont_id, ip in targets)
    digest.update(text.encode("utf-8", "replace"))  # one update: 25,000 targets in ~5 ms
    return digest.hexdigest()[:20]


# -- the desk ---------------------------------------------------------------------------------


class StoredAgent(Protocol):
    """An agent as AgentStore gives it (storage.agents.AgentRow)."""

    @property
    def config(self) -> AgentConfig: ...
    @property
    def last_contact(self) -> datetime | None: ...
    @property
    def lost_since(self) -> datetime | None: ...
    @property
    def epoch(self) -> str | None: ...
    @property
    def last_seq(self) -> int | None: ...
    @property
    def interval(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class AgentContact:
    """The contact figures of one agent that survive a restart (AgentStore.save_contacts)."""

    name: str
    last_contact: datetime | None
    lost_since: datetime | None
    epoch: str | None
    last_seq: int | None
    interval: float | None


class AgentStore(Protocol):
    """What the desk needs of storage/agents.py's Agents."""

    async def all(self) -> Sequence[StoredAgent]:
        """Every agent, revoked ones too."""
        ...

    async def by_token(self, token: str) -> StoredAgent | None:
        """The agent holding this token, unless revoked."""
        ...

    async def save_contacts(self, rows: Sequence[AgentContact]) -> int:
        """Write these agents' contact figures in one transaction."""
        ...


@dataclass(slots=True)
class _Live:
    """What the desk knows of one agent beyond its config (in memory; contacts persisted)."""

    last_contact: datetime | None = None
    heard: datetime | None = None  # the latest arrival of a report still being received
    receiving: int = 0  # its reports being read and applied right now
    lost_since: datetime | None = None
    epoch: str | None = None
    last_seq: int | None = None
    interval: float | None = None
    want_full: bool = True  # the first report after the centre started asks for a full one
    held: bool = False
    sweep: SweepStats | None = None
    queue_depth: int = 0
    queue_oldest: datetime | None = None
    dropped: int = 0
    skew_s: float = 0.0
    accepted: int = 0
    stale: int = 0
    refused: int = 0
    reports: int = 0
    unsaved: bool = False
    unobserved: str = ""  # the assignment version whose ONTs were made UNKNOWN when lost
    unobserved_ids: frozenset[str] = frozenset()  # those ONTs
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def contact(self, name: str) -> AgentContact:
        return AgentContact(
            name, self.last_contact, self.lost_since, self.epoch, self.last_seq, self.interval
        )


@dataclass(frozen=True, slots=True)
class _Plan:
    """One computed assignment: owners and each agent's Assignment."""

    owner: Mapping[str, str]
    by_agent: Mapping[str, Assignment]
    assigned: frozenset[str]


_EMPTY_PLAN = _Plan({}, {}, frozenset())


class AgentDesk:
    """The centre's agents: assignments, reports, liveness (monitor.ports.AgentBoard)."""

    def __init__(
        self,
        store: AgentStore,
        engine: Engine,
        clock: Callable[[], datetime],
        lost_after: float = 3.0,
        default_interval: float = 5.0,
        refresh_s: int = 300,
    ) -> None:
        self.store = store
        self.engine = engine
        self.clock = clock
        self.lost_after = lost_after
        self.default_interval = default_interval
        self.refresh_s = refresh_s
        self.configs: dict[str, AgentConfig] = {}
        self._live: dict[str, _Live] = {}
        self._plan = _EMPTY_PLAN
        self._onts: Mapping[str, Ont] = {}  # the inventory the plan was computed from
        self._generation = 0  # bumped by every change that may move an ONT
        self._planned = -1  # the generation of the plan
        # ONTs added, moved, re-addressed or deleted since the plan; None: plan everything
        self._pending: set[str] | None = None
        self._plan_lock = asyncio.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}  # sha256(token) -> (name, checked)
        self._started: datetime | None = None
        self._reloaded = 0.0
        self._saved = 0.0
        self._unsubscribe: Callable[[], None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the configs and the persisted contacts; watch the inventory; plan."""
        self._started = self.clock()
        rows = await self.store.all()
        self.configs = {r.config.name: r.config for r in rows}
        self._live = {r.config.name: _from_row(r) for r in rows}
        self._reloaded = self._saved = time.monotonic()
        self._unsubscribe = self.engine.feed.subscribe(self._on_feed)
        self._replan_all()
        await self.refresh()

    async def stop(self) -> None:
        """Stop watching the inventory and write every agent's contact figures."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self.save(every=True)

    async def reload(self) -> bool:
        """Re-read the agent configs (the CLI changed them); True when any changed."""
        rows = await self.store.all()
        self._reloaded = time.monotonic()
        configs = {r.config.name: r.config for r in rows}
        if configs == self.configs:
            return False
        for row in rows:
            if row.config.name not in self._live:
                self._live[row.config.name] = _from_row(row)
        for gone in self._live.keys() - configs.keys():
            del self._live[gone]
        self.configs = configs
        self._tokens.clear()  # a revoked agent's token stops working at once
        self._replan_all()
        await self.refresh()
        return True

    async def save(self, *, every: bool = False) -> int:
        """Write the contact figures that changed (all of them when every)."""
        self._saved = time.monotonic()
        rows = [live.contact(name) for name, live in self._live.items() if every or live.unsaved]
        if not rows:
            return 0
        for name in (r.name for r in rows):
            self._live[name].unsaved = False
        try:
            return await self.store.save_contacts(rows)
        except Exception:
            for name in (r.name for r in rows):
                if name in self._live:
                    self._live[name].unsaved = True
            raise

    # -- the assignment -------------------------------------------------------------------

    def _replan_all(self) -> None:
        """The configs changed (or the desk starts): every ONT is assigned again."""
        self._pending = None
        self._generation += 1

    def _on_feed(self, item: FeedItem) -> None:
        """Note the ONTs a commit added, moved, re-addressed or deleted (O(its changes)).

        State-only commits (nearly all: every report's) carry the same Ont objects as the
        plan's snapshot, so they cost one identity check per changed ONT.
        """
        if not isinstance(item, Commit) or self._pending is None:
            return  # everything is planned again anyway
        known, pending = self._onts, self._pending
        before = len(pending)
        for ont, _ in item.changed:
            seen = known.get(ont.id)
            if seen is not ont and (seen is None or seen.ip != ont.ip or seen.area != ont.area):
                pending.add(ont.id)
        pending.update(ont_id for ont_id in item.deleted if ont_id in known)
        if len(pending) != before:
            self._generation += 1

    async def refresh(self) -> None:
        """Bring the assignment up to date: the ONTs that changed, or all after a config change."""
        if self._planned == self._generation:
            return
        async with self._plan_lock:
            while self._planned != self._generation:
                generation = self._generation
                pending, self._pending = self._pending, set()  # changes from now on: next turn
                if pending is None or len(pending) > INCREMENTAL_MAX:
                    await self._plan_all()
                else:
                    self._plan_some(pending)
                self._planned = generation

    async def _plan_all(self) -> None:
        """Assign every ONT, on a thread (100,000 IPs parsed: about 0.3 s)."""
        onts = dict(self.engine.onts)  # a snapshot: the writer changes the dict
        configs = list(self.configs.values())
        t = self.engine.thresholds
        self._plan = await asyncio.to_thread(
            _make_plan, onts, configs, self.refresh_s, t.down_after, t.critical_rto
        )
        self._onts = onts

    def _plan_some(self, ids: set[str]) -> None:
        """Assign again only these ONTs; rebuild only the assignments they leave or join."""
        assigner = Assigner(self.configs.values())
        owner = dict(self._plan.owner)
        touched: set[str] = set()
        for ont_id in ids:
            ont = self.engine.onts.get(ont_id)
            old = owner.pop(ont_id, None)
            new = assigner.owner_of(ont) if ont is not None else None
            if ont is None:
                self._onts.pop(ont_id, None)
            else:
                self._onts[ont_id] = ont
            if new is not None:
                owner[ont_id] = new
            touched.update(a for a in (old, new) if a is not None)
        by_agent = dict(self._plan.by_agent)
        t = self.engine.thresholds
        for agent in touched:
            targets = [x for x in by_agent[agent].targets if x[0] not in ids]
            joining = [(i, self._onts[i].ip.strip()) for i in ids if owner.get(i) == agent]
            _merge_sorted(targets, joining)
            version = assignment_version(targets, self.refresh_s, t.down_after, t.critical_rto)
            by_agent[agent] = Assignment(
                agent, version, tuple(targets), self.refresh_s, t.down_after, t.critical_rto
            )
        assigned = frozenset(owner) if touched else self._plan.assigned
        self._plan = _Plan(owner, by_agent, assigned)

    async def assignment(self, name: str) -> Assignment:
        """The agent's current assignment (empty for an unknown or revoked agent)."""
        await self.refresh()
        return self._assignment(name)

    def _assignment(self, name: str) -> Assignment:
        found = self._plan.by_agent.get(name)
        if found is not None:
            return found
        t = self.engine.thresholds
        version = assignment_version((), self.refresh_s, t.down_after, t.critical_rto)
        return Assignment(name, version, (), self.refresh_s, t.down_after, t.critical_rto)

    def assigned(self) -> frozenset[str]:
        """Ids of the ONTs an agent sweeps (the central prober leaves them alone)."""
        return self._plan.assigned

    # -- authentication -------------------------------------------------------------------

    async def authenticate(self, token: str) -> str | None:
        """The agent holding token (not revoked), or None. The token itself is never kept."""
        if not token or len(token) > 512:
            return None
        key = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
        cached = self._tokens.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[1] < TOKEN_TTL_S:
            return cached[0]
        row = await self.store.by_token(token)
        if row is None or row.config.revoked:
            self._tokens.pop(key, None)
            return None
        name = row.config.name
        if self.configs.get(name) != row.config:
            await self.reload()  # added or changed by the CLI since the last reload
        self._tokens[key] = (name, now)
        return name

    # -- reports --------------------------------------------------------------------------

    @contextlib.contextmanager
    def receiving(self, name: str) -> Iterator[None]:
        """While a report of the agent is read and applied, its arrival counts as contact: a
        busy centre must not declare its agents lost for its own delay. A report refused
        (4xx) counts for nothing once it is answered."""
        live = self._live.get(name)
        if live is None:
            yield
            return
        live.receiving += 1
        live.heard = self.clock()
        try:
            yield
        finally:
            live.receiving -= 1

    async def report(self, name: str, report: AgentReport) -> ReportAnswer:
        """Apply one agent report: in time order, only its own ONTs, once per (epoch, seq)."""
        live = self._live.setdefault(name, _Live())
        await self.refresh()
        async with live.lock:
            now = self.clock()
            await self._contact(name, live, report, now)
            version = self._assignment(name).version
            if _duplicate(live, report):
                # applied before, maybe before the agent was lost and its ONTs made UNKNOWN
                # (an answer that never reached it): it re-states nothing now, so a full
                # report is still due if one was
                want = live.want_full or report.assignment != version
                return ReportAnswer(0, 0, 0, True, want, version)
            accepted, stale, refused = await self._apply(name, report, now)
            live.epoch, live.last_seq = report.epoch, report.seq
            live.accepted += accepted
            live.stale += stale
            live.refused += refused
            await self._sweep_events(name, live, report.sweep, now)
            want = self._wants_full(live, report, version)
            return ReportAnswer(accepted, stale, refused, False, want, version)

    def _wants_full(self, live: _Live, report: AgentReport, version: str) -> bool:
        """A full report is due after start, after a return, and after a new assignment."""
        if report.full and report.assignment == version:
            live.want_full = False
            return False
        return live.want_full or report.assignment != version

    async def _contact(self, name: str, live: _Live, report: AgentReport, now: datetime) -> None:
        """Record the contact; the first one after the agent was lost announces its return."""
        was_lost, last = live.lost_since, live.last_contact
        live.last_contact = now
        live.interval = report.interval
        live.skew_s = (now - report.sent_at).total_seconds()
        live.queue_depth, live.queue_oldest = report.queue_depth, report.queue_oldest
        live.dropped = report.dropped
        live.reports += 1
        if report.sweep is not None:
            live.sweep = report.sweep
        live.unsaved = True
        if was_lost is None:
            return
        live.lost_since = None
        live.want_full = True
        away = (now - (last or was_lost)).total_seconds()
        onts = len(self._assignment(name).targets)
        reason = Reason.of(ReasonCode.AGENT_BACK, agent=name, onts=onts, away_s=round(away))
        await self.engine.announce(
            Event(EventKind.AGENT_BACK, Severity.OK, now, reason, agent=name)
        )
        await self.save()  # a restart now must not announce the return again

    async def _apply(self, name: str, report: AgentReport, now: datetime) -> tuple[int, int, int]:
        """Apply the report's own observations in time order; (accepted, stale, refused)."""
        owner = self._plan.owner
        skew = skew_of(report.sent_at, now)
        own = [
            (corrected(at, skew, now), ont_id, lost)
            for ont_id, at, lost in report.obs
            if owner.get(ont_id) == name
        ]
        refused = len(report.obs) - len(own)
        if refused:
            log.info("agent %s: %d observations of ONTs not its own refused", name, refused)
        own.sort(key=lambda o: o[0])  # stable: one ONT's observations keep their order
        accepted = stale = 0
        for start in range(0, len(own), APPLY_SLICE):
            part = own[start : start + APPLY_SLICE]
            results = await self.engine.ingest_many(
                [Observation.agent(ont_id, lost, at) for at, ont_id, lost in part]
            )
            for result in results:
                if not isinstance(result, Decision):
                    refused += 1  # deleted from the inventory since the plan
                elif result.reason.code is ReasonCode.STALE:
                    stale += 1
                else:
                    accepted += 1
        return accepted, stale, refused

    async def _sweep_events(
        self, name: str, live: _Live, sweep: SweepStats | None, now: datetime
    ) -> None:
        """The agent's self-health gate: one "cannot reach its ONTs" alert, one "sees" again."""
        if sweep is None or sweep.held == live.held:
            return
        live.held = sweep.held
        if sweep.held:
            kind, severity = EventKind.MONITOR_OFFLINE, Severity.CRITICAL
            reason = Reason.of(
                ReasonCode.AGENT_BLIND, agent=name, silent=sweep.silent, targets=sweep.targets
            )
        else:
            kind, severity = EventKind.MONITOR_ONLINE, Severity.OK
            reason = Reason.of(
                ReasonCode.AGENT_SEES, agent=name, replied=sweep.replied, targets=sweep.targets
            )
        await self.engine.announce(Event(kind, severity, now, reason, agent=name))

    # -- liveness -------------------------------------------------------------------------

    async def check(self) -> list[str]:
        """Every second: reload configs now and then, declare silent agents lost; who was."""
        mono = time.monotonic()
        if mono - self._reloaded >= RELOAD_EVERY_S:
            await self.reload()
        await self.refresh()
        now = self.clock()
        silent = [n for n in sorted(self._live) if self._verdict(n, now) is Liveness.LOSE]
        lost = [name for name in silent if await self._lose(name, now)]
        await self._unobserve_moved()
        if time.monotonic() - self._saved >= SAVE_EVERY_S:
            await self.save()
        return lost

    def _verdict(self, name: str, now: datetime) -> Liveness:
        cfg = self.configs.get(name)
        live = self._live[name]
        if cfg is None or cfg.revoked:
            return Liveness.ALIVE  # a revoked agent's ONTs are the centre's again
        # Silence is counted from the desk's start at the earliest: the centre being down
        # is no fault of the agent's, which gets a whole window to report again.
        start = self._started or now
        heard = live.heard if live.receiving else None
        contacts = [t for t in (live.last_contact, heard) if t is not None and t > start]
        since = max(contacts, default=start)
        interval = live.interval or self.default_interval
        return liveness(since, interval, live.lost_since is not None, now, self.lost_after)

    async def _unobserve_moved(self) -> None:
        """ONTs given to an agent while it is lost are not observed either: UNKNOWN too.

        Only those that joined, and under the agent's lock: a report that comes in meanwhile
        (the agent is back) is applied before or after, never interleaved with this mark,
        which would turn ONTs its report had just seen ON back to UNKNOWN.
        """
        for name, live in list(self._live.items()):
            if live.lost_since is None or name not in self._plan.by_agent:
                continue
            async with live.lock:
                assignment = self._plan.by_agent.get(name)
                if live.lost_since is None or assignment is None:
                    continue  # it came back while we waited for the lock
                if live.unobserved == assignment.version:
                    continue
                ids = [i for i, _ in assignment.targets]
                joined = [i for i in ids if i not in live.unobserved_ids]
                if joined:
                    await self.engine.mark_unobserved(joined, agent=name)
                live.unobserved, live.unobserved_ids = assignment.version, frozenset(ids)

    async def _lose(self, name: str, now: datetime) -> bool:
        """One "agent lost" alert; its ONTs UNKNOWN (not OFF); persisted at once."""
        live = self._live[name]
        async with live.lock:
            if self._verdict(name, self.clock()) is not Liveness.LOSE:
                return False  # a report came in meanwhile (or it was lost already)
            assignment = self._assignment(name)
            ids = [ont_id for ont_id, _ in assignment.targets]
            await self.engine.mark_unobserved(ids, agent=name)
            live.unobserved, live.unobserved_ids = assignment.version, frozenset(ids)
            since = live.last_contact or self._started or now
            silent = round((now - since).total_seconds())
            reason = Reason.of(ReasonCode.AGENT_LOST, agent=name, onts=len(ids), silent_s=silent)
            event = Event(EventKind.AGENT_LOST, Severity.CRITICAL, now, reason, agent=name)
            await self.engine.announce(event)
            live.lost_since = now
            live.held = False
            live.unsaved = True
            log.warning("probe agent %s lost: %d ONTs unobserved", name, len(ids))
        await self.save()
        return True

    # -- the read side --------------------------------------------------------------------

    def statuses(self) -> list[AgentStatus]:
        """Every configured agent's status, in name order."""
        out = []
        for name in sorted(self.configs):
            cfg = self.configs[name]
            live = self._live.get(name) or _Live()
            out.append(
                AgentStatus(
                    name=name,
                    onts=len(self._plan.by_agent[name].targets)
                    if name in self._plan.by_agent
                    else 0,
                    revoked=cfg.revoked,
                    last_contact=live.last_contact,
                    interval=live.interval,
                    lost=live.lost_since is not None,
                    lost_since=live.lost_since,
                    sweep=live.sweep,
                    queue_depth=live.queue_depth,
                    queue_oldest=live.queue_oldest,
                    dropped=live.dropped,
                    skew_s=live.skew_s,
                    accepted=live.accepted,
                    stale=live.stale,
                    refused=live.refused,
                    reports=live.reports,
                    areas=cfg.areas,
                    prefixes=cfg.prefixes,
                )
            )
        return out


def _duplicate(live: _Live, report: AgentReport) -> bool:
    """(epoch, seq) already applied: seq only grows within an epoch (docs/agents.md)."""
    return report.epoch == live.epoch and live.last_seq is not None and report.seq <= live.last_seq


def _from_row(row: StoredAgent) -> _Live:
    return _Live(
        last_contact=row.last_contact,
        lost_since=row.lost_since,
        epoch=row.epoch,
        last_seq=row.last_seq,
        interval=row.interval,
    )


def _make_plan(
    onts: Mapping[str, Ont],
    configs: Sequence[AgentConfig],
    refresh_s: int,
    down_after: int,
    critical_rto: int,
) -> _Plan:
    """The assignment and each agent's Assignment (run on a thread: 100,000 IPs parsed)."""
    owner = assign(onts, configs)
    targets: dict[str, list[tuple[str, str]]] = {c.name: [] for c in configs if not c.revoked}
    for ont_id, agent in owner.items():
        targets[agent].append((ont_id, onts[ont_id].ip.strip()))
    by_agent = {
        agent: _agent_assignment(agent, items, refresh_s, down_after, critical_rto)
        for agent, items in targets.items()
    }
    return _Plan(owner, by_agent, frozenset(owner))


def _target_key(target: tuple[str, str]) -> tuple[int, int | str]:
    return id_sort_key(target[0])


def _merge_sorted(targets: list[tuple[str, str]], joining: list[tuple[str, str]]) -> None:
    """Put a few targets into a list kept in id order, without re-keying all of it."""
    if len(joining) > MERGE_MAX:
        targets.extend(joining)
        targets.sort(key=_target_key)
        return
    for target in joining:
        bisect.insort(targets, target, key=_target_key)


def _agent_assignment(
    agent: str, targets: list[tuple[str, str]], refresh_s: int, down_after: int, critical_rto: int
) -> Assignment:
    """One agent's Assignment: its targets in id order and the version they hash to."""
    targets.sort(key=_target_key)
    version = assignment_version(targets, refresh_s, down_after, critical_rto)
    return Assignment(agent, version, tuple(targets), refresh_s, down_after, critical_rto)
