"""Telegram unreachable (502, then hanging connections) for minutes while ONTs keep changing."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC
from itertools import pairwise
from pathlib import Path

import pytest
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.delivery import Delivery
from monitor.engine import Engine
from monitor.model import Observation, Ont, Source, Status, Thresholds
from monitor.ports import StaticRouter
from storage.database import Database
from storage.outbox import OutboxStore
from storage.store import SqliteStore
from tests.conftest import ManualClock
from tests.e2e.harness import figure
from tests.fakes.bot_api import FakeBotApi

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]
TOKEN = "123456:TEST-TOKEN-abcdef"
CHATS = (-100777, -100888)
SCALE = 100.0  # virtual seconds per real second: four minutes of outage take 2.4 s
PHASE_S = 120.0  # virtual seconds of 502s, then as long of hanging connections


class ScaledTime:
    """A monotonic clock running SCALE times faster than the loop's, and its sleep."""

    def __init__(self) -> None:
        self.start = asyncio.get_running_loop().time()

    def __call__(self) -> float:
        return 1000.0 + (asyncio.get_running_loop().time() - self.start) * SCALE

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / SCALE)


def onts() -> list[Ont]:
    """Twelve ONTs in their own areas (no mass outage folds them), with unambiguous names."""
    return [
        Ont(id=str(i), name=f"Rumah-{i:02d}", area=f"Area {i}", ip=f"127.0.3.{i}")
        for i in range(1, 13)
    ]


async def test_telegram_down_for_minutes_every_alert_once_in_order(tmp_path: Path) -> None:
    """After 2 min of 502 and 2 min of hangs (virtual), every alert arrives once, in order."""
    vt = ScaledTime()
    clock = ManualClock()
    async with FakeBotApi() as fake:
        db = await Database(tmp_path / "ontwatch.db").open()
        request = HTTPXRequest(
            connect_timeout=1.0, read_timeout=0.3, write_timeout=0.3, pool_timeout=1.0
        )
        bot = Bot(
            TOKEN, base_url=f"{fake.url}/bot", base_file_url=f"{fake.url}/file/bot", request=request
        )
        await bot.initialize()
        engine: Engine | None = None
        delivery = Delivery(
            OutboxStore(db),
            bot,
            lang_for=lambda chat: "en",
            tz=UTC,
            lookup=lambda i: engine.onts.get(i) if engine else None,
            group_wait=3.0,
            clock=vt,
            sleep=vt.sleep,
        )
        engine = Engine(
            SqliteStore(db),
            clock=clock,
            thresholds=Thresholds(),
            router=StaticRouter(CHATS),
            sinks=[delivery],
        )
        await engine.start()
        try:
            inventory = onts()
            await engine.upsert(
                inventory,
                [
                    Observation.push(o.id, Status.ON, 0, clock(), source=Source.IMPORT)
                    for o in inventory
                ],
            )
            delivery.ready.set()
            delivery.start()
            fake.fail_with_status(502)
            t0 = vt()
            phase, pushes, during = "502", 0, Counter()
            down = {o.id: False for o in inventory}
            for step in range(2000):  # bounded: ends after 2 x PHASE_S virtual seconds (~2.4 s)
                elapsed = vt() - t0
                if phase == "502" and elapsed >= PHASE_S:
                    fake.clear_faults()
                    fake.hang()
                    phase = "hang"
                elif phase == "hang" and elapsed >= 2 * PHASE_S:
                    break
                ont = inventory[step % len(inventory)].id
                down[ont] = not down[ont]
                status = Status.OFF if down[ont] else Status.ON
                await engine.ingest(
                    Observation.push(
                        ont, status, 1 if down[ont] else 0, clock(), source=Source.PUSH
                    )
                )
                pushes += 1
                during[phase] += 1
                clock.advance(minutes=1)  # one change per ONT every 12 min: no flapping
                await asyncio.sleep(0.02)
            assert phase == "hang", "the outage phases did not run"
            stats = fake.state()
            fake.clear_faults()
            assert await delivery.idle(60)
            outbox = OutboxStore(db)
            rows = await outbox.rows()
            notes = dict(await db.fetchall("SELECT id, ont_id FROM notifications"))
            lost = dups = disorder = 0
            for chat in CHATS:
                mine = [r for r in rows if r["chat_id"] == chat]
                messages = {c.message_id: c.visible_text or "" for c in fake.messages_to(chat)}
                lost += sum(
                    1
                    for r in mine
                    if r["state"] != "sent"
                    or r["message_id"] not in messages
                    or f"Rumah-{int(notes[r['notification_id']]):02d}"
                    not in messages[r["message_id"]]
                )
                referenced = {r["message_id"] for r in mine}
                dups += sum(1 for m in messages if m not in referenced)
                ids = [r["message_id"] for r in mine]
                disorder += sum(
                    1 for a, b in pairwise(ids) if b is not None and a is not None and b < a
                )
            failures = [r for r in fake.requests if r.status >= 500]
            figure(
                "FAULT telegram-down",
                virtual_minutes=f"{(vt() - t0) / 60:.1f}",
                pushes=pushes,
                pushes_during_502=during["502"],
                pushes_during_hang=during["hang"],
                alerts=len(rows),
                http_5xx=len(failures),
                hung_requests=stats["hung_requests"],
                max_attempts=max(r["attempts"] for r in rows),
                lost=lost,
                duplicates=dups,
                out_of_order=disorder,
            )
            print(f"lost alerts: {lost}, duplicates: {dups}")
            assert during["502"] >= 20 and during["hang"] >= 20
            assert failures and stats["hung_requests"] > 0
            assert len(rows) == len(notes) * len(CHATS) and len(rows) >= 80
            assert lost == 0 and dups == 0 and disorder == 0
        finally:
            await delivery.stop(grace=1.0)
            await engine.stop()
            await bot.shutdown()
            await db.close()
