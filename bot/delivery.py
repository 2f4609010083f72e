"""Delivery of the outbox to Telegram: grouping, pacing under the limits, retries, restarts.

Guarantees and their limits:
- A row is marked sent in SQLite right after Telegram answers with the message. A crash (or a
  read timeout after Telegram accepted the request) between that answer and the commit leaves
  the row pending, so it is sent again after a restart: at-least-once, with a window of one
  send per chat. Anything else is exactly once: sent rows are never selected again.
- Network errors, timeouts and 5xx answers are retried with backoff (capped) for as long as it
  takes; 4xx answers that can never succeed (chat not found, bot blocked or kicked, a message
  Telegram refuses) mark the rows failed with Telegram's reason.
- 429: the chat is paused for retry_after (all chats when several chats are told to wait at
  once: that is the global limit). Our own pacing keeps below ~1 msg/s per chat, 20/min per
  group and 25/s overall, measured from the end of the previous request, so a retry never
  reaches Telegram inside a window it told us about.
- Order per chat: one lane (task) per chat sends its rows in id order, one request at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, tzinfo

from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)

from bot.alerts import AlertMessage, OntLookup, compose
from bot.ports import Outbox

log = logging.getLogger(__name__)

Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
WallClock = Callable[[], datetime]

BACKOFF_START = 1.0
BACKOFF_CAP = 60.0
POLL_INTERVAL = 2.0  # also picks up rows written by another process (the offline CLI)
MAX_ROWS = 1000  # rows composed at once for one chat
MARGIN = 0.05  # seconds added to every window so clock jitter never lands a send inside it


def retry_seconds(exc: RetryAfter) -> float:
    """retry_after in seconds whether PTB gives an int or a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB deprecates the int form; both are handled here
        value = exc.retry_after
    return float(value.total_seconds()) if isinstance(value, timedelta) else float(value)


class Pacer:
    """Telegram's flood limits, kept on our side (PTB's AIORateLimiter released sends early)."""

    def __init__(
        self,
        clock: Monotonic,
        *,
        per_chat_interval: float = 1.0,
        group_per_minute: int = 20,
        global_per_second: int = 25,
    ) -> None:
        self.clock = clock
        self.per_chat_interval = per_chat_interval
        self.group_per_minute = group_per_minute
        self.global_per_second = global_per_second
        self._last_done: dict[int, float] = {}
        self._group_done: dict[int, deque[float]] = {}
        self._global_started: deque[float] = deque()
        self._paused: dict[int, float] = {}
        self._global_paused = 0.0
        self._recent_429: deque[tuple[float, int]] = deque()

    def delay(self, chat_id: int) -> float:
        """Seconds to wait before this chat may send (0 = now)."""
        now = self.clock()
        ready = max(self._paused.get(chat_id, 0.0), self._global_paused)
        last = self._last_done.get(chat_id)
        if last is not None:
            ready = max(ready, last + self.per_chat_interval + MARGIN)
        if chat_id < 0:  # groups and channels: 20 a minute
            done = self._group_done.get(chat_id, deque())
            while done and done[0] <= now - 60.0 - MARGIN:
                done.popleft()
            if len(done) >= self.group_per_minute:
                ready = max(ready, done[-self.group_per_minute] + 60.0 + MARGIN)
        starts = self._global_started
        while starts and starts[0] <= now - 1.0 - MARGIN:
            starts.popleft()
        if len(starts) >= self.global_per_second:
            ready = max(ready, starts[-self.global_per_second] + 1.0 + MARGIN)
        return max(0.0, ready - now)

    def started(self) -> None:
        """A request is about to go out."""
        self._global_started.append(self.clock())

    def finished(self, chat_id: int, counted: bool) -> None:
        """The request's answer arrived (counted: Telegram took it as a message)."""
        now = self.clock()
        self._last_done[chat_id] = now
        if counted and chat_id < 0:
            self._group_done.setdefault(chat_id, deque()).append(now)

    def pause(self, chat_id: int, seconds: float) -> None:
        """Honour a 429: this chat waits; several chats told at once means the global limit."""
        now = self.clock()
        until = now + seconds + MARGIN
        self._paused[chat_id] = max(self._paused.get(chat_id, 0.0), until)
        self._recent_429.append((now, chat_id))
        while self._recent_429 and self._recent_429[0][0] < now - 1.0:
            self._recent_429.popleft()
        if len({c for _, c in self._recent_429}) > 1:
            self._global_paused = max(self._global_paused, until)


class Delivery:
    """Sends pending outbox rows, one lane per chat, until stopped."""

    def __init__(
        self,
        outbox: Outbox,
        bot: Bot,
        *,
        lang_for: Callable[[int], str],
        tz: tzinfo,
        lookup: OntLookup,
        group_wait: float = 3.0,
        clock: Monotonic | None = None,
        sleep: Sleep = asyncio.sleep,
        wall: WallClock | None = None,
        pacer: Pacer | None = None,
        poll_interval: float = POLL_INTERVAL,
        backoff_cap: float = BACKOFF_CAP,
    ) -> None:
        self.outbox = outbox
        self.bot = bot
        self.lang_for = lang_for
        self.tz = tz
        self.lookup = lookup
        self.group_wait = group_wait
        self.clock = clock or asyncio.get_running_loop().time
        self.sleep = sleep
        self.wall = wall or (lambda: datetime.now().astimezone())
        self.pacer = pacer or Pacer(self.clock)
        self.poll_interval = poll_interval
        self.backoff_cap = backoff_cap
        self.ready = asyncio.Event()  # set once the bot is initialised (Telegram reachable)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lanes: dict[int, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._unmarked: set[int] = set()  # sent, but the mark did not reach the database yet
        self._pending_marks: deque[tuple[tuple[int, ...], int | None]] = deque()
        self.sent_messages = 0
        self.errors: Counter[str] = Counter()  # Telegram errors by kind, for /metrics

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the dispatcher task."""
        self._task = asyncio.create_task(self._run(), name="ontwatch-delivery")

    def wake(self) -> None:
        """New rows were committed: look now instead of at the next poll."""
        self._wake.set()

    def committed(self, events: object) -> None:
        """monitor.ports.AlertSink: the engine stored events (and their outbox rows)."""
        self.wake()

    async def stop(self, grace: float = 5.0) -> None:
        """Let sends in flight finish (bounded by grace), then cancel the lanes."""
        self._stopping.set()
        self._wake.set()
        tasks = [t for t in (self._task, *self._lanes.values()) if t is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = None
        self._lanes.clear()

    async def idle(self, timeout: float = 30.0) -> bool:  # noqa: ASYNC109
        """Wait (bounded) until no row is pending and no lane runs; for tests and shutdown."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            busy = any(not t.done() for t in self._lanes.values())
            if not busy and not await self.outbox.pending(limit=1):
                return True
            await asyncio.sleep(0.02)
        return False

    # -- dispatcher -------------------------------------------------------------------------

    async def _run(self) -> None:
        await self._until_stopped(self.ready.wait())
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                chats = await self.outbox.pending_chats()
            except Exception:
                log.exception("delivery: could not read the outbox")
                chats = []
            for chat in chats:
                lane = self._lanes.get(chat)
                if lane is None or lane.done():
                    self._lanes[chat] = asyncio.create_task(self._lane(chat), name=f"lane-{chat}")
            await self._until_stopped(self._wake.wait(), self.poll_interval)

    async def _until_stopped(self, aw: Awaitable[object], limit: float | None = None) -> None:
        """Await aw, but return early on stop (and after limit seconds of self.sleep)."""
        waiters = [asyncio.ensure_future(aw), asyncio.ensure_future(self._stopping.wait())]
        if limit is not None:
            waiters.append(asyncio.ensure_future(self.sleep(limit)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    # -- one chat ---------------------------------------------------------------------------

    async def _lane(self, chat_id: int) -> None:
        first_seen: float | None = None
        try:
            while not self._stopping.is_set():
                rows = [
                    r
                    for r in await self.outbox.pending(chat_id, limit=MAX_ROWS)
                    if r.id not in self._unmarked
                ]
                await self._retry_marks()
                if not rows:
                    return
                if first_seen is None:
                    first_seen = self.clock()
                wait = first_seen + self.group_wait - self.clock()
                if wait > 0:  # grouping: let the rest of a burst join this message
                    await self._until_stopped(self.sleep(wait))
                    continue
                first_seen = None
                lang = self.lang_for(chat_id)
                for message in compose(chat_id, rows, lang, self.tz, self.lookup):
                    if not await self._deliver(message):
                        return
        except Exception:
            log.exception("delivery lane for chat %s failed; it restarts at the next poll", chat_id)

    async def _deliver(self, message: AlertMessage) -> bool:
        """Send one message until Telegram takes it or refuses it for good; False when stopping."""
        backoff = BACKOFF_START
        chat_id = message.chat_id
        while not self._stopping.is_set():
            delay = self.pacer.delay(chat_id)
            if delay > 0:
                await self._until_stopped(self.sleep(delay))
                continue
            self.pacer.started()
            counted = False
            try:
                sent = await self.bot.send_message(
                    chat_id,
                    message.text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=message.markup,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
                counted = True
            except RetryAfter as exc:
                seconds = retry_seconds(exc)
                self.errors["retry_after"] += 1
                self.pacer.finished(chat_id, False)
                self.pacer.pause(chat_id, seconds)
                log.warning("delivery: chat %s told to wait %.0fs (429)", chat_id, seconds)
                await self._attempt(message, f"429 retry after {seconds:.0f}s", seconds)
                continue
            except (Forbidden, BadRequest, ChatMigrated) as exc:
                # Never succeeds as it is: chat not found, bot blocked or kicked, refused text.
                self.errors["forbidden" if isinstance(exc, Forbidden) else "bad_request"] += 1
                self.pacer.finished(chat_id, False)
                reason = f"{type(exc).__name__}: {exc.message}"
                log.error("delivery: chat %s refused for good: %s", chat_id, reason)
                await self.outbox.mark_failed(message.row_ids, reason, self.wall())
                return True
            except (TelegramError, OSError) as exc:
                # NetworkError/TimedOut/5xx (and InvalidToken: a config error an operator fixes).
                self.errors["invalid_token" if isinstance(exc, InvalidToken) else "network"] += 1
                self.pacer.finished(chat_id, False)
                reason = (
                    "InvalidToken" if isinstance(exc, InvalidToken) else f"{type(exc).__name__}"
                )
                detail = "" if isinstance(exc, InvalidToken) else f": {exc}"
                log.warning(
                    "delivery: chat %s: %s%s; retry in %.0fs", chat_id, reason, detail, backoff
                )
                await self._attempt(message, reason + detail, backoff)
                await self._until_stopped(self.sleep(backoff))
                backoff = min(backoff * 2, self.backoff_cap)
                continue
            finally:
                if counted:
                    self.pacer.finished(chat_id, True)
            self.sent_messages += 1
            self._unmarked.update(message.row_ids)
            await self._mark(message.row_ids, sent.message_id)
            return True
        return False

    async def _attempt(self, message: AlertMessage, error: str, wait: float) -> None:
        try:
            next_at = self.wall() + timedelta(seconds=wait)
            await self.outbox.record_attempt(message.row_ids, error, next_at)
        except Exception:
            log.exception("delivery: could not record a failed attempt")

    async def _mark(self, row_ids: tuple[int, ...], message_id: int | None) -> None:
        try:
            await self.outbox.mark_sent(row_ids, message_id, self.wall())
        except Exception:
            # Kept in _unmarked, so this process never sends them again; retried below.
            log.exception("delivery: sent rows %s not yet marked in the database", row_ids)
            self._pending_marks.append((row_ids, message_id))
            return
        self._unmarked.difference_update(row_ids)

    async def _retry_marks(self) -> None:
        while self._pending_marks:
            row_ids, message_id = self._pending_marks[0]
            try:
                await self.outbox.mark_sent(row_ids, message_id, self.wall())
            except Exception:
                return
            self._pending_marks.popleft()
            self._unmarked.difference_update(row_ids)
