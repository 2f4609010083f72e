"""Subscriptions and language: /subscribe, /unsubscribe, /lang."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot import replies
from bot.handlers_base import HandlerBase, arg
from bot.texts import LANGS, t
from monitor.ports import Subscription


class SubscriptionCommands(HandlerBase):
    """A chat's areas and language."""

    async def subscribe(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/subscribe AREA [warning|critical]: this chat gets the area's alerts."""
        lang = self._lang(update)
        chat = update.effective_chat
        assert chat is not None
        args = list(context.args or ())
        if not args:
            await self._reply(update, t(lang, "usage_subscribe", areas=self._areas_text()))
            return
        severity = replies.severity_word(args[-1]) if len(args) > 1 else None
        # The last word is neither a level nor part of a known area name: say which is wrong.
        if (
            severity is None
            and len(args) > 1
            and self._find_area(" ".join(args)) is None
            and self._find_area(" ".join(args[:-1])) is not None
        ):
            await self._reply(update, t(lang, "bad_severity", value=args[-1]))
            return
        name = " ".join(args[:-1]) if severity is not None else " ".join(args)
        area = self._find_area(name)
        if area is None:
            await self._reply(update, t(lang, "unknown_area", area=name, areas=self._areas_text()))
            return
        sub = Subscription(chat.id, area, (severity or replies.Severity.WARNING).value)
        await self.ctx.subs.subscribe(sub)
        self.ctx.router.add(sub)  # after the row is stored: memory never runs ahead of the DB
        word = t(lang, f"sev_{sub.min_severity}")
        await self._reply(update, t(lang, "subscribed", area=area, severity=word))

    async def unsubscribe(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/unsubscribe [AREA]: stop one subscription, or all of this chat's."""
        lang = self._lang(update)
        chat = update.effective_chat
        assert chat is not None
        name = arg(context)
        area: str | None = None
        if name:
            mine = [s.area for s in await self.ctx.subs.all() if s.chat_id == chat.id]
            folded = " ".join(name.split()).casefold()
            area = next((a for a in mine if a.casefold() == folded), None)
            if area is None:
                await self._reply(update, t(lang, "not_subscribed", area=name))
                return
        removed = await self.ctx.subs.unsubscribe(chat.id, area)
        for a in removed:
            self.ctx.router.remove(chat.id, a)
        if not removed:
            await self._reply(update, t(lang, "subs_none"))
            return
        await self._reply(update, t(lang, "unsubscribed", areas=", ".join(removed)))

    async def lang(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/lang id|en: this chat's language."""
        chat = update.effective_chat
        assert chat is not None
        choice = arg(context).lower()
        if choice not in LANGS:
            await self._reply(update, t(self._lang(update), "usage_lang"))
            return
        await self.ctx.prefs.set_lang(chat.id, choice)
        self.ctx.langs[chat.id] = choice
        await self._reply(update, t(choice, "lang_set"))
