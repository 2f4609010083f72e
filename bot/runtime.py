"""The bot inside the service's event loop: PTB Application, handlers and outbox delivery."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from telegram import BotCommand, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import Application, Defaults

from bot.chat_order import ChatOrder
from bot.delivery import Delivery, Monotonic, Sleep
from bot.handlers import BotContext, Handlers, Renderer
from bot.ports import BotConfig, BotStores
from bot.routing import SubscriptionRouter
from bot.sender import Sender
from bot.status_message import StatusBoard
from bot.texts import COMMANDS, LANGS, t
from monitor.engine import Engine
from monitor.model import Ont
from monitor.ports import Clock, ReadModel
from monitor.view import EngineView

log = logging.getLogger(__name__)

CONNECT_BACKOFF_CAP = 60.0
ALLOWED_UPDATES = ["message", "callback_query"]


def commands_for(lang: str) -> list[BotCommand]:
    """The command menu in one language."""
    return [BotCommand(name, t(lang, f"cmd_{name}")) for name in COMMANDS]


class BotRuntime:
    """Owns the PTB Application, the handlers and the delivery task; start/stop with the service."""

    def __init__(
        self,
        config: BotConfig,
        stores: BotStores,
        reads: ReadModel,
        *,
        clock: Clock,
        renderer: Renderer | None = None,
        monotonic: Monotonic | None = None,
        sleep: Sleep = asyncio.sleep,
        connect_backoff_cap: float = CONNECT_BACKOFF_CAP,
    ) -> None:
        if not config.token:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        self.config = config
        self.reads = reads
        self.clock = clock
        self.renderer = renderer
        self.monotonic = monotonic
        self.sleep = sleep
        self.connect_backoff_cap = connect_backoff_cap
        self.outbox = stores.outbox
        self.prefs = stores.prefs
        self.subs = stores.subs
        self.messages = stores.messages
        self.router = SubscriptionRouter(config.alert_chats)
        self.sender = Sender(monotonic, sleep)  # the one sender: replies, alerts, edits, pins
        self.board: StatusBoard | None = None
        self.engine: Engine | None = None
        self.view: EngineView | None = None  # what the bot reads; writes go to the engine
        self.delivery: Delivery | None = None
        self.epoch = 0  # the leader's epoch (set before load() under a lease; 0: no lease)
        self.app: Application[Any, Any, Any, Any, Any, Any] | None = None
        self.langs: dict[int, str] = {}
        self.connected = asyncio.Event()
        self._connect_task: asyncio.Task[None] | None = None

    async def load(self) -> SubscriptionRouter:
        """Read subscriptions and chat languages; build the app and delivery (no network yet)."""
        for sub in await self.subs.all():
            self.router.add(sub)
        self.langs.update(await self.prefs.langs())
        url = self.config.api_url
        self.app = (
            Application.builder()
            .token(self.config.token)
            .base_url(f"{url}/bot")
            .base_file_url(f"{url}/file/bot")
            .defaults(
                Defaults(
                    parse_mode=ParseMode.HTML,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
            )
            .rate_limiter(self.sender)  # every request of the handlers is paced and retried
            .concurrent_updates(ChatOrder())  # chats concurrent, one chat's updates in order
            .build()
        )
        self.delivery = Delivery(
            self.outbox,
            self.app.bot,
            lang_for=self.lang_for,
            tz=self.config.tz,
            lookup=self._lookup,
            group_wait=self.config.group_wait,
            clock=self.monotonic,
            sleep=self.sleep,
            sender=self.sender,
            messages=self.messages,
            edit_window=timedelta(seconds=self.config.edit_window),
            epoch=self.epoch,
        )
        return self.router

    @property
    def sink(self) -> Delivery:
        """The engine's AlertSink: wakes delivery when rows are committed."""
        assert self.delivery is not None, "call load() first"
        return self.delivery

    def lang_for(self, chat_id: int) -> str:
        """A chat's language (its /lang choice, else the default setting)."""
        lang = self.langs.get(chat_id)
        return lang if lang in LANGS else self.config.lang

    def _lookup(self, ont_id: str) -> Ont | None:
        return self.view.ont(ont_id) if self.view is not None else None

    async def start(self, engine: Engine) -> None:
        """Register handlers, start delivery, and connect to Telegram in the background."""
        assert self.app is not None and self.delivery is not None, "call load() first"
        self.engine = engine
        self.view = EngineView(engine)
        ctx = BotContext(
            engine=engine,
            reads=self.reads,
            prefs=self.prefs,
            subs=self.subs,
            router=self.router,
            allowed=self.config.allowed,
            alert_chats=frozenset(self.config.alert_chats),
            default_lang=self.config.lang,
            tz=self.config.tz,
            clock=self.clock,
            renderer=self.renderer,
            langs=self.langs,
        )
        Handlers(ctx).register(self.app)
        self.board = self._status_board(engine)
        self.delivery.start()
        # The service must start even when Telegram is unreachable: connect in the background;
        # alerts wait in the outbox meanwhile.
        self._connect_task = asyncio.create_task(self._connect(), name="ontwatch-bot-connect")

    def _status_board(self, engine: Engine) -> StatusBoard | None:
        """The pinned status message of each alert group (ONTWATCH_STATUS_MESSAGE, default on)."""
        off = self.config.status_message_off
        groups = [c for c in self.config.alert_chats if c < 0 and c not in off]
        if not self.config.status_message or not groups or self.messages is None:
            return None
        assert self.app is not None
        board = StatusBoard(
            self.app.bot,
            self.sender,
            self.messages,
            EngineView(engine),
            groups,
            lang_for=self.lang_for,
            tz=self.config.tz,
            clock=self.clock,
            every=self.config.status_every,
            sleep=self.sleep,
        )
        engine.feed.subscribe(board.committed)
        return board

    async def _connect(self) -> None:
        assert self.app is not None and self.delivery is not None
        backoff = 1.0
        while True:
            try:
                await self.app.initialize()
                break
            except (TelegramError, OSError) as exc:
                # Only the class name: InvalidToken's message contains the token.
                log.warning(
                    "Telegram not reachable (%s); retrying in %.0fs", type(exc).__name__, backoff
                )
                await self.sleep(backoff)
                backoff = min(backoff * 2, self.connect_backoff_cap)
        await self._retrying(self._set_commands, "setMyCommands")
        await self.app.start()
        assert self.app.updater is not None
        await self.app.updater.start_polling(
            drop_pending_updates=False,
            allowed_updates=ALLOWED_UPDATES,
            bootstrap_retries=-1,
        )
        self.delivery.ready.set()
        if self.board is not None:
            self.board.start()
        self.connected.set()
        log.info("Telegram bot @%s connected", self.app.bot.username)

    async def _retrying(self, fn: Callable[[], Awaitable[None]], what: str) -> None:
        backoff = 1.0
        for _ in range(5):  # the menu is a nicety: a few tries, then go on without it
            try:
                await fn()
                return
            except (TelegramError, OSError) as exc:
                log.warning("%s failed (%s); retrying in %.0fs", what, type(exc).__name__, backoff)
                await self.sleep(backoff)
                backoff = min(backoff * 2, self.connect_backoff_cap)

    async def _set_commands(self) -> None:
        assert self.app is not None
        bot = self.app.bot
        await bot.set_my_commands(commands_for(self.config.lang))
        for lang in LANGS:
            await bot.set_my_commands(commands_for(lang), language_code=lang)

    async def stop(self) -> None:
        """Stop polling and handlers, let delivery finish what is in flight, close the app."""
        if self._connect_task is not None and not self._connect_task.done():
            self._connect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connect_task
        self._connect_task = None
        app = self.app
        if app is not None and app.updater is not None and app.updater.running:
            with contextlib.suppress(Exception):
                await app.updater.stop()
        if self.board is not None:
            await self.board.stop()
        if self.delivery is not None:
            await self.delivery.stop()
        self.sender.close()  # replies still waiting for Telegram end now (the bot stops)
        if app is not None:
            if app.running:
                with contextlib.suppress(Exception):
                    await app.stop()
            with contextlib.suppress(Exception):
                await app.shutdown()
