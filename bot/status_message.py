"""A live status message in each alert group: one message the bot pins and edits in place.

It shows online/offline/unknown, open incidents by severity, open mass outages and the last
change with its time. It is edited at most once every `every` seconds (30 by default) and only
when its text changed, through the one sender (lowest priority: replies and alerts go first).
Its message id is stored, so a restart edits the same message. When it was deleted (an edit or
a pin finds no message) or is no longer the chat's pinned message, it is re-created or pinned
again. Telegram tells a bot only the chat's newest pin, so pinning another message after ours
makes the bot pin ours again: the board stays on top, as the older system's dashboard did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from telegram.constants import ParseMode

from bot.limits import split
from bot.ports import MessageIds
from bot.send_errors import Action, classify
from bot.sender import Monotonic, Priority, Sender, Sleep
from bot.texts import Html, lang_of, t, when
from i18n.words import kind_label
from monitor.feed import Commit
from monitor.model import Event, Ont
from monitor.ports import Clock
from monitor.view import EngineView

log = logging.getLogger(__name__)

EVERY = 30.0


@dataclass(frozen=True, slots=True)
class LastChange:
    """The newest notified event, for the board's last line."""

    event: Event
    ont: Ont | None


def render(view: EngineView, last: LastChange | None, lang: str, tz: tzinfo) -> str:
    """The board's text (no clock in it: it changes only when the network does)."""
    counts = view.counts()
    sev = counts.by_severity
    lines = [
        t(
            lang,
            "board",
            total=counts.total,
            online=counts.online,
            offline=counts.offline,
            unknown=counts.unknown,
            critical=sev.get("critical", 0),
            warning=sev.get("warning", 0),
        )
    ]
    outages = view.outages()
    if outages:
        lines.append(t(lang, "status_outages"))
    for outage in outages:
        acked = (
            t(lang, "status_outage_acked", by=outage.acked_by or "?")
            if outage.acked_at is not None
            else t(lang, "status_outage_unacked")
        )
        lines.append(
            t(
                lang,
                "status_outage",
                area=outage.area or t(lang, "no_area"),
                count=len(outage.members),
                since=when(outage.started_at, tz),
                acked=acked,
            )
        )
    lines.append(_last_line(last, lang, tz))
    return split("\n".join(lines))[0]


def _last_line(last: LastChange | None, lang: str, tz: tzinfo) -> Html:
    if last is None:
        return t(lang, "board_quiet")
    e = last.event
    name = last.ont.label if last.ont is not None else (e.ont_id or e.area or "-")
    what = kind_label(e.kind.value, lang_of(lang, "en"))
    if e.status is not None:
        what = f"{what} ({e.status.value})"
    return t(lang, "board_last", name=name, id=e.ont_id or "-", what=what, at=when(e.at, tz))


class StatusBoard:
    """Keeps the pinned status message of each alert group up to date."""

    def __init__(
        self,
        bot: Any,
        sender: Sender,
        store: MessageIds,
        view: EngineView,
        chats: Sequence[int],
        *,
        lang_for: Callable[[int], str],
        tz: tzinfo,
        clock: Clock,
        every: float = EVERY,
        monotonic: Monotonic | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.bot = bot
        self.sender = sender
        self.store = store
        self.view = view
        self.chats = tuple(chats)
        self.lang_for = lang_for
        self.tz = tz
        self.clock = clock
        self.every = every
        self.monotonic = monotonic or sender.clock
        self.sleep = sleep
        self.last: LastChange | None = None
        self.edits = 0
        self.created = 0
        self._edited_at: dict[int, float] = {}
        self._no_pin_rights: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def committed(self, item: object) -> None:
        """Feed subscriber: remember the newest notified event (returns at once)."""
        if isinstance(item, Commit):
            for notice in item.notices:
                if notice.event.notify:
                    self.last = LastChange(notice.event, notice.ont)

    def start(self) -> None:
        """Refresh every `every` seconds until stopped."""
        self._task = asyncio.create_task(self._run(), name="ontwatch-status-message")

    async def stop(self) -> None:
        """Stop refreshing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            for chat in self.chats:
                try:
                    await self.refresh(chat)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # Telegram or the database down: the next round retries
                    log.warning("status message of chat %s: %s", chat, classify(exc).reason)
            await self.sleep(self.every)

    # -- one chat ---------------------------------------------------------------------------

    async def refresh(self, chat_id: int) -> str:
        """Create, re-pin or edit the chat's board as needed; says what it did."""
        text = render(self.view, self.last, self.lang_for(chat_id), self.tz)
        stored = await self.store.status_message(chat_id)
        if stored is None:
            return await self._create(chat_id, text)
        message_id, shown = stored
        if not await self._still_pinned(chat_id, message_id):
            return await self._create(chat_id, text)
        if text == shown:
            return "unchanged"
        last = self._edited_at.get(chat_id)
        if last is not None and self.monotonic() - last < self.every:
            return "too soon"
        return await self._edit(chat_id, message_id, text)

    async def _edit(self, chat_id: int, message_id: int, text: str) -> str:
        try:
            await self.sender.call(
                self.bot,
                "edit_message_text",
                chat_id,
                message_id=message_id,
                text=text,
                parse_mode=ParseMode.HTML,
                priority=Priority.STATUS,
            )
        except Exception as exc:
            action = classify(exc).action
            if action is Action.MESSAGE_GONE:
                return await self._create(chat_id, text)
            if action is not Action.NOT_MODIFIED:
                raise
        self._edited_at[chat_id] = self.monotonic()
        self.edits += 1
        await self.store.set_status_message(chat_id, message_id, text, self.clock())
        return "edited"

    async def _create(self, chat_id: int, text: str) -> str:
        sent = await self.sender.call(
            self.bot,
            "send_message",
            chat_id,
            text=text,
            parse_mode=ParseMode.HTML,
            disable_notification=True,
            priority=Priority.STATUS,
        )
        self._edited_at[chat_id] = self.monotonic()
        self.created += 1
        await self.store.set_status_message(chat_id, sent.message_id, text, self.clock())
        await self._pin(chat_id, sent.message_id)
        return "created"

    async def _pin(self, chat_id: int, message_id: int) -> bool:
        """Pin the board; False when the message is gone. No pin rights: go on unpinned."""
        try:
            await self.sender.call(
                self.bot,
                "pin_chat_message",
                chat_id,
                message_id=message_id,
                disable_notification=True,
                priority=Priority.STATUS,
            )
        except Exception as exc:
            verdict = classify(exc)
            if verdict.action is Action.MESSAGE_GONE:
                return False
            if verdict.action is Action.BAD_REQUEST:  # e.g. not enough rights to pin
                if chat_id not in self._no_pin_rights:
                    log.warning("status message of chat %s not pinned: %s", chat_id, verdict.reason)
                self._no_pin_rights.add(chat_id)
                return True
            raise
        self._no_pin_rights.discard(chat_id)
        return True

    async def _still_pinned(self, chat_id: int, message_id: int) -> bool:
        """True when the board is the chat's pinned message (pinned again if it was unpinned)."""
        if chat_id in self._no_pin_rights:
            return True  # nothing to check; a deleted board shows when an edit fails
        chat = await self.bot.get_chat(chat_id)
        pinned = getattr(chat, "pinned_message", None)
        if pinned is not None and pinned.message_id == message_id:
            return True
        return await self._pin(chat_id, message_id)
