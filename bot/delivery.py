"""Delivery of the outbox to Telegram: grouping, threads, pacing under the limits, retries.

Guarantees and their limits:
- A row is marked sent in the database right after Telegram answers with the message. A crash
  (or a read timeout after Telegram accepted the request) between that answer and the commit
  leaves the row pending, so it is sent again after a restart: at-least-once, with a window of
  one send per chat. Anything else is exactly once: sent rows are never selected again.
- Claims (issue 14, docs/postgresql.md): before each attempt the rows are claimed under the
  leader's epoch in their own committed write (fenced by the lease on PostgreSQL), so only the
  leader sends. A new leader starts by finding the rows an older epoch claimed and never marked
  sent (in flight when that leader stopped) and sends them again, once: at most one duplicate
  per row and takeover. A claim refused because a newer epoch holds the rows means another
  instance leads: this delivery stops. Without a lease (SQLite) the epoch is 0 throughout.
- Every request goes through the one `bot.sender.Sender` (its pacer: ~1 msg/s per chat,
  20/min per group, 25/s overall, retry_after per chat), and `bot.send_errors.classify` says
  what to do when one fails: 429 and network errors / 5xx are retried (backoff capped) for as
  long as it takes, each attempt recorded on the rows; a chat that is gone or a message
  Telegram refuses marks the rows failed with Telegram's reason.
- Order per chat: one lane (task) per chat sends its rows in id order, one request at a time;
  a command's reply to the same chat goes ahead of the lane's next message (Sender priority).
- Threads (`bot.threads`): an escalation soon after the opening message edits it in place; a
  later escalation, a reminder and the recovery reply to it. The root ids are stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, tzinfo
from typing import Any

from telegram import Bot, LinkPreviewOptions, ReplyParameters
from telegram.constants import ParseMode

from bot import threads
from bot.alerts import OntLookup
from bot.ports import MessageIds, Outbox
from bot.send_errors import Action, classify, metric_kind, retry_seconds
from bot.sender import Monotonic, Pacer, Priority, Sender, SenderClosed, Sleep
from monitor.ports import OutboxRow

__all__ = ["Delivery", "Monotonic", "Pacer", "Sleep", "retry_seconds"]

log = logging.getLogger(__name__)

WallClock = Callable[[], datetime]

BACKOFF_START = 1.0
BACKOFF_CAP = 60.0
NO_LEASE = 0  # the epoch of an instance without leadership (SQLite): epochs of a lease start at 1
POLL_INTERVAL = 2.0  # also picks up rows written by another process (the offline CLI)
MAX_ROWS = 1000  # rows composed at once for one chat
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


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
        sender: Sender | None = None,
        messages: MessageIds | None = None,
        edit_window: timedelta = threads.EDIT_WINDOW,
        poll_interval: float = POLL_INTERVAL,
        backoff_cap: float = BACKOFF_CAP,
        epoch: int = NO_LEASE,
    ) -> None:
        self.outbox = outbox
        self.epoch = epoch
        self.bot = bot
        self.lang_for = lang_for
        self.tz = tz
        self.lookup = lookup
        self.group_wait = group_wait
        self.clock = clock or asyncio.get_running_loop().time
        self.sleep = sleep
        self.wall = wall or (lambda: datetime.now().astimezone())
        self.sender = sender or Sender(self.clock, sleep, pacer=pacer)
        self.pacer = self.sender.pacer
        self.messages = messages
        self.edit_window = edit_window
        self.poll_interval = poll_interval
        self.backoff_cap = backoff_cap
        self.ready = asyncio.Event()  # set once the bot is initialised (Telegram reachable)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lanes: dict[int, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._unmarked: set[int] = set()  # sent, but the mark did not reach the database yet
        self._pending_marks: deque[tuple[tuple[int, ...], int | None]] = deque()
        self._in_flight: set[int] = set()  # claimed by an earlier run, not marked sent
        self.deposed = False  # a newer epoch claimed rows: another instance leads
        self.resent_after_takeover = 0  # rows sent again that an earlier run had claimed
        self.sent_messages = 0
        self.edited_messages = 0
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
        if not self._stopping.is_set():
            await self._find_in_flight()
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

    async def _find_in_flight(self) -> None:
        """Note the rows an earlier run claimed and never marked sent, before any lane runs.

        Their message may have reached Telegram just before that run (the old leader) stopped;
        they are pending, so the lanes send them again like any other row, and their claim
        moves to this epoch. Noting them here is what makes the resend visible (log, figure).
        """
        try:
            ids = await self.outbox.in_flight(self.epoch)
        except Exception:
            log.exception("delivery: could not read the rows in flight at the last stop")
            return
        self._in_flight = set(ids)
        if ids:
            log.warning(
                "delivery (epoch %s): %d rows were claimed by an earlier run and not marked "
                "sent (in flight when it stopped): sending them again, once",
                self.epoch,
                len(ids),
            )

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
                rows = self._in_flight_first(rows)
                if first_seen is None:
                    first_seen = self.clock()
                wait = first_seen + self.group_wait - self.clock()
                if wait > 0:  # grouping: let the rest of a burst join this message
                    await self._until_stopped(self.sleep(wait))
                    continue
                first_seen = None
                if not await self._send_rows(chat_id, rows):
                    return
        except Exception:
            log.exception("delivery lane for chat %s failed; it restarts at the next poll", chat_id)

    def _in_flight_first(self, rows: list[OutboxRow]) -> list[OutboxRow]:
        """The leading rows an earlier run left in flight, alone, when there are any.

        They are resent as a message of their own, so rows never sent before do not ride in
        a message that may already be a duplicate: were this run killed too right after it,
        only those rows would be in flight again.
        """
        head = list(itertools.takewhile(lambda r: r.id in self._in_flight, rows))
        return head or rows

    async def _send_rows(self, chat_id: int, rows: list[OutboxRow]) -> bool:
        roots = await self._threads(chat_id)
        plan = threads.plan(
            chat_id,
            rows,
            roots,
            lang=self.lang_for(chat_id),
            tz=self.tz,
            lookup=self.lookup,
            now=self.wall(),
            edit_window=self.edit_window,
        )
        by_id = {r.id: r for r in rows}
        for item in plan:
            message_id = await self._deliver(item)
            if message_id is False:
                return False
            if isinstance(message_id, int):
                await self._store_threads(chat_id, item, by_id, message_id)
        return True

    async def _threads(self, chat_id: int) -> dict[str, threads.Thread]:
        if self.messages is None:
            return {}
        try:
            found = await self.messages.threads(chat_id)
        except Exception:
            log.exception("delivery: could not read the threads of chat %s", chat_id)
            return {}
        return {k: threads.Thread(k, m, at, single) for k, m, at, single in found}

    async def _store_threads(
        self, chat_id: int, item: threads.Outgoing, rows: dict[int, OutboxRow], message_id: int
    ) -> None:
        if self.messages is None:
            return
        found = threads.changes(item, rows, message_id)
        opened = [(c.key, c.message_id, c.single) for c in found if c.message_id is not None]
        ended = [c.key for c in found if c.message_id is None]
        if not opened and not ended:
            return
        try:
            await self.messages.set_threads(chat_id, opened, ended, self.wall())
        except Exception:  # a thread lost is a reply that starts a new message: not an alert lost
            log.exception("delivery: could not store the threads of chat %s", chat_id)

    async def _request(self, item: threads.Outgoing) -> Any:
        """One attempt, through the sender: an edit in place, a reply, or a new message."""
        m = item.message
        if item.edit_of is not None:
            return await self.sender.call(
                self.bot,
                "edit_message_text",
                m.chat_id,
                message_id=item.edit_of,
                text=m.text,
                parse_mode=ParseMode.HTML,
                reply_markup=m.markup,
                link_preview_options=NO_PREVIEW,
                priority=Priority.ALERT,
            )
        reply = None
        if item.reply_to is not None:
            reply = ReplyParameters(item.reply_to, allow_sending_without_reply=True)
        return await self.sender.call(
            self.bot,
            "send_message",
            m.chat_id,
            text=m.text,
            parse_mode=ParseMode.HTML,
            reply_markup=m.markup,
            link_preview_options=NO_PREVIEW,
            reply_parameters=reply,
            priority=Priority.ALERT,
        )

    async def _deliver(self, item: threads.Outgoing) -> int | bool | None:
        """Send until Telegram takes it (its message id) or refuses it (None); False: stopping."""
        backoff = BACKOFF_START
        message = item.message
        chat_id = message.chat_id
        while not self._stopping.is_set():
            claimed = await self._claim(message.row_ids)
            if claimed is False:
                return False
            if claimed is None:  # not claimed: a leader sends nothing it could not claim
                await self._until_stopped(self.sleep(backoff))
                backoff = min(backoff * 2, self.backoff_cap)
                continue
            try:
                sent = await self._request(item)
            except SenderClosed:
                return False
            except Exception as exc:
                verdict = classify(exc)
                if verdict.action is Action.NOT_MODIFIED and item.edit_of is not None:
                    await self._mark(message.row_ids, item.edit_of)
                    return item.edit_of
                if verdict.action is Action.MESSAGE_GONE and item.edit_of is not None:
                    log.info(
                        "delivery: chat %s: the message to edit is gone; sending anew", chat_id
                    )
                    item = threads.Outgoing(message, keys=item.keys)
                    continue
                self.errors[metric_kind(verdict, exc)] += 1
                if not verdict.retry:
                    log.error("delivery: chat %s refused for good: %s", chat_id, verdict.reason)
                    await self.outbox.mark_failed(message.row_ids, verdict.reason, self.wall())
                    return None
                if verdict.action is Action.RETRY_AFTER:
                    log.warning(
                        "delivery: chat %s told to wait %.0fs (429)", chat_id, verdict.seconds
                    )
                    await self._attempt(message.row_ids, verdict.reason, verdict.seconds)
                    continue  # the sender's pacer holds the chat for the window
                log.warning(
                    "delivery: chat %s: %s; retry in %.0fs", chat_id, verdict.reason, backoff
                )
                await self._attempt(message.row_ids, verdict.reason, backoff)
                await self._until_stopped(self.sleep(backoff))
                backoff = min(backoff * 2, self.backoff_cap)
                continue
            message_id = item.edit_of if item.edit_of is not None else sent.message_id
            if item.edit_of is not None:
                self.edited_messages += 1
            else:
                self.sent_messages += 1
            self._unmarked.update(message.row_ids)
            await self._mark(message.row_ids, message_id)
            return message_id
        return False

    async def _claim(self, row_ids: tuple[int, ...]) -> bool | None:
        """Claim the rows under this epoch, committed before the send.

        True: send. False: a newer epoch holds them, so another instance leads and this
        delivery stops. None: the claim could not be written; under a lease nothing is sent
        unclaimed (it is retried after a backoff), without one (epoch 0, SQLite) the send goes
        ahead as it always did and only the mark is retried.
        """
        try:
            ok = await self.outbox.claim(row_ids, self.epoch, self.wall())
        except Exception as exc:
            if self.epoch == NO_LEASE:
                log.warning(
                    "delivery: %s not claimed (%s); sending anyway", rows_text(row_ids), exc
                )
                return True
            log.warning("delivery: %s not claimed (%s); not sent yet", rows_text(row_ids), exc)
            return None
        if not ok:
            log.error(
                "delivery: %s are claimed by an epoch newer than %s: another instance "
                "leads; delivery stops",
                rows_text(row_ids),
                self.epoch,
            )
            self.deposed = True
            self._stopping.set()
            self._wake.set()
            return False
        again = self._in_flight.intersection(row_ids)
        if again:
            self.resent_after_takeover += len(again)
            self._in_flight.difference_update(again)
        return True

    async def _attempt(self, row_ids: tuple[int, ...], error: str, wait: float) -> None:
        try:
            next_at = self.wall() + timedelta(seconds=wait)
            await self.outbox.record_attempt(row_ids, error, next_at)
        except Exception:
            log.exception("delivery: could not record a failed attempt")

    async def _mark(self, row_ids: tuple[int, ...], message_id: int | None) -> None:
        try:
            await self.outbox.mark_sent(row_ids, message_id, self.wall())
        except Exception:
            # Kept in _unmarked, so this process never sends them again; retried below.
            log.exception("delivery: sent %s not yet marked in the database", rows_text(row_ids))
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


def rows_text(row_ids: tuple[int, ...], shown: int = 5) -> str:
    """Outbox row ids for a log line: all of a few, else the count and the first ones (one
    message of a mass outage folds a thousand rows)."""
    if len(row_ids) <= shown:
        return "rows " + ", ".join(map(str, row_ids))
    head = ", ".join(map(str, row_ids[:shown]))
    return f"{len(row_ids)} rows ({head}, …)"
