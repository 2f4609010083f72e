"""One sender for every request the bot makes to a chat, sharing one pacer.

`Sender` is PTB's rate limiter (`Application.builder().rate_limiter(sender)`), so every
request of the handlers (replies, photos, locations, edits, answers) passes through it, and
the outbox delivery, the incident threads and the status message call through it too.

- Pacing (`Pacer`): ~1 request/s per chat (measured from the end of the previous one), 20 new
  messages a minute per group, 25 requests/s overall, and `retry_after` per chat on 429 (all
  chats when several are told at once).
- Priority per chat: a command's reply goes ahead of queued alert batches and status edits for
  the same chat (a technician is not kept waiting behind an outage digest).
- Retries: replies are retried (429 after the wait, network errors and 5xx with backoff) until
  they are sent or go stale: a reply older than `stale_after` (10 min) is dropped with a log
  line, because an answer to `/status` that old would mislead. The outbox's alerts ask for
  one attempt per call (`retry=False`): delivery records each attempt in SQLite and retries.
  Requests to chats that are gone, and requests Telegram refuses as wrong, are never retried.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import itertools
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from telegram.ext import BaseRateLimiter

from bot.send_errors import Action, classify, metric_kind

log = logging.getLogger(__name__)

Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

MARGIN = 0.05  # seconds added to every window so clock jitter never lands a send inside it
BACKOFF_START = 1.0
BACKOFF_CAP = 60.0
STALE_AFTER = 600.0  # seconds: a reply not sent by then is dropped (see the module text)

# Requests paced per chat; the first three are new messages (counted for the group limit).
NEW_MESSAGE_ENDPOINTS = frozenset({"sendMessage", "sendPhoto", "sendLocation"})
PACED_ENDPOINTS = NEW_MESSAGE_ENDPOINTS | {
    "editMessageText",
    "editMessageReplyMarkup",
    "editMessageCaption",
    "pinChatMessage",
    "unpinChatMessage",
    "deleteMessage",
}
NEW_MESSAGE_METHODS = frozenset({"send_message", "send_photo", "send_location"})


class Priority(enum.IntEnum):
    """Lower goes first within one chat."""

    REPLY = 0
    ALERT = 1
    STATUS = 2


class SenderClosed(RuntimeError):
    """The sender was closed (the bot is stopping) while a request waited for its turn."""


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
        """The request's answer arrived (counted: Telegram took it as a new message)."""
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


@dataclass
class _Lane:
    """One chat's waiting requests (a heap of (priority, sequence)) and whether one is out."""

    waiting: list[tuple[int, int]] = field(default_factory=list)
    busy: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def poke(self) -> None:
        event, self.changed = self.changed, asyncio.Event()
        event.set()


class Sender(BaseRateLimiter[dict[str, Any]]):
    """Paces, orders and retries every chat request (see the module text)."""

    def __init__(
        self,
        clock: Monotonic | None = None,
        sleep: Sleep = asyncio.sleep,
        *,
        pacer: Pacer | None = None,
        stale_after: float = STALE_AFTER,
        backoff_cap: float = BACKOFF_CAP,
    ) -> None:
        self.clock = clock or time.monotonic
        self.sleep = sleep
        self.pacer = pacer or Pacer(self.clock)
        self.stale_after = stale_after
        self.backoff_cap = backoff_cap
        self.errors: Counter[str] = Counter()  # reply errors by kind, for /metrics
        self.dropped = 0  # replies given up (stale, chat gone, refused)
        self._lanes: dict[int, _Lane] = {}
        self._seq = itertools.count()
        self._closed = False
        self._closing: asyncio.Event | None = None

    # -- PTB's rate limiter interface ------------------------------------------------------

    async def initialize(self) -> None:
        """Open for requests (again)."""
        self._closed = False
        self._closing = None

    async def shutdown(self) -> None:
        """Refuse new turns; requests waiting for one fail with SenderClosed."""
        self.close()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> Any:
        """Every Bot API request of the bot: chat requests are paced, the rest go at once."""
        chat_id = data.get("chat_id")
        if endpoint not in PACED_ENDPOINTS or not isinstance(chat_id, int):
            return await callback(*args, **kwargs)
        opts = rate_limit_args or {}
        return await self.run(
            chat_id,
            lambda: callback(*args, **kwargs),
            counted=endpoint in NEW_MESSAGE_ENDPOINTS,
            priority=Priority(opts.get("priority", Priority.REPLY)),
            retry=bool(opts.get("retry", True)),
            what=endpoint,
        )

    # -- the sender -------------------------------------------------------------------------

    async def call(
        self,
        bot: Any,
        method: str,
        chat_id: int,
        *,
        priority: Priority = Priority.ALERT,
        retry: bool = False,
        **kw: Any,
    ) -> Any:
        """bot.<method>(chat_id, **kw) through this sender (PTB's ExtBot or a plain Bot)."""
        fn = getattr(bot, method)
        if getattr(bot, "rate_limiter", None) is self:
            args = {"priority": int(priority), "retry": retry}
            return await fn(chat_id=chat_id, rate_limit_args=args, **kw)
        return await self.run(
            chat_id,
            lambda: fn(chat_id=chat_id, **kw),
            counted=method in NEW_MESSAGE_METHODS,
            priority=priority,
            retry=retry,
            what=method,
        )

    async def run(
        self,
        chat_id: int,
        fn: Callable[[], Awaitable[Any]],
        *,
        counted: bool,
        priority: Priority = Priority.REPLY,
        retry: bool = True,
        what: str = "request",
    ) -> Any:
        """Wait for the chat's turn, make the request; on failure act on classify()."""
        deadline = self.clock() + self.stale_after
        backoff = BACKOFF_START
        while True:
            await self._turn(chat_id, priority)
            self.pacer.started()
            try:
                result = await fn()
            except Exception as exc:
                self.pacer.finished(chat_id, False)
                self._release(chat_id)
                verdict = classify(exc)
                if verdict.action is Action.RETRY_AFTER:
                    self.pacer.pause(chat_id, verdict.seconds)
                if not retry:
                    raise
                self.errors[metric_kind(verdict, exc)] += 1
                wait = verdict.seconds if verdict.action is Action.RETRY_AFTER else backoff
                if not verdict.retry or self._closed or self.clock() + wait > deadline:
                    self.dropped += 1
                    stale = " (stale)" if verdict.retry else ""
                    log.error("%s to chat %s given up%s: %s", what, chat_id, stale, verdict.reason)
                    raise
                log.warning(
                    "%s to chat %s: %s; again in %.0fs", what, chat_id, verdict.reason, wait
                )
                if verdict.action is Action.BACKOFF:
                    await self._nap(wait)
                    backoff = min(backoff * 2, self.backoff_cap)
                continue
            except BaseException:
                self.pacer.finished(chat_id, False)
                self._release(chat_id)
                raise
            self.pacer.finished(chat_id, counted)
            self._release(chat_id)
            return result

    def close(self) -> None:
        """Stop giving turns (the bot is stopping)."""
        self._closed = True
        if self._closing is not None:
            self._closing.set()
        for lane in self._lanes.values():
            lane.poke()

    async def _nap(self, seconds: float) -> None:
        """Sleep, but wake (and fail) at once when the sender is closed."""
        if self._closing is None:
            self._closing = asyncio.Event()
        if self._closed:
            raise SenderClosed("the bot is stopping")
        waiters = [
            asyncio.ensure_future(self.sleep(seconds)),
            asyncio.ensure_future(self._closing.wait()),
        ]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        if self._closed:
            raise SenderClosed("the bot is stopping")

    def waiting(self, chat_id: int) -> int:
        """Requests waiting for this chat's turn (for tests and metrics)."""
        lane = self._lanes.get(chat_id)
        return len(lane.waiting) if lane else 0

    async def _turn(self, chat_id: int, priority: Priority) -> None:
        """Return when this request is the chat's first in priority order and may be sent."""
        lane = self._lanes.setdefault(chat_id, _Lane())
        ticket = (int(priority), next(self._seq))
        heapq.heappush(lane.waiting, ticket)
        lane.poke()
        try:
            while True:
                if self._closed:
                    raise SenderClosed("the bot is stopping")
                if lane.waiting[0] == ticket and not lane.busy:
                    delay = self.pacer.delay(chat_id)
                    if delay <= 0:
                        heapq.heappop(lane.waiting)
                        lane.busy = True
                        return
                    await self._nap(delay)
                else:
                    await lane.changed.wait()
        except BaseException:
            if ticket in lane.waiting:
                lane.waiting.remove(ticket)
                heapq.heapify(lane.waiting)
                lane.poke()
            raise

    def _release(self, chat_id: int) -> None:
        lane = self._lanes[chat_id]
        lane.busy = False
        lane.poke()
