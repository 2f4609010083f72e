"""A shared location: the nearest offline ONTs."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot import replies
from bot.handlers_base import HandlerBase


class LocationCommands(HandlerBase):
    """Answers a location a technician shares."""

    async def location(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A shared location: the nearest offline ONTs with navigation links."""
        message = update.effective_message
        if message is None or message.location is None:
            return
        loc = message.location
        text = replies.nearest_text(
            self.ctx.view.items(),
            loc.latitude,
            loc.longitude,
            self._lang(update),
            self.ctx.clock(),
        )
        await self._reply(update, text)
