"""A standby's read side: the engine's state followed from the database the leader writes.

A standby runs no writer. The pages, the JSON reads, the bot's reads and the event stream
read the engine's dictionaries (monitor/view.py) and its feed (monitor/feed.py), so the
follower keeps those two as the leader's would be: it loads the stored state into the engine,
and on each commit the leader announces (PostgreSQL `NOTIFY ontwatch_commit`) it reloads,
diffs against what the engine holds, installs the new state and publishes one feed `Commit`
with the changed and deleted ONTs, the areas whose mass outage changed and the notifications
stored since the last one it published. Pages and the stream on a standby then update live,
as on the leader.

Wiring (ontwatch/service.py, a standby)::

    reads = storage.follow.FollowReads(db)      # StateSource and NoticeLog
    listen = storage.follow.commit_listener(db) # None on SQLite
    follower = Follower(engine, reads, reads, listen)
    await follower.start()                      # engine holds the stored state; no writer
    ...                                         # serve pages, reads, the stream
    await follower.promote()                    # lease won: stop following (a last reload
    await engine.start()                        # is published), then the writer starts
    # or, at shutdown as a standby: await follower.stop()

`listen(wake)` is an async callable that LISTENs on the leader's channel and runs for as long
as its connection lasts: it calls `wake()` once as soon as LISTEN is in effect and then on
every notification (wake may be called from any thread), and returns or raises when the
connection is lost (storage.follow.commit_listener does this on PostgreSQL). `listen=None`
(SQLite) polls. While the listen connection is down the follower polls every `poll_every`
seconds and tries to listen again every `retry_every`; while it is up it still reloads every
`safety_every` seconds in case a notification was lost. Reloads are debounced: at most one
every `min_interval` seconds (5 a second), however many commits the leader makes. Reading,
decoding and diffing run on worker threads; the loop only swaps the new state in and
publishes (bench/follower_bench.py: ~1 ms of loop time a reload of 10,000 ONTs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from monitor.engine import Engine, LiveState
from monitor.feed import Commit, Notice
from monitor.model import Ont, OntState, id_sort_key
from monitor.ports import Snapshot

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
Listen = Callable[[Callable[[], None]], Awaitable[None]]


class StateSource(Protocol):
    """The stored state, read as Store.load reads it (storage.follow.FollowReads)."""

    async def load(self) -> Snapshot:
        """Inventory, live states, mutes and open mass outages, as stored now."""
        ...


class NoticeLog(Protocol):
    """The stored notifications, read in id order."""

    async def notices_after(self, after: int, limit: int) -> Sequence[Notice]:
        """Notifications with an id above after, oldest first, at most limit."""
        ...

    async def last_notice_id(self) -> int:
        """The highest notification id stored (0 when none)."""
        ...


def changed_keys(old: Mapping[K, object], new: Mapping[K, object]) -> set[K]:
    """Keys added, or whose value differs (identity first: unchanged rows decode once)."""
    out = set()
    for key, value in new.items():
        held = old.get(key)
        if held is not value and held != value:
            out.add(key)
    return out


class Follower:
    """Keeps a writer-less engine and its feed up to date with the stored state."""

    def __init__(
        self,
        engine: Engine,
        store: StateSource,
        notices: NoticeLog,
        listen: Listen | None = None,
        *,
        poll_every: float = 1.0,
        safety_every: float = 10.0,
        retry_every: float = 2.0,
        min_interval: float = 0.2,
        notice_page: int = 1000,
    ) -> None:
        self.engine = engine
        self.store = store
        self.notices = notices
        self._listen = listen
        self.poll_every = poll_every
        self.safety_every = safety_every
        self.retry_every = retry_every
        self.min_interval = min_interval
        self.notice_page = notice_page
        self.listening = False  # the listen connection is up (it said so through wake)
        self.last_notice = 0  # the highest notification id published (or held at start)
        self.reloads = 0  # reloads done, for metrics and tests
        self.last_reload_at: float | None = None  # time.time() of the last good reload
        self.failing: str | None = None  # why the last reload failed, until one succeeds
        self._due = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failed_logged = 0.0
        self._attempt = 0  # the listen attempt running (its wake is the only one counted)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the stored state into the engine, then follow the leader's commits."""
        self._loop = asyncio.get_running_loop()
        self.last_notice = await self.notices.last_notice_id()
        snap = await self.store.load()
        self.engine.hold(await asyncio.to_thread(LiveState.of, snap))  # built off the loop
        self.reloads += 1
        self.last_reload_at = time.time()
        self._tasks.append(asyncio.create_task(self._follow(), name="ontwatch-follower"))
        if self._listen is not None:
            self._tasks.append(asyncio.create_task(self._keep_listening(), name="ontwatch-listen"))

    async def stop(self) -> None:
        """Stop following (a standby shutting down)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.listening = False

    async def promote(self) -> None:
        """Stop following, after one last reload is published; the caller then starts the
        engine's writer (Engine.start loads the state again, now its own to write)."""
        await self.stop()
        await self._reload_logged()

    def running(self) -> bool:
        """Whether the follower is following (for health checks)."""
        return bool(self._tasks) and not self._tasks[0].done()

    # -- waking -----------------------------------------------------------------------------

    def wake(self) -> None:
        """A commit was announced: reload soon. Safe to call from any thread."""
        self._soon(self._due.set)

    def _soon(self, fn: Callable[[], None]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(fn)

    def _listen_wake(self, attempt: int) -> Callable[[], None]:
        """The wake given to one listen attempt: it also says the connection is up."""

        def heard() -> None:
            if attempt == self._attempt:  # not a late call from an attempt that ended
                if not self.listening:
                    log.info("follower: listening to the leader's commits")
                self.listening = True
                self._due.set()

        return lambda: self._soon(heard)

    async def _keep_listening(self) -> None:
        """Run the listen connection; when it ends, poll and try again every retry_every.

        Told once per outage (a warning when it goes down, info when it is back), not at
        every refused retry.
        """
        assert self._listen is not None
        told = False
        while True:
            self._attempt += 1
            try:
                await self._listen(self._listen_wake(self._attempt))
                why = "the listen connection ended"
            except Exception as exc:
                why = f"cannot listen ({type(exc).__name__}: {exc})"
            was_up, self.listening = self.listening, False
            self._attempt += 1
            if was_up or not told:
                log.warning("follower: %s; polling every %s s meanwhile", why, self.poll_every)
                told = True
            self._due.set()  # notifications may have been missed while it went down
            await asyncio.sleep(self.retry_every)

    async def _follow(self) -> None:
        """Reload when woken (or every poll period), at most once every min_interval."""
        loop = asyncio.get_running_loop()
        while True:
            wait = self.safety_every if self.listening else self.poll_every
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), wait)
            self._due.clear()  # a commit announced during the reload wakes the next one
            started = loop.time()
            await self._reload_logged()
            await asyncio.sleep(max(0.0, self.min_interval - (loop.time() - started)))

    # -- reloading ------------------------------------------------------------------------

    async def _reload_logged(self) -> None:
        """reload(), a failure logged at most once a minute and the held state kept."""
        try:
            await self.reload()
        except Exception as exc:
            self.failing = f"{type(exc).__name__}: {exc}"
            now = time.monotonic()
            if now - self._failed_logged > 60:
                self._failed_logged = now
                log.warning("follower: reload failed, keeping the state held (%s)", self.failing)

    async def reload(self) -> Commit | None:
        """Read the stored state and new notifications, install them, publish what changed."""
        # Notifications first: the state read after them is as new as they are or newer, so a
        # page never shows a notification before the change it tells of.
        notices = list(await self.notices.notices_after(self.last_notice, self.notice_page))
        snap = await self.store.load()
        if len(notices) >= self.notice_page:
            self._due.set()  # more are stored: the next reload takes the next page
        # The diff only reads the engine, which nothing else changes on a standby, so a worker
        # thread does it and builds the new dictionaries and indexes (for 10,000 ONTs ~15 ms
        # each); the loop only swaps them in (Engine.hold) and publishes.
        diff = await asyncio.to_thread(Diff.between, self.engine, snap)
        commit = self._apply(diff, notices)
        self.reloads += 1
        self.last_reload_at = time.time()
        self.failing = None
        return commit

    def _apply(self, diff: Diff, notices: list[Notice]) -> Commit | None:
        """Install the new state in the engine and publish it (None when nothing changed)."""
        eng = self.engine
        if notices:
            self.last_notice = max(self.last_notice, notices[-1].id)
        if diff.live is None and not notices:
            return None
        if diff.live is not None:
            held = [eng.onts, eng.states, eng.mutes, eng.outages, eng.area_index, eng.down_index]
            eng.hold(diff.live)
            # What the engine held is freed on a worker thread: letting go of 100,000 states
            # on the loop took longer than swapping in the new ones.
            asyncio.get_running_loop().run_in_executor(None, held.clear)
        commit = Commit(
            seq=eng.feed.next_seq(),
            at=eng.clock(),
            changed=diff.changed,
            deleted=diff.deleted,
            notices=tuple(notices),
            areas=diff.areas,
        )
        eng.feed.publish(commit)
        return commit


@dataclass(frozen=True, slots=True)
class Diff:
    """A stored state next to what the engine holds: the new live state and what differs."""

    live: LiveState | None  # dictionaries and indexes built on the worker thread; None: same
    changed: tuple[tuple[Ont, OntState], ...] = ()  # inventory or state differs, in id order
    deleted: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()  # mass outage opened, changed or ended

    @classmethod
    def between(cls, eng: Engine, snap: Snapshot) -> Diff:
        """What snap changes in the engine's state (a state without its ONT is dropped).

        Run on a worker thread: when nothing changed, the new dictionaries are let go there.
        """
        ids = {o.id for o in snap.onts}
        live = LiveState.of(replace(snap, states=[s for s in snap.states if s.ont_id in ids]))
        changed = changed_keys(eng.onts, live.onts) | changed_keys(eng.states, live.states)
        deleted = eng.onts.keys() - live.onts.keys()
        areas = changed_keys(eng.outages, live.outages) | (eng.outages.keys() - live.outages.keys())
        if not (changed or deleted or areas or live.mutes != eng.mutes):
            return cls(None)
        return cls(
            live,
            changed=tuple((live.onts[i], live.states[i]) for i in sorted(changed, key=id_sort_key)),
            deleted=tuple(sorted(deleted, key=id_sort_key)),
            areas=tuple(sorted(areas)),
        )
