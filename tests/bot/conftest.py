"""A real bot (PTB) against the fake Bot API, on a real SQLite engine, with a manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.runtime import BotRuntime
from monitor.engine import Engine
from monitor.model import Observation, Ont, Source, Status
from ontwatch.service import bot_config, bot_stores
from ontwatch.settings import Settings
from storage.database import Database
from storage.queries import Queries
from storage.store import SqliteStore
from tests.conftest import ManualClock
from tests.fakes.bot_api import FakeBotApi

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

TOKEN = "123456:TEST-token-abcdef"
USER = 5001  # an allowed private chat
GROUP = -1001234  # the alert group
STRANGER = 7777


class VirtualTime:
    """Monotonic time that jumps forward when delivery sleeps, so backoffs take no real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0.001)  # let the loop (and the fake server) run


@dataclass
class Harness:
    """The running pieces of one test."""

    fake: FakeBotApi
    runtime: BotRuntime
    engine: Engine
    db: Database
    reads: Queries
    clock: ManualClock
    settings: Settings

    async def push(self, ont_id: str, status: Status, rto: int) -> None:
        """One simulated status push through the engine."""
        obs = Observation.push(ont_id, status, rto, self.clock(), source=Source.SIMULATE)
        await self.engine.ingest(obs)

    async def command(self, text: str, chat: int = USER, **kw: Any) -> Any:
        """Push a message and wait for the bot's next new message (or edit) to that chat."""
        before = len(self.fake.sent)
        self.fake.push_message(chat, text, **kw)
        return (
            await self.fake.wait_for_count(
                lambda c: c.chat_id == chat and c.method.lower() != "answercallbackquery",
                count=len(
                    [
                        c
                        for c in self.fake.sent[:before]
                        if c.chat_id == chat and c.method.lower() != "answercallbackquery"
                    ]
                )
                + 1,
                timeout=10,
            )
        )[-1]


def settings_for(fake: FakeBotApi, tmp_path: Path, **over: Any) -> Settings:
    """Settings of a bot on the fake, loopback only (tiles from a closed loopback port)."""
    values: dict[str, Any] = {
        "db": tmp_path / "ontwatch.db",
        "telegram_bot_token": TOKEN,
        "telegram_api_url": fake.url,
        "alert_chats": (GROUP,),
        "allowed_chats": (USER,),
        "group_wait": 0,
        "status_message": False,  # tests of the pinned status message turn it on
        "lang": "en",
        "tile_url": "http://127.0.0.1:9/{z}/{x}/{y}.png",
    }
    values.update(over)
    return Settings(**values)


def inventory() -> list[Ont]:
    """A few ONTs in two areas, one with a name full of HTML specials and a very long id."""
    return [
        Ont(id="1", name="Baciro RT 1", area="Baciro", ip="127.0.1.1", lat=-7.7900, lon=110.3800),
        Ont(id="2", name="Baciro RT 2", area="Baciro", ip="127.0.1.2", lat=-7.7910, lon=110.3810),
        Ont(
            id="3",
            name='Pos <RT 01> & "RW" 02',
            area="Kota Baru",
            ip="127.0.1.3",
            lat=-7.7800,
            lon=110.3700,
            location="Jl. <b>Mawar</b> & co",
        ),
        Ont(id="X" * 80, name="Long id ONT", area="Kota Baru", ip="127.0.1.4"),
    ]


Start = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def start_bot(tmp_path: Path) -> AsyncIterator[Start]:
    """Start fake + database + engine + bot runtime; everything is stopped after the test."""
    stack: list[Callable[[], Awaitable[None]]] = []

    async def start(
        *,
        fake: FakeBotApi | None = None,
        onts: list[Ont] | None = None,
        clock: ManualClock | None = None,
        wait_connected: bool = True,
        **over: Any,
    ) -> Harness:
        if fake is None:
            fake = await FakeBotApi().start()
            stack.append(fake.stop)
        kw = {k: over.pop(k) for k in ("monotonic", "sleep", "renderer") if k in over}
        settings = settings_for(fake, tmp_path, **over)
        clock = clock or ManualClock()
        db = await Database(settings.db).open()
        stack.append(db.close)
        reads = Queries(db)
        runtime = BotRuntime(bot_config(settings), bot_stores(db), reads, clock=clock, **kw)
        router = await runtime.load()
        engine = Engine(
            SqliteStore(db),
            clock=clock,
            thresholds=settings.thresholds,
            router=router,
            sinks=[runtime.sink],
        )
        await engine.start()
        stack.append(engine.stop)
        if onts is None:
            onts = inventory()
        if onts:
            base = [
                Observation.push(o.id, Status.ON, 0, clock(), source=Source.IMPORT) for o in onts
            ]
            await engine.upsert(onts, base)
        await runtime.start(engine)
        stack.append(runtime.stop)
        if wait_connected:
            await asyncio.wait_for(runtime.connected.wait(), 10)
        return Harness(fake, runtime, engine, db, reads, clock, settings)

    yield start
    for stop in reversed(stack):
        await stop()
