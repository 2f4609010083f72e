"""GET /api/events: the live event stream (server-sent events) fed by the engine's commit feed.

The feed callback only queues the item; the hub task coalesces what arrived (ONT changes
merged by id, latest wins), flushes at most every `flush_interval`, keeps the recent frames
in a ring for Last-Event-ID resume and hands each frame to every client's bounded queue. A
client whose queue overflows is disconnected (it reconnects and resumes) and counted; it
never slows the hub, let alone the engine.

Probe agents change without any commit (a report that changes no ONT still moves the agent's
last contact): every `agents_every` seconds the hub reads them from the view and, when they
differ from the last `agents` frame, wakes the flush that sends the new one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from i18n import LANGS, Lang
from monitor.feed import Commit, FeedItem, ReadMark
from monitor.model import Ont, OntState
from monitor.ports import ReadModel
from monitor.view import EngineView
from web.frames import (
    Burst,
    Frame,
    Ring,
    agents_data,
    chunks,
    encode,
    notifications_data,
    onts_data,
    read_data,
    stats_data,
)
from web.tally import Tally

log = logging.getLogger(__name__)

RETRY_MS = 2000
PING = b": ping\n\n"
ONTS_PER_FRAME = 1000
NOTICES_PER_FRAME = 200
# A flush carries at most this many notifications in full; the rest are only counted ("more"):
# a 5,000-ONT mass outage stores 5,000 folded member notices, which no page shows one by one.
NOTICES_PER_FLUSH = 100
UNREAD_RESYNC = 60.0  # seconds between fresh reads of the unread count (with any change)


@dataclass(frozen=True, slots=True)
class HubConfig:
    """The stream's bounds and timings (the defaults are the contract's)."""

    flush_interval: float = 0.1
    heartbeat: float = 15.0
    ring_frames: int = 2000
    ring_bytes: int = 32 * 2**20
    queue_bursts: int = 64  # flushes a client may be behind before it is cut off
    agents_every: float = 5.0  # seconds between looks at the probe agents


@dataclass(eq=False, slots=True)
class Client:
    """One connected stream: its language, its bounded queue and its connection."""

    lang: Lang
    queue: asyncio.Queue[Burst | None]
    transport: asyncio.Transport | None
    dropped: bool = False


@dataclass(slots=True)
class _Batch:
    """What one flush found in the inbox, coalesced."""

    onts: dict[str, tuple[Ont, OntState]] = field(default_factory=dict)
    deleted: dict[str, None] = field(default_factory=dict)  # an ordered set
    notice_ids: list[int] = field(default_factory=list)  # the told ones, then the folded ones
    folded_ids: list[int] = field(default_factory=list)
    marks: list[ReadMark] = field(default_factory=list)
    areas: bool = False


class EventHub:
    """Subscribes to the feed and serves GET /api/events."""

    def __init__(
        self,
        view: EngineView,
        reads: ReadModel,
        *,
        lang: Lang = "id",
        config: HubConfig | None = None,
    ) -> None:
        self.view, self.reads, self.lang = view, reads, lang
        self.config = config or HubConfig()
        # ids continue from the wall clock in ms, so a restarted service never reuses an id
        # a browser still holds: an old Last-Event-ID is below the new ring and gets `reload`
        self.ring = Ring(self.config.ring_frames, self.config.ring_bytes, int(time.time() * 1e3))
        self.clients: set[Client] = set()
        self.dropped = 0  # clients disconnected because their queue overflowed
        self.frames_sent = 0
        self.unread = 0
        self._horizon = 0  # highest notification id already counted in unread
        self._stats: dict[str, Any] | None = None
        self._agents: dict[str, Any] = {"agents": []}  # as the last `agents` frame said
        self._agents_due: dict[str, Any] | None = None  # what the next flush sends
        self._agents_task: asyncio.Task[None] | None = None
        self._tally = Tally()
        self._pending: list[Frame] = []  # frames of the flush being built
        self._synced_at = 0.0  # loop time of the last unread count read from the database
        self._inbox: deque[FeedItem] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None

    @property
    def last_id(self) -> int:
        """The id of the newest frame (a page may start its stream from it: ?last_id=)."""
        return self.ring.last_id

    # -- lifecycle -----------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        """Add the route, and end every stream when the app shuts down."""
        app.router.add_get("/api/events", self.handle)
        app.on_shutdown.append(self._on_shutdown)

    async def start(self) -> None:
        """Read the unread count, subscribe to the feed, start the flush task."""
        self._unsubscribe = self.view.feed.subscribe(self._on_item)
        self._tally = Tally(self.view.items())
        self.unread, self._horizon = await self.reads.unread_horizon()
        self._synced_at = asyncio.get_running_loop().time()
        self._stats = self._stats_now()
        self._task = asyncio.create_task(self._run(), name="ontwatch-events")
        self._agents = agents_data(self.view.agents())
        self._agents_task = asyncio.create_task(self._watch_agents(), name="ontwatch-agents")

    async def stop(self) -> None:
        """Unsubscribe, end every stream, stop the flush task."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.close_clients()
        for task in (self._task, self._agents_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._task = self._agents_task = None

    def close_clients(self) -> None:
        """Tell every stream to end (a client with a full queue is cut off)."""
        for client in list(self.clients):
            try:
                client.queue.put_nowait(None)
            except asyncio.QueueFull:
                self._cut(client)
        self.clients.clear()

    async def _on_shutdown(self, app: web.Application) -> None:
        self.close_clients()

    # -- the feed side -------------------------------------------------------------------

    def _on_item(self, item: FeedItem) -> None:
        """The feed callback: queue and wake the hub task; never blocks."""
        self._inbox.append(item)
        self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last_flush = 0.0
        while True:
            await self._wake.wait()
            delay = last_flush + self.config.flush_interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._wake.clear()
            items = list(self._inbox)
            self._inbox.clear()
            try:
                await self._flush(items)
            except Exception:
                log.exception("event stream: a flush of %d feed items failed", len(items))
            last_flush = loop.time()

    async def _watch_agents(self) -> None:
        """Look at the agents now and then; a change is sent by the next flush."""
        while True:
            await asyncio.sleep(self.config.agents_every)
            try:
                data = agents_data(self.view.agents())
            except Exception:
                log.exception("event stream: reading the probe agents failed")
                continue
            if data != self._agents:
                self._agents = self._agents_due = data
                self._wake.set()

    def _coalesce(self, items: list[FeedItem]) -> _Batch:
        batch = _Batch()
        for item in items:
            if isinstance(item, ReadMark):
                batch.marks.append(item)
                continue
            for ont, state in item.changed:
                batch.onts[ont.id] = (ont, state)
                batch.deleted.pop(ont.id, None)
                self._tally.put(ont.id, state)
            for ont_id in item.deleted:
                batch.onts.pop(ont_id, None)
                batch.deleted[ont_id] = None
                self._tally.remove(ont_id)
            self._count_new(item)
            batch.notice_ids += [n.id for n in item.notices if n.event.notify]
            batch.folded_ids += [n.id for n in item.notices if not n.event.notify]
            batch.areas = batch.areas or bool(item.areas)
        return batch

    def _count_new(self, commit: Commit) -> None:
        """Stored notifications start unread; count those the last snapshot did not see."""
        for notice in commit.notices:
            if notice.id > self._horizon:
                self.unread += 1
                self._horizon = notice.id

    async def _flush(self, items: list[FeedItem]) -> None:
        try:
            await self._build(items)
        finally:
            self._publish()

    async def _build(self, items: list[FeedItem]) -> None:
        batch = self._coalesce(items)
        if batch.onts or batch.deleted:
            pairs = list(batch.onts.values())
            deleted = list(batch.deleted)
            for part in chunks(pairs, ONTS_PER_FRAME):
                self._emit("onts", onts_data(part, deleted))
                deleted = []
            if deleted:
                self._emit("onts", onts_data([], deleted))
            self._publish()  # markers first: the notifications below wait for the database
        shown, more = _shown_notices(batch)
        if shown:
            notes = await self.reads.notifications_by_id(shown)
            for part in chunks(notes, NOTICES_PER_FRAME):
                self._emit("notifications", notifications_data(part, more))
                more = 0
        now = asyncio.get_running_loop().time()
        if batch.marks or now - self._synced_at > UNREAD_RESYNC:
            # the marks were written before they were published: a fresh count includes them
            # (and, now and then, whatever retention deleted)
            self.unread, self._horizon = await self.reads.unread_horizon()
            self._synced_at = now
        if batch.marks:
            self._emit("read", read_data(_marked_ids(batch.marks), self.unread))
        stats = self._stats_now()
        if stats != self._stats:
            self._stats = stats
            self._emit("stats", stats)
        if self._agents_due is not None:
            self._emit("agents", self._agents_due)
            self._agents_due = None

    def _stats_now(self) -> dict[str, Any]:
        return stats_data(self._tally.counts(), self.unread, self.view.outages())

    def _emit(self, event: str, data: Any) -> None:
        """Make the next frame; it goes out with the rest of this flush."""
        frame_id = (self._pending[-1].id if self._pending else self.ring.last_id) + 1
        self._pending.append(Frame(frame_id, event, data, self.lang))

    def _publish(self) -> None:
        """Keep the flush's frames in the ring and queue them for every client, with no await
        in between: a client attaching meanwhile gets each frame once, from one or the other."""
        if not self._pending:
            return
        for frame in self._pending:
            self.ring.append(frame)
        burst = Burst(self._pending)
        self._pending = []
        for client in list(self.clients):
            try:
                client.queue.put_nowait(burst)
            except asyncio.QueueFull:
                self._drop(client)

    def _drop(self, client: Client) -> None:
        """A client fell behind: disconnect it (it reconnects with Last-Event-ID)."""
        self.dropped += 1
        log.info(
            "event stream: a client fell %d flushes behind; disconnected", client.queue.qsize()
        )
        self._cut(client)

    def _cut(self, client: Client) -> None:
        client.dropped = True
        self.clients.discard(client)
        if client.transport is not None:
            client.transport.abort()  # a pending write fails at once, however full the socket

    # -- the client side -----------------------------------------------------------------

    def attach(
        self, lang: Lang, last_id: int | None, transport: asyncio.Transport | None
    ) -> tuple[Client, list[bytes]]:
        """Register a client and the bytes it gets first: hello, then the missed frames (or
        reload). Nothing awaits in here, so no frame falls between the backlog and the queue."""
        client = Client(lang, asyncio.Queue(self.config.queue_bursts), transport)
        backlog = None if last_id is None else self.ring.after(last_id)
        resumed = backlog is not None
        hello_id = last_id if resumed and last_id is not None else self.ring.last_id
        first = [
            encode(hello_id, "hello", {"resumed": resumed, "last_id": hello_id}, retry_ms=RETRY_MS)
        ]
        if last_id is not None and backlog is None:
            first.append(encode(self.ring.last_id, "reload", {"reason": "gap"}))
        first += [f.wire(lang) for f in backlog or ()]
        self.clients.add(client)
        return client, first

    def detach(self, client: Client) -> None:
        """Forget a client whose stream ended."""
        self.clients.discard(client)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """GET /api/events[?lang=id|en][&last_id=N]; the Last-Event-ID header resumes."""
        try:
            lang = _lang(request, self.lang)
            last_id = _last_id(request)
        except BadQuery as exc:
            return exc.response()
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        client, first = self.attach(lang, last_id, request.transport)  # type: ignore[arg-type]
        try:
            await response.write(b"".join(first))
            await self._pump(client, response)
        except ConnectionError:
            pass  # the client went away, or was cut off, or the service stops
        finally:
            self.detach(client)
        return response

    async def _pump(self, client: Client, response: web.StreamResponse) -> None:
        """Write queued frames (all that are waiting, in one write) and heartbeats."""
        while not client.dropped:
            try:
                async with asyncio.timeout(self.config.heartbeat):
                    burst = await client.queue.get()
            except TimeoutError:
                await response.write(PING)
                continue
            bursts: list[Burst | None] = [burst]
            while not client.queue.empty():
                bursts.append(client.queue.get_nowait())
            end = None in bursts
            ready = [b for b in (bursts[: bursts.index(None)] if end else bursts) if b]
            if len(ready) == 1:
                await response.write(ready[0].wire(client.lang))  # shared by every client
            elif ready:
                await response.write(b"".join(b.wire(client.lang) for b in ready))
            self.frames_sent += sum(len(b.frames) for b in ready)
            if end:
                return


def _shown_notices(batch: _Batch) -> tuple[list[int], int]:
    """The notifications a flush sends in full (told ones first, then the newest folded ones,
    NOTICES_PER_FLUSH at most, in id order) and how many more it only counts."""
    told = batch.notice_ids[-NOTICES_PER_FLUSH:]
    room = NOTICES_PER_FLUSH - len(told)
    folded = batch.folded_ids[-room:] if room > 0 else []
    shown = sorted(told + folded)
    return shown, len(batch.notice_ids) + len(batch.folded_ids) - len(shown)


def _marked_ids(marks: list[ReadMark]) -> list[int] | None:
    if any(m.ids is None for m in marks):
        return None
    return sorted({i for m in marks for i in m.ids or ()})


def _lang(request: web.Request, default: Lang) -> Lang:
    raw = request.query.get("lang")
    if raw is None or raw == "":
        return default
    if raw not in LANGS:
        raise BadQuery("lang", f"lang must be one of {', '.join(LANGS)}")
    return raw  # type: ignore[return-value]


def _last_id(request: web.Request) -> int | None:
    """Where to resume: the Last-Event-ID header (a browser reconnecting), else ?last_id=.

    A header that is not a number resumes nothing: the client is told to reload.
    """
    header = request.headers.get("Last-Event-ID")
    if header is not None:
        header = header.strip()
        return int(header) if header.isascii() and header.isdigit() and len(header) < 19 else -1
    raw = request.query.get("last_id")
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
        raise BadQuery("last_id", "last_id must be a non-negative integer")
    return int(raw)


class BadQuery(ValueError):
    """A query parameter the stream refuses: the 400 names it."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(detail)
        self.name, self.detail = name, detail

    def response(self) -> web.Response:
        """The JSON error {"error", "detail"}."""
        body = {"error": f"invalid {self.name}", "detail": self.detail}
        return web.json_response(body, status=400)
