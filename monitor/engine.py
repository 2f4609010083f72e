"""The engine: the one writer. Applies the rules and group-commits state, history and alerts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Generic, TypeVar

from monitor import outages, rules
from monitor.feed import Commit, Feed, Notice
from monitor.model import (
    Decision,
    Event,
    EventKind,
    Observation,
    Ont,
    OntState,
    Reason,
    ReasonCode,
    Severity,
    Source,
    Status,
    Thresholds,
    id_sort_key,
)
from monitor.outages import MassOutage
from monitor.ports import (
    AlertSink,
    Batch,
    Clock,
    HistoryEntry,
    Mute,
    Router,
    StaticRouter,
    Store,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


class UnknownOnt(LookupError):
    """The observation or command names an ONT that is not in the inventory."""

    def __init__(self, ont_id: str) -> None:
        super().__init__(f"unknown ONT id {ont_id!r}")
        self.ont_id = ont_id


class StoreUnavailable(RuntimeError):
    """The batch could not be made durable (disk full, database locked, ...)."""


@dataclass(slots=True)
class _Job(Generic[T]):
    apply: Callable[[_Txn], T]
    future: asyncio.Future[T]


@dataclass(slots=True)
class _Txn:
    """One batch in the making: the changes to write and how to undo them in memory."""

    engine: Engine
    now: datetime
    batch: Batch = field(default_factory=Batch)
    undo_onts: dict[str, Ont | None] = field(default_factory=dict)
    undo_states: dict[str, OntState | None] = field(default_factory=dict)
    undo_mutes: dict[str, Mute | None] = field(default_factory=dict)
    undo_outages: dict[str, MassOutage | None] = field(default_factory=dict)
    undo_dirty: set[str] | None = None
    events: list[tuple[Event, Ont | None]] = field(default_factory=list)
    areas: set[str] = field(default_factory=set)  # areas where an ONT went down, up or ON/OFF
    changed: set[str] = field(default_factory=set)  # ONTs whose inventory or state changed

    def put_ont(self, ont: Ont) -> None:
        e = self.engine
        self.undo_onts.setdefault(ont.id, e.onts.get(ont.id))
        old = e.onts.get(ont.id)
        if old is not None and old.area != ont.area:
            e.area_index.get(old.area, set()).discard(ont.id)
            opened = e.down_index.get(old.area, {}).pop(ont.id, None)
            if opened is not None:
                e.down_index.setdefault(ont.area, {})[ont.id] = opened
        e.area_index.setdefault(ont.area, set()).add(ont.id)
        e.onts[ont.id] = ont
        self.batch.onts[ont.id] = ont
        self.batch.deleted.discard(ont.id)
        self.changed.add(ont.id)

    def delete_ont(self, ont_id: str) -> None:
        e = self.engine
        self.undo_onts.setdefault(ont_id, e.onts.get(ont_id))
        self.undo_states.setdefault(ont_id, e.states.get(ont_id))
        old = e.onts.get(ont_id)
        if old is not None:
            e.area_index.get(old.area, set()).discard(ont_id)
            e.down_index.get(old.area, {}).pop(ont_id, None)
        e.onts.pop(ont_id, None)
        e.states.pop(ont_id, None)
        self.batch.onts.pop(ont_id, None)
        self.batch.states.pop(ont_id, None)
        self.batch.deleted.add(ont_id)
        self.changed.discard(ont_id)

    def put_state(self, state: OntState) -> None:
        e = self.engine
        old = e.states.get(state.ont_id)
        self.undo_states.setdefault(state.ont_id, old)
        e.states[state.ont_id] = state
        self.batch.states[state.ont_id] = state
        self.changed.add(state.ont_id)
        ont = e.onts.get(state.ont_id)
        if ont is None:
            return
        was_down = old is not None and outages.is_down(old)
        if outages.is_down(state):
            e.down_index.setdefault(ont.area, {})[state.ont_id] = state.incident.opened_at  # type: ignore[union-attr]
        elif was_down:
            e.down_index.get(ont.area, {}).pop(state.ont_id, None)
        if was_down != outages.is_down(state) or (
            old is not None and old.status is not state.status
        ):
            self.areas.add(ont.area)

    def touch_state(self, state: OntState) -> None:
        """Keep an unchanged probe's last_seen in memory; the next tick writes it."""
        e = self.engine
        self.undo_states.setdefault(state.ont_id, e.states.get(state.ont_id))
        e.states[state.ont_id] = state
        e.dirty.add(state.ont_id)

    def put_outage(self, area: str, outage: MassOutage | None) -> None:
        e = self.engine
        self.undo_outages.setdefault(area, e.outages.get(area))
        if outage is None:
            e.outages.pop(area, None)
        else:
            e.outages[area] = outage
        self.batch.outages[area] = outage

    def fold(self, members: frozenset[str], joined: frozenset[str]) -> None:
        """Members' messages in this batch, and joiners' undelivered ones, fold into the outage."""
        self.batch.folded |= joined
        if not members:
            return
        self.batch.alerts = [
            (replace(ev, notify=False), ont, ()) if ev.ont_id in members else (ev, ont, chats)
            for ev, ont, chats in self.batch.alerts
        ]
        self.events = [
            (replace(ev, notify=False) if ev.ont_id in members else ev, ont)
            for ev, ont in self.events
        ]

    def put_mute(self, target: str, mute: Mute | None) -> None:
        e = self.engine
        self.undo_mutes.setdefault(target, e.mutes.get(target))
        if mute is None:
            e.mutes.pop(target, None)
        else:
            e.mutes[target] = mute
        self.batch.mutes[target] = mute

    def emit(self, event: Event) -> None:
        ont = self.engine.onts.get(event.ont_id) if event.ont_id else None
        self.batch.alerts.append((event, ont, self.engine.router.chats_for(event)))
        self.events.append((event, ont))

    def record(self, entry: HistoryEntry) -> None:
        self.batch.history.append(entry)

    def rollback(self) -> None:
        e = self.engine
        for mapping, undo in (
            (e.onts, self.undo_onts),
            (e.states, self.undo_states),
            (e.mutes, self.undo_mutes),
            (e.outages, self.undo_outages),
        ):
            for key, old in undo.items():
                if old is None:
                    mapping.pop(key, None)  # type: ignore[attr-defined]
                else:
                    mapping[key] = old  # type: ignore[index]
        e.area_index = _index_areas(e.onts)
        e.down_index = _index_down(e.onts, e.states)
        if self.undo_dirty is not None:
            e.dirty |= self.undo_dirty


class Engine:
    """Single writer over the inventory and live state; every status source calls ingest."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        thresholds: Thresholds | None = None,
        router: Router | None = None,
        sinks: Sequence[AlertSink] = (),
        feed: Feed | None = None,
        max_batch: int = 20_000,
    ) -> None:
        self.store = store
        self.clock = clock
        self.thresholds = thresholds or Thresholds()
        self.router: Router = router or StaticRouter(())
        self.feed = feed or Feed()  # every durable commit is told here, after it is stored
        for sink in sinks:
            self.add_sink(sink)
        self.max_batch = max_batch
        self.onts: dict[str, Ont] = {}
        self.states: dict[str, OntState] = {}
        self.mutes: dict[str, Mute] = {}
        self.outages: dict[str, MassOutage] = {}
        self.area_index: dict[str, set[str]] = {}
        self.down_index: dict[str, dict[str, datetime]] = {}  # area -> down ONT -> since
        self.dirty: set[str] = set()  # states changed in memory only (probe last_seen)
        self._queue: asyncio.Queue[_Job[Any]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self.commits = 0  # batches written, for metrics and tests
        self.observed: Counter[str] = Counter()  # observations applied, by source (metrics)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Load the stored state and start the writer."""
        snap = await self.store.load()
        self.onts = {o.id: o for o in snap.onts}
        self.states = {s.ont_id: s for s in snap.states}
        self.mutes = {m.target: m for m in snap.mutes}
        self.outages = {o.area: o for o in snap.outages}
        self.area_index = _index_areas(self.onts)
        for ont_id in self.onts.keys() - self.states.keys():
            self.states[ont_id] = OntState(ont_id=ont_id)
        self.down_index = _index_down(self.onts, self.states)
        self._writer = asyncio.create_task(self._write_loop(), name="ontwatch-writer")

    async def stop(self) -> None:
        """Finish queued work, then stop the writer."""
        if self._writer is None:
            return
        await self._queue.join()
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        self._writer = None

    def add_sink(self, sink: AlertSink) -> None:
        """Tell sink the events of every commit that stored any."""

        def tell(item: object) -> None:
            if isinstance(item, Commit) and item.notices:
                sink.committed(item.events)

        self.feed.subscribe(tell)

    def writer_alive(self) -> bool:
        """Whether the writer task runs (for health checks)."""
        return self._writer is not None and not self._writer.done()

    # -- reads (the in-memory view; it only ever holds committed or committing data) ---------

    def get(self, ont_id: str) -> tuple[Ont, OntState] | None:
        """Inventory and state of one ONT."""
        ont = self.onts.get(ont_id)
        return (ont, self.states[ont_id]) if ont else None

    def items(self) -> list[tuple[Ont, OntState]]:
        """Every ONT with its state."""
        return [(o, self.states[i]) for i, o in self.onts.items()]

    def is_muted(self, ont: Ont, now: datetime) -> bool:
        """Whether the ONT or its area is silenced at now."""
        return self._silenced(f"ont:{ont.id}", now) or self._area_muted(ont.area, now)

    def _area_muted(self, area: str, now: datetime) -> bool:
        return self._silenced(f"area:{area}", now)

    def _silenced(self, target: str, now: datetime) -> bool:
        mute = self.mutes.get(target)
        return mute is not None and mute.until > now

    # -- writes ---------------------------------------------------------------------------

    async def ingest(self, obs: Observation) -> Decision:
        """Apply one observation; returns the decision once it is durably stored."""
        return await self._submit(lambda tx: self._apply(tx, obs))

    async def ingest_many(self, observations: Sequence[Observation]) -> list[Decision | UnknownOnt]:
        """Apply many observations in one batch; unknown ONTs are reported per item."""

        def apply(tx: _Txn) -> list[Decision | UnknownOnt]:
            out: list[Decision | UnknownOnt] = []
            for obs in observations:
                try:
                    out.append(self._apply(tx, obs))
                except UnknownOnt as exc:
                    out.append(exc)
            return out

        return await self._submit(apply)

    async def upsert(self, onts: Sequence[Ont], baseline: Iterable[Observation] = ()) -> list[bool]:
        """Create or update ONTs (True = created), then apply baseline observations."""

        def apply(tx: _Txn) -> list[bool]:
            created = []
            for ont in onts:
                old = self.onts.get(ont.id)
                tx.put_ont(ont)
                if ont.id not in self.states:
                    tx.put_state(OntState(ont_id=ont.id))
                created.append(old is None)
                event = rules.check_inventory(old, ont, tx.now)
                if event is not None:
                    tx.emit(event)
            for obs in baseline:
                self._apply(tx, obs)
            return created

        return await self._submit(apply)

    async def delete(self, ont_id: str) -> None:
        """Remove an ONT, its state and its mute."""

        def apply(tx: _Txn) -> None:
            if ont_id not in self.onts:
                raise UnknownOnt(ont_id)
            tx.delete_ont(ont_id)
            if f"ont:{ont_id}" in self.mutes:
                tx.put_mute(f"ont:{ont_id}", None)

        await self._submit(apply)

    async def ack(self, ont_id: str, by: str) -> tuple[OntState, str]:
        """Acknowledge the ONT's open incident; the reason tells what happened."""

        def apply(tx: _Txn) -> tuple[OntState, str]:
            state = self._state(ont_id)
            new, reason = rules.acknowledge(state, by, tx.now)
            if new is not state:
                tx.put_state(new)
            return new, reason

        return await self._submit(apply)

    async def ack_area(self, area: str, by: str) -> tuple[MassOutage | None, str]:
        """Acknowledge the area's open mass outage; the reason tells what happened."""

        def apply(tx: _Txn) -> tuple[MassOutage | None, str]:
            outage = self.outages.get(area)
            if outage is None:
                return None, "no open mass outage"
            new, reason = outages.acknowledge(outage, by, tx.now)
            if new is not outage:
                tx.put_outage(area, new)
            return new, reason

        return await self._submit(apply)

    async def mute(self, target: str, until: datetime, by: str) -> Mute:
        """Silence an ONT ("ont:<id>") or an area ("area:<name>") until a time."""

        def apply(tx: _Txn) -> Mute:
            kind, _, name = target.partition(":")
            if kind == "ont":
                self._state(name)
            elif kind != "area" or not name:
                raise ValueError(f"mute target must be ont:<id> or area:<name>, got {target!r}")
            mute = Mute(target=target, until=until, by=by)
            tx.put_mute(target, mute)
            return mute

        return await self._submit(apply)

    async def unmute(self, target: str) -> bool:
        """Lift a silence; False when there was none."""

        def apply(tx: _Txn) -> bool:
            if target not in self.mutes:
                return False
            tx.put_mute(target, None)
            return True

        return await self._submit(apply)

    async def tick(self, now: datetime | None = None) -> list[Event]:
        """Time-driven rules for every ONT, mute expiry, and the write-back of probe state."""

        def apply(tx: _Txn) -> list[Event]:
            at = now or tx.now
            self._expire_mutes(tx, at)
            for ont_id, ont in self.onts.items():
                state = self.states[ont_id]
                if state.incident is None and not state.flapping:
                    continue
                ctx = rules.Context(self.thresholds, muted=self.is_muted(ont, at))
                decision = rules.tick(ont, state, at, ctx)
                if decision.changed:
                    tx.put_state(decision.state)
                for event in decision.events:
                    tx.emit(event)
            # Every open area incident is due a look (recovery, reminder); done here rather
            # than at the end of the batch so that the events returned include the areas'.
            tx.areas.update(self.outages)
            self._assess_outages(tx)
            tx.areas.clear()
            tx.undo_dirty = set(self.dirty)
            for ont_id in self.dirty:
                if ont_id in self.states and ont_id not in tx.batch.states:
                    tx.batch.states[ont_id] = self.states[ont_id]
            self.dirty.clear()
            return [e for e, _ in tx.events]

        return await self._submit(apply)

    async def announce(self, event: Event) -> None:
        """Record and route an event that belongs to no ONT (e.g. the monitor lost its network)."""

        def apply(tx: _Txn) -> None:
            tx.emit(event)

        await self._submit(apply)

    # -- internals ------------------------------------------------------------------------

    def _expire_mutes(self, tx: _Txn, now: datetime) -> None:
        for target, mute in list(self.mutes.items()):
            if mute.until > now:
                continue
            tx.put_mute(target, None)
            kind, _, name = target.partition(":")
            ids = [name] if kind == "ont" else sorted(self.area_index.get(name, ()))
            for ont_id in ids:
                state = self.states.get(ont_id)
                ont = self.onts.get(ont_id)
                if state is None or ont is None or state.incident is None:
                    continue
                if state.incident.acked_at is not None or self.is_muted(ont, now):
                    continue
                tx.emit(
                    Event(
                        kind=EventKind.REMINDER,
                        severity=state.severity,
                        at=now,
                        ont_id=ont_id,
                        area=ont.area,
                        status=state.status,
                        rto_count=state.rto_count,
                        duration=now - state.incident.opened_at,
                        reason=Reason.of(
                            ReasonCode.MUTE_ENDED,
                            severity=state.severity.value,
                            cause=state.incident.reason,
                        ),
                    )
                )

    def _assess_outages(self, tx: _Txn) -> None:
        for area in sorted(tx.areas):
            active = self.outages.get(area)
            down = self.down_index.get(area, {})
            if active is None and len(down) < outages.MIN_SHARE_ONTS:
                continue  # the common case: nothing like a mass outage here
            size = len(self.area_index.get(area, ()))
            verdict = outages.assess_area(area, down, size, active, tx.now, self.thresholds)
            if verdict.outage != active:
                tx.put_outage(area, verdict.outage)
            for event in verdict.events:
                if event.kind is EventKind.REMINDER and self._area_muted(area, tx.now):
                    event = replace(event, notify=False)
                tx.emit(event)
            if verdict.outage is not None or verdict.events:
                tx.fold(verdict.fold, verdict.joined)
            for ont_id in sorted(verdict.joined):
                self._mark_member(tx, ont_id, area)
            for ont_id in sorted(verdict.release):
                self._mark_member(tx, ont_id, "")

    def _mark_member(self, tx: _Txn, ont_id: str, area: str) -> None:
        state = self.states.get(ont_id)
        inc = state.incident if state is not None else None
        if state is None or inc is None or inc.mass_outage == area:
            return  # deleted since it joined, or nothing to mark
        # Part of a mass outage is critical (DESIGN.md); leaving one never de-escalates.
        severity = Severity.CRITICAL if area and state.status is Status.OFF else inc.severity
        tx.put_state(state.evolve(incident=replace(inc, mass_outage=area, severity=severity)))

    def _state(self, ont_id: str) -> OntState:
        if ont_id not in self.onts:
            raise UnknownOnt(ont_id)
        return self.states[ont_id]

    def _apply(self, tx: _Txn, obs: Observation) -> Decision:
        state = self._state(obs.ont_id)
        ont = self.onts[obs.ont_id]
        ctx = rules.Context(self.thresholds, muted=self.is_muted(ont, obs.at))
        decision = rules.decide(ont, state, obs, ctx)
        self.observed[obs.source.value] += 1
        if obs.source is Source.PROBE and not decision.changed and not decision.events:
            tx.touch_state(decision.state)  # 10,000 ONTs every 5 s: don't rewrite what is stable
            return decision
        tx.put_state(decision.state)
        for event in decision.events:
            tx.emit(event)
        if obs.source is not Source.PROBE or decision.changed:
            s = decision.state
            tx.record(
                HistoryEntry(
                    ont_id=s.ont_id,
                    at=obs.at,
                    source=obs.source,
                    status=s.status,
                    rto_count=s.rto_count,
                    severity=s.severity,
                    reason=decision.reason,
                )
            )
        return decision

    async def _submit(self, apply: Callable[[_Txn], T]) -> T:
        if self._writer is None:
            raise RuntimeError("engine is not started")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(apply, future))
        return await future

    async def _write_loop(self) -> None:
        while True:
            jobs = [await self._queue.get()]
            # Group commit: everything that queued up while the last commit ran shares this one.
            while not self._queue.empty() and len(jobs) < self.max_batch:
                jobs.append(self._queue.get_nowait())
            try:
                await self._run_batch(jobs)
            finally:
                for _ in jobs:
                    self._queue.task_done()

    async def _run_batch(self, jobs: list[_Job[Any]]) -> None:
        tx = _Txn(self, now=self.clock())
        results: list[tuple[_Job[Any], Any, BaseException | None]] = []
        for job in jobs:
            if job.future.cancelled():
                continue
            try:
                results.append((job, job.apply(tx), None))
            except (LookupError, ValueError) as exc:
                results.append((job, None, exc))
            except Exception as exc:
                # A bug must fail its own request, never stop the writer (every later push
                # would hang). Jobs validate before they mutate, so nothing half-applied stays.
                log.exception("job failed in the writer")
                results.append((job, None, exc))
        if tx.areas:
            try:
                self._assess_outages(tx)
            except Exception as exc:
                log.exception("mass-outage assessment failed; the batch is not written")
                tx.rollback()
                for job, _, _ in results:
                    if not job.future.done():
                        job.future.set_exception(exc)
                return
        notice_ids: Sequence[int] = ()
        if tx.batch:
            try:
                notice_ids = await self.store.commit(tx.batch)
            except Exception as exc:
                tx.rollback()
                log.error("commit of %d jobs failed: %s", len(jobs), exc)
                failure = StoreUnavailable(f"could not store the change: {exc}")
                for job, _, _ in results:
                    if not job.future.done():
                        job.future.set_exception(failure)
                return
            self.commits += 1
        for job, value, exc in results:
            if job.future.done():
                continue
            if exc is not None:
                job.future.set_exception(exc)
            else:
                job.future.set_result(value)
        if tx.batch:
            self.feed.publish(self._commit_item(tx, notice_ids))

    def _commit_item(self, tx: _Txn, notice_ids: Sequence[int]) -> Commit:
        changed = tuple(
            (self.onts[i], self.states[i])
            for i in sorted(tx.changed, key=id_sort_key)
            if i in self.onts and i in self.states
        )
        notices = tuple(
            Notice(nid, event, ont)
            for nid, (event, ont, _) in zip(notice_ids, tx.batch.alerts, strict=True)
        )
        return Commit(
            seq=self.feed.next_seq(),
            at=tx.now,
            changed=changed,
            deleted=tuple(sorted(tx.batch.deleted, key=id_sort_key)),
            notices=notices,
            areas=tuple(sorted(tx.batch.outages)),
        )


def _index_areas(onts: dict[str, Ont]) -> dict[str, set[str]]:
    index: dict[str, set[str]] = {}
    for ont_id, ont in onts.items():
        index.setdefault(ont.area, set()).add(ont_id)
    return index


def _index_down(
    onts: dict[str, Ont], states: dict[str, OntState]
) -> dict[str, dict[str, datetime]]:
    index: dict[str, dict[str, datetime]] = {}
    for ont_id, state in states.items():
        ont = onts.get(ont_id)
        if ont is not None and outages.is_down(state) and state.incident is not None:
            index.setdefault(ont.area, {})[ont_id] = state.incident.opened_at
    return index
