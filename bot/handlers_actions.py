"""Ack and mute: /ack, /mute, /unmute and the Ack / Mute 1h buttons."""

from __future__ import annotations

from datetime import timedelta

from telegram import Update
from telegram.ext import ContextTypes

from bot import replies
from bot.handlers_base import MUTE_BUTTON, HandlerBase, arg, who
from bot.texts import t, when
from monitor.engine import StoreUnavailable, UnknownOnt


class ActionCommands(HandlerBase):
    """What technicians do about incidents (writes go to the engine)."""

    async def ack(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/ack ID|AREA: acknowledge the ONT's incident, or the area's mass outage."""
        lang = self._lang(update)
        name = arg(context)
        if not name:
            await self._reply(update, t(lang, "usage_ack"))
            return
        area = None if name in self.ctx.view else self._find_area(name)
        if area is not None:
            await self._reply(update, await self._do_ack_area(area, who(update), lang))
            return
        await self._reply(update, await self._do_ack(name, who(update), lang))

    async def _do_ack_area(self, area: str, by: str, lang: str) -> str:
        try:
            outage, reason = await self.ctx.engine.ack_area(area, by)
        except StoreUnavailable as exc:
            return t(lang, "error", detail=str(exc))
        if outage is None:
            return t(lang, "ack_area_none", area=area)
        if reason == "acknowledged":
            return t(lang, "ack_area_done", area=area)
        return t(lang, "ack_area_already", area=area, by=outage.acked_by or "?")

    async def _do_ack(self, ont_id: str, by: str, lang: str) -> str:
        try:
            state, reason = await self.ctx.engine.ack(ont_id, by)
        except UnknownOnt:
            return t(lang, "unknown_ont", id=ont_id)
        except StoreUnavailable as exc:
            return t(lang, "error", detail=str(exc))
        ont = self.ctx.view.onts()[ont_id]
        if reason == "acknowledged":
            return t(lang, "ack_done", name=ont.label, id=ont_id)
        if reason == "no open incident":
            return t(lang, "ack_none", name=ont.label, id=ont_id)
        by_whom = state.incident.acked_by if state.incident else "?"
        return t(lang, "ack_already", name=ont.label, id=ont_id, by=by_whom or "?")

    async def mute(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/mute ID|AREA DURATION: silence an ONT or an area."""
        lang = self._lang(update)
        args = list(context.args or ())
        if len(args) < 2:
            await self._reply(update, t(lang, "usage_mute"))
            return
        name, raw = " ".join(args[:-1]), args[-1]
        target = self._target(name)
        if target is None:
            await self._reply(
                update, t(lang, "unknown_target", target=name, areas=self._areas_text())
            )
            return
        span = replies.parse_duration(raw)
        if span is None:
            await self._reply(update, t(lang, "bad_duration", value=raw))
            return
        await self._reply(update, await self._do_mute(target, span, who(update), lang))

    async def _do_mute(self, target: str, span: timedelta, by: str, lang: str) -> str:
        until = self.ctx.clock() + span
        try:
            await self.ctx.engine.mute(target, until, by)
        except (UnknownOnt, ValueError) as exc:
            return t(lang, "error", detail=str(exc))
        except StoreUnavailable as exc:
            return t(lang, "error", detail=str(exc))
        what = replies.target_label(target, self.ctx.view.onts(), lang)
        return t(
            lang,
            "muted",
            what=what,
            until=when(until, self.ctx.tz),
            dur=replies.duration(span, lang),
        )

    async def unmute(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/unmute [ID|AREA]: lift a silence, or list them."""
        lang = self._lang(update)
        name = arg(context)
        engine, view = self.ctx.engine, self.ctx.view
        if not name:
            text = replies.mutes_text(
                view.mutes(), view.onts(), lang, self.ctx.tz, self.ctx.clock()
            )
            await self._reply(update, text)
            return
        target = self._target(name)
        if target is None:
            # A silence on an area or ONT that no longer exists can still be lifted by name.
            folded = name.casefold()
            target = next(
                (m.target for m in view.mutes() if m.target.partition(":")[2].casefold() == folded),
                None,
            )
        if target is None:
            await self._reply(
                update, t(lang, "unknown_target", target=name, areas=self._areas_text())
            )
            return
        what = replies.target_label(target, view.onts(), lang)
        try:
            lifted = await engine.unmute(target)
        except StoreUnavailable as exc:
            await self._reply(update, t(lang, "error", detail=str(exc)))
            return
        await self._reply(update, t(lang, "unmuted" if lifted else "not_muted", what=what))

    async def ack_button(self, update: Update, ont_id: str, lang: str) -> None:
        """Ack on an ONT's alert."""
        await self._reply(update, await self._do_ack(ont_id, who(update), lang))

    async def mute_button(self, update: Update, ont_id: str, lang: str) -> None:
        """Mute 1h on an ONT's alert."""
        text = await self._do_mute(f"ont:{ont_id}", MUTE_BUTTON, who(update), lang)
        await self._reply(update, text)

    async def ack_area_button(self, update: Update, area: str, lang: str) -> None:
        """Ack on a mass outage."""
        await self._reply(update, await self._do_ack_area(area, who(update), lang))

    async def mute_area_button(self, update: Update, area: str, lang: str) -> None:
        """Mute 1h on a mass outage."""
        text = await self._do_mute(f"area:{area}", MUTE_BUTTON, who(update), lang)
        await self._reply(update, text)
