"""Maps: /map [offline|AREA|ONT_ID] and the Map buttons."""

from __future__ import annotations

import asyncio
from typing import Any

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from bot import replies
from bot.handlers_base import MAP_TIMEOUT, HandlerBase, arg, log
from bot.limits import MAX_CAPTION, trim
from bot.texts import Html, esc, t, when
from monitor.model import Ont, OntState, Status


class MapCommands(HandlerBase):
    """A picture of the network, or a text summary when maps cannot draw."""

    async def map(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/map [offline|AREA|ONT_ID]: a picture, or a text summary when maps cannot draw."""
        lang = self._lang(update)
        try:
            from maps.view import parse_command_arg

            view = parse_command_arg(arg(context), self._areas(), self.ctx.view.ont_ids())
        except ValueError as exc:
            await self._reply(update, t(lang, "map_bad", detail=str(exc)))
            return
        except ImportError:
            view = None
        await self._send_map(update, view, lang)

    async def _send_map(self, update: Update, view: Any, lang: str) -> None:
        chat = update.effective_chat
        assert chat is not None
        items = self._view_items(view)
        now = self.ctx.clock()
        off = sum(1 for _, s in items if s.status is Status.OFF)
        label = self._view_label(view, lang)
        caption = t(
            lang,
            "map_caption",
            view=label,
            offline=off,
            total=len(items),
            now=when(now, self.ctx.tz),
        )
        png: bytes | None = None
        if self.ctx.renderer is not None and view is not None:
            try:
                png = await asyncio.wait_for(
                    self.ctx.renderer.render(view, self.ctx.view.items(), now=now, tz=self.ctx.tz),
                    MAP_TIMEOUT,
                )
            except Exception as exc:  # any failure of the map falls back to text
                log.warning("map render failed: %s: %s", type(exc).__name__, exc)
        if png is not None:
            await chat.send_photo(
                png, caption=trim(caption, MAX_CAPTION), parse_mode=ParseMode.HTML
            )
            return
        text, _, _ = replies.offline_page(items, 1, lang, self.ctx.tz, now)
        await self._reply(update, f"{t(lang, 'map_fallback')}\n{caption}\n\n{text}")

    def _view_items(self, view: Any) -> list[tuple[Ont, OntState]]:
        items = self.ctx.view.items()
        kind = getattr(view, "kind", "all")
        value = getattr(view, "value", "")
        if kind == "offline":
            return [(o, s) for o, s in items if s.status is Status.OFF]
        if kind == "area":
            return [(o, s) for o, s in items if o.area == value]
        if kind == "ont":
            return [(o, s) for o, s in items if o.id == value]
        return items

    @staticmethod
    def _view_label(view: Any, lang: str) -> Html:
        kind = getattr(view, "kind", "all")
        value = getattr(view, "value", "")
        if kind == "area":
            return t(lang, "what_area", area=value)
        if kind == "ont":
            return Html(f"ONT {esc(value)}")
        return t(lang, "word_offline" if kind == "offline" else "word_all")

    async def map_button(self, update: Update, ont_id: str, lang: str) -> None:
        """The Map button of an ONT's alert."""
        try:
            from maps.view import MapView

            view: Any = MapView("ont", ont_id)
        except ImportError:
            view = None
        await self._send_map(update, view, lang)

    async def map_area_button(self, update: Update, area: str, lang: str) -> None:
        """The Map button of an area's alert."""
        from maps.view import MapView

        await self._send_map(update, MapView("area", area), lang)
