"""What every handler shares: the context, replies through the one sender, name lookups."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo
from typing import Any, Protocol

from telegram import InlineKeyboardMarkup, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from bot.limits import split
from bot.ports import AreaSubscriptions, ChatLanguages
from bot.routing import SubscriptionRouter
from bot.texts import lang_of
from monitor.engine import Engine
from monitor.model import Ont, OntState
from monitor.ports import Clock, ReadModel
from monitor.view import EngineView

log = logging.getLogger("bot.handlers")

MUTE_BUTTON = timedelta(hours=1)
MAP_TIMEOUT = 15.0
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]


class Renderer(Protocol):
    """maps.render.MapRenderer's render (kept as a protocol so the bot works without maps)."""

    async def render(
        self,
        view: Any,
        items: Sequence[tuple[Ont, OntState]],
        *,
        width: int = 800,
        height: int = 600,
        now: Any,
        tz: tzinfo,
    ) -> bytes:
        """PNG bytes of the view."""
        ...


@dataclass
class BotContext:
    """What the handlers work with."""

    engine: Engine  # writes (ack, mute); reads go through view
    reads: ReadModel
    prefs: ChatLanguages
    subs: AreaSubscriptions
    router: SubscriptionRouter
    allowed: frozenset[int]
    alert_chats: frozenset[int]
    default_lang: str
    tz: tzinfo
    clock: Clock
    renderer: Renderer | None = None
    langs: dict[int, str] = field(default_factory=dict)
    _refused_at: dict[int, float] = field(default_factory=dict)
    view: EngineView = field(init=False)

    def __post_init__(self) -> None:
        self.view = EngineView(self.engine)  # the read-only side of the engine

    def lang(self, chat_id: int) -> str:
        """The chat's language."""
        return lang_of(self.langs.get(chat_id), self.default_lang)


def who(update: Update) -> str:
    """Who pressed or wrote: @username, else the name and id."""
    user = update.effective_user
    if user is None:
        return "?"
    return f"@{user.username}" if user.username else f"{user.full_name} ({user.id})"


def arg(context: ContextTypes.DEFAULT_TYPE) -> str:
    """The command's arguments as one string."""
    return " ".join(context.args or ()).strip()


class HandlerBase:
    """Replies and lookups; every request goes through the bot's one sender (its rate limiter)."""

    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx

    async def _reply(
        self, update: Update, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> None:
        chat = update.effective_chat
        assert chat is not None
        parts = split(text)
        for i, part in enumerate(parts):
            await chat.send_message(
                part,
                parse_mode=ParseMode.HTML,
                link_preview_options=NO_PREVIEW,
                reply_markup=markup if i == len(parts) - 1 else None,
            )

    def _lang(self, update: Update) -> str:
        chat = update.effective_chat
        return self.ctx.lang(chat.id if chat else 0)

    def _areas(self) -> list[str]:
        return self.ctx.view.areas()

    def _areas_text(self) -> str:
        areas = self._areas()
        shown = ", ".join(areas[:30]) + (" …" if len(areas) > 30 else "")
        return shown or "-"

    def _find_area(self, name: str) -> str | None:
        folded = " ".join(name.split()).casefold()
        matches = [a for a in self._areas() if a.casefold() == folded]
        return matches[0] if len(matches) == 1 else None

    def _target(self, name: str) -> str | None:
        """'ont:<id>' for an ONT id, 'area:<name>' for an area (case-insensitive), else None."""
        if name in self.ctx.view:
            return f"ont:{name}"
        area = self._find_area(name)
        return f"area:{area}" if area is not None else None
