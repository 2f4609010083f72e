"""Status and lists: /start, /help, /status, /offline and its pages."""

from __future__ import annotations

import contextlib

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot import keyboards, replies
from bot.handlers_base import NO_PREVIEW, HandlerBase
from bot.limits import split
from bot.texts import Html, t


class StatusCommands(HandlerBase):
    """The network at a glance."""

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/start: chat id and access."""
        chat = update.effective_chat
        assert chat is not None
        lang = self._lang(update)
        alert = t(lang, "start_alert") if chat.id in self.ctx.alert_chats else Html("")
        await self._reply(update, t(lang, "start", chat_id=chat.id, alert=alert))

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/help: the commands."""
        await self._reply(update, t(self._lang(update), "help"))

    async def status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/status: totals, incidents, open mass outages, worst areas, probe agents."""
        stats = await self.ctx.reads.stats()
        outages = self.ctx.view.outages()
        lang, now = self._lang(update), self.ctx.clock()
        text = replies.status_text(stats, lang, self.ctx.tz, now, outages)
        agents = replies.agents_text(self.ctx.view.agents(), lang, self.ctx.tz, now)
        await self._reply(update, text + "\n" + agents if agents else text)

    async def offline(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/offline: the first page, with ◀ ▶ when there are more."""
        lang = self._lang(update)
        text, page, pages = replies.offline_page(
            self.ctx.view.items(), 1, lang, self.ctx.tz, self.ctx.clock()
        )
        await self._reply(update, text, keyboards.pager(page, pages))

    async def _page(self, update: Update, key: str, lang: str) -> None:
        query = update.callback_query
        assert query is not None
        try:
            page = int(key)
        except ValueError:
            await query.answer(t(lang, "button_gone"))
            return
        text, page, pages = replies.offline_page(
            self.ctx.view.items(), page, lang, self.ctx.tz, self.ctx.clock()
        )
        await query.answer()
        with contextlib.suppress(TelegramError):  # "message is not modified" is fine
            await query.edit_message_text(
                split(text)[0],
                parse_mode=ParseMode.HTML,
                reply_markup=keyboards.pager(page, pages),
                link_preview_options=NO_PREVIEW,
            )

    async def page_button(self, update: Update, key: str, lang: str) -> None:
        """The /offline pager's buttons."""
        await self._page(update, key, lang)
