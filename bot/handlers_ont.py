"""One ONT and history: /ont ID, /history [ID] and the Location button."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot import keyboards, replies
from bot.handlers_base import HandlerBase, arg
from bot.texts import href, navigation_url, t
from monitor.model import Ont


class OntCommands(HandlerBase):
    """Details, recent history and the location of ONTs."""

    async def ont(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/ont ID: details, recent history, buttons and a location pin."""
        lang = self._lang(update)
        ont_id = arg(context)
        if not ont_id:
            await self._reply(update, t(lang, "usage_ont"))
            return
        pair = self.ctx.view.get(ont_id)
        if pair is None:
            await self._reply(update, t(lang, "unknown_ont", id=ont_id))
            return
        ont, state = pair
        history = await self.ctx.reads.history(ont_id, limit=5)
        mute = self.ctx.view.mute(f"ont:{ont_id}")
        text = replies.ont_text(ont, state, history, mute, lang, self.ctx.tz, self.ctx.clock())
        has_location = ont.lat is not None and ont.lon is not None
        await self._reply(
            update, text, keyboards.ont_buttons(ont.id, lang, has_location=has_location)
        )
        if has_location:
            await self._send_location(update, ont, lang)

    async def _send_location(self, update: Update, ont: Ont, lang: str) -> None:
        chat = update.effective_chat
        assert chat is not None
        if ont.lat is None or ont.lon is None:
            await self._reply(update, t(lang, "no_location", name=ont.label, id=ont.id))
            return
        await chat.send_location(latitude=ont.lat, longitude=ont.lon)
        url = href(navigation_url(ont.lat, ont.lon))
        await self._reply(update, t(lang, "location_of", name=ont.label, id=ont.id, url=url))

    async def history(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/history [ID]: newest history lines, of one ONT or of all."""
        lang = self._lang(update)
        ont_id = arg(context) or None
        if ont_id is not None and ont_id not in self.ctx.view:
            await self._reply(update, t(lang, "unknown_ont", id=ont_id))
            return
        rows = await self.ctx.reads.history(ont_id, limit=15)
        title = ""
        if ont_id is not None:
            title = f"{self.ctx.view.onts()[ont_id].label} (id {ont_id})"
        text = replies.history_text(
            rows, lang, self.ctx.tz, one_ont=ont_id is not None, title=title
        )
        await self._reply(update, text)

    async def location_button(self, update: Update, ont_id: str, lang: str) -> None:
        """The Location button of an ONT's alert."""
        ont = self.ctx.view.ont(ont_id)
        if ont is not None:
            await self._send_location(update, ont, lang)
