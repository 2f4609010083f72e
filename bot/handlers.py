"""Command, location and button handlers, behind one access check."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo
from typing import Any, Protocol

from telegram import InlineKeyboardMarkup, LinkPreviewOptions, Update
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

from bot import keyboards, replies
from bot.limits import MAX_CAPTION, split, trim, visible
from bot.ports import AreaSubscriptions, ChatLanguages
from bot.routing import SubscriptionRouter
from bot.texts import LANGS, Html, esc, href, lang_of, navigation_url, t, when
from monitor.engine import Engine, StoreUnavailable, UnknownOnt
from monitor.model import Ont, OntState, Status
from monitor.ports import Clock, ReadModel, Subscription
from monitor.view import EngineView

log = logging.getLogger(__name__)

MUTE_BUTTON = timedelta(hours=1)
REFUSAL_EVERY = 60.0  # seconds: an unknown chat that keeps writing gets one refusal a minute
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


def _who(update: Update) -> str:
    user = update.effective_user
    if user is None:
        return "?"
    return f"@{user.username}" if user.username else f"{user.full_name} ({user.id})"


def _arg(context: ContextTypes.DEFAULT_TYPE) -> str:
    return " ".join(context.args or ()).strip()


class Handlers:
    """The bot's handlers; register() adds them to a PTB Application."""

    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx

    # -- registration and access ------------------------------------------------------------

    def register(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Add every handler; each runs behind the access check."""
        commands: dict[str, Handler] = {
            "start": self.start,
            "help": self.help,
            "status": self.status,
            "offline": self.offline,
            "map": self.map,
            "ont": self.ont,
            "history": self.history,
            "ack": self.ack,
            "mute": self.mute,
            "unmute": self.unmute,
            "subscribe": self.subscribe,
            "unsubscribe": self.unsubscribe,
            "lang": self.lang,
        }
        for name, fn in commands.items():
            app.add_handler(CommandHandler(name, self._guard(fn)))
        app.add_handler(MessageHandler(filters.LOCATION, self._guard(self.location)))
        app.add_handler(CallbackQueryHandler(self._guard(self.button)))
        app.add_error_handler(self._error)

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
                await update.callback_query.answer(trim(_plain(text), 190), show_alert=True)
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

    # -- replies ----------------------------------------------------------------------------

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

    # -- commands ---------------------------------------------------------------------------

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
        """/status: totals, incidents, open mass outages, worst areas."""
        stats = await self.ctx.reads.stats()
        outages = self.ctx.view.outages()
        text = replies.status_text(
            stats, self._lang(update), self.ctx.tz, self.ctx.clock(), outages
        )
        await self._reply(update, text)

    async def offline(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/offline: the first page, with ◀ ▶ when there are more."""
        lang = self._lang(update)
        text, page, pages = replies.offline_page(
            self.ctx.view.items(), 1, lang, self.ctx.tz, self.ctx.clock()
        )
        await self._reply(update, text, keyboards.pager(page, pages))

    async def map(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/map [offline|AREA|ONT_ID]: a picture, or a text summary when maps cannot draw."""
        lang = self._lang(update)
        try:
            from maps.view import parse_command_arg

            view = parse_command_arg(_arg(context), self._areas(), self.ctx.view.ont_ids())
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

    async def ont(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/ont ID: details, recent history, buttons and a location pin."""
        lang = self._lang(update)
        ont_id = _arg(context)
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
        ont_id = _arg(context) or None
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

    async def ack(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/ack ID|AREA: acknowledge the ONT's incident, or the area's mass outage."""
        lang = self._lang(update)
        name = _arg(context)
        if not name:
            await self._reply(update, t(lang, "usage_ack"))
            return
        area = None if name in self.ctx.view else self._find_area(name)
        if area is not None:
            await self._reply(update, await self._do_ack_area(area, _who(update), lang))
            return
        await self._reply(update, await self._do_ack(name, _who(update), lang))

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
        await self._reply(update, await self._do_mute(target, span, _who(update), lang))

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
        name = _arg(context)
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
        name = _arg(context)
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
        choice = _arg(context).lower()
        if choice not in LANGS:
            await self._reply(update, t(self._lang(update), "usage_lang"))
            return
        await self.ctx.prefs.set_lang(chat.id, choice)
        self.ctx.langs[chat.id] = choice
        await self._reply(update, t(choice, "lang_set"))

    # -- location and buttons ---------------------------------------------------------------

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

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Inline buttons: ack, mute 1h, map, location (of an ONT or an area), /offline pages."""
        query = update.callback_query
        assert query is not None
        lang = self._lang(update)
        cb = keyboards.decode(query.data)
        if cb is None:
            await query.answer(t(lang, "button_gone"))
            return
        if cb.verb == keyboards.OFFLINE_PAGE:
            await self._page(update, cb.key, lang)
            return
        if cb.verb in (keyboards.ACK_AREA, keyboards.MUTE_AREA, keyboards.MAP_AREA):
            area = cb.resolve(self._areas())
            if area is None:
                await query.answer(t(lang, "button_gone"))
                return
            await query.answer()
            if cb.verb == keyboards.ACK_AREA:
                await self._reply(update, await self._do_ack_area(area, _who(update), lang))
            elif cb.verb == keyboards.MUTE_AREA:
                await self._reply(
                    update, await self._do_mute(f"area:{area}", MUTE_BUTTON, _who(update), lang)
                )
            else:
                from maps.view import MapView

                await self._send_map(update, MapView("area", area), lang)
            return
        ont_id = cb.resolve(self.ctx.view.ont_ids())
        if ont_id is None:
            await query.answer(t(lang, "button_gone"))
            return
        await query.answer()
        if cb.verb == keyboards.ACK:
            await self._reply(update, await self._do_ack(ont_id, _who(update), lang))
        elif cb.verb == keyboards.MUTE:
            await self._reply(
                update, await self._do_mute(f"ont:{ont_id}", MUTE_BUTTON, _who(update), lang)
            )
        elif cb.verb == keyboards.MAP:
            try:
                from maps.view import MapView

                view: Any = MapView("ont", ont_id)
            except ImportError:
                view = None
            await self._send_map(update, view, lang)
        elif cb.verb == keyboards.LOCATION:
            await self._send_location(update, self.ctx.view.onts()[ont_id], lang)

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


def _plain(text: str) -> str:
    return visible(text)
