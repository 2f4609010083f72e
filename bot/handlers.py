"""The bot's handlers behind one access check: a table of commands, a table of button verbs.

Each concern lives in its own module: status and lists (`handlers_status`), maps
(`handlers_map`), one ONT and history (`handlers_ont`), ack and mute (`handlers_actions`),
subscriptions and language (`handlers_subs`), a shared location (`handlers_location`); what
they share is in `handlers_base`. Access (the allowed list and the refusal) is here.
"""

from __future__ import annotations

import contextlib
import enum
import time
from typing import Any

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import keyboards
from bot.handlers_actions import ActionCommands
from bot.handlers_base import BotContext, Handler, Renderer, log
from bot.handlers_location import LocationCommands
from bot.handlers_map import MapCommands
from bot.handlers_ont import OntCommands
from bot.handlers_status import StatusCommands
from bot.handlers_subs import SubscriptionCommands
from bot.limits import trim, visible
from bot.texts import t

__all__ = ["BUTTONS", "COMMAND_HANDLERS", "BotContext", "Handlers", "Renderer"]

REFUSAL_EVERY = 60.0  # seconds: an unknown chat that keeps writing gets one refusal a minute


class Scope(enum.Enum):
    """What a button's key names."""

    ONT = "ont"  # an ONT id (resolved among the known ONTs)
    AREA = "area"  # an area (resolved among the known areas)
    RAW = "raw"  # passed as it is (an /offline page number)


# Command -> handler method.
COMMAND_HANDLERS: dict[str, str] = {
    "start": "start",
    "help": "help",
    "status": "status",
    "offline": "offline",
    "map": "map",
    "ont": "ont",
    "history": "history",
    "ack": "ack",
    "mute": "mute",
    "unmute": "unmute",
    "subscribe": "subscribe",
    "unsubscribe": "unsubscribe",
    "lang": "lang",
}
# Button verb -> (what its key names, handler method taking (update, name, lang)).
BUTTONS: dict[str, tuple[Scope, str]] = {
    keyboards.ACK: (Scope.ONT, "ack_button"),
    keyboards.MUTE: (Scope.ONT, "mute_button"),
    keyboards.MAP: (Scope.ONT, "map_button"),
    keyboards.LOCATION: (Scope.ONT, "location_button"),
    keyboards.ACK_AREA: (Scope.AREA, "ack_area_button"),
    keyboards.MUTE_AREA: (Scope.AREA, "mute_area_button"),
    keyboards.MAP_AREA: (Scope.AREA, "map_area_button"),
    keyboards.OFFLINE_PAGE: (Scope.RAW, "page_button"),
}


class Handlers(
    StatusCommands,
    MapCommands,
    OntCommands,
    ActionCommands,
    SubscriptionCommands,
    LocationCommands,
):
    """Every handler; register() adds them to a PTB Application."""

    def register(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Add every handler; each runs behind the access check."""
        for name, method in COMMAND_HANDLERS.items():
            app.add_handler(CommandHandler(name, self._guard(getattr(self, method))))
        app.add_handler(MessageHandler(filters.LOCATION, self._guard(self.location)))
        app.add_handler(CallbackQueryHandler(self._guard(self.button)))
        app.add_error_handler(self._error)

    # -- access -----------------------------------------------------------------------------

    def allowed(self, update: Update) -> bool:
        """The chat or the user is on the allowed list."""
        chat, user = update.effective_chat, update.effective_user
        return bool(
            (chat is not None and chat.id in self.ctx.allowed)
            or (user is not None and user.id in self.ctx.allowed)
        )

    def _guard(self, fn: Handler) -> Handler:
        async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            if self.allowed(update):
                await fn(update, context)
            else:
                await self._refuse(update)

        return guarded

    async def _refuse(self, update: Update) -> None:
        """One refusal with the chat id, and no ONT data, whatever was asked."""
        chat = update.effective_chat
        if chat is None:
            return
        text = t(self.ctx.default_lang, "refused", chat_id=chat.id)
        if update.callback_query is not None:
            with contextlib.suppress(TelegramError):
                await update.callback_query.answer(trim(visible(text), 190), show_alert=True)
            return
        last = self.ctx._refused_at.get(chat.id)
        now = time.monotonic()
        if last is not None and now - last < REFUSAL_EVERY:
            return
        self.ctx._refused_at[chat.id] = now
        log.info("refused chat %s (user %s)", chat.id, getattr(update.effective_user, "id", "?"))
        await chat.send_message(text, parse_mode=ParseMode.HTML)

    async def _error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("bot handler failed: %s", type(context.error).__name__, exc_info=context.error)

    # -- buttons ----------------------------------------------------------------------------

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Inline buttons, through BUTTONS: the key resolved, the query answered, the handler."""
        query = update.callback_query
        assert query is not None
        lang = self._lang(update)
        cb = keyboards.decode(query.data)
        entry = BUTTONS.get(cb.verb) if cb is not None else None
        if cb is None or entry is None:
            await query.answer(t(lang, "button_gone"))
            return
        scope, method = entry
        handler = getattr(self, method)
        if scope is Scope.RAW:
            await handler(update, cb.key, lang)  # answers the query itself
            return
        names = self._areas() if scope is Scope.AREA else self.ctx.view.ont_ids()
        name = cb.resolve(names)
        if name is None:
            await query.answer(t(lang, "button_gone"))
            return
        await query.answer()
        await handler(update, name, lang)
