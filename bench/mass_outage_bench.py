"""Mass outage: 500 ONTs of one area go OFF; how many messages reach the alert group, how fast.

Runs the real engine (SQLite in a temp dir), the real bot runtime (PTB) and the fake Bot API on
127.0.0.1 with flood limits on. Target: at most 3 messages within 10 s.

    .venv/bin/python bench/mass_outage_bench.py [--onts 500] [--group-wait 3] [--batches 5]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.runtime import BotRuntime
from monitor.engine import Engine
from monitor.model import Observation, Ont, Source, Status
from ontwatch.service import bot_config, bot_stores
from ontwatch.settings import Settings
from storage.database import Database
from storage.outbox import OutboxStore
from storage.queries import Queries
from storage.store import SqliteStore
from tests.fakes.bot_api import FakeBotApi

GROUP = -1009001
LIMIT_S = 30.0  # the bench gives up after this long, whatever happens


async def run(n: int, group_wait: float, batches: int) -> int:
    """One outage; prints the figures; exit status 0 when within the target."""
    async with FakeBotApi() as fake:
        fake.enable_flood()
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                db=Path(tmp) / "bench.db",
                telegram_bot_token="123456:BENCH",
                telegram_api_url=fake.url,
                alert_chats=(GROUP,),
                group_wait=group_wait,
                tile_url="http://127.0.0.1:9/{z}/{x}/{y}.png",
            )
            db = await Database(settings.db).open()
            runtime = BotRuntime(
                bot_config(settings),
                bot_stores(db),
                Queries(db),
                clock=lambda: datetime.now(UTC),
            )
            router = await runtime.load()
            engine = Engine(
                SqliteStore(db),
                clock=lambda: datetime.now(UTC),
                thresholds=settings.thresholds,
                router=router,
                sinks=[runtime.sink],
            )
            await engine.start()
            onts = [
                Ont(
                    id=str(i),
                    name=f"Baciro RT {i}",
                    area="Baciro",
                    ip=f"127.0.{i // 250}.{i % 250 + 1}",
                )
                for i in range(1, n + 1)
            ]
            now = datetime.now(UTC)
            await engine.upsert(
                onts,
                [Observation.push(o.id, Status.ON, 0, now, source=Source.IMPORT) for o in onts],
            )
            await runtime.start(engine)
            await asyncio.wait_for(runtime.connected.wait(), 10)

            started = time.monotonic()
            per = max(1, n // batches)
            # As a probe sweep reports them: a few batches, a fraction of a second apart.
            for k in range(0, n, per):
                at = datetime.now(UTC)
                obs = [
                    Observation.push(o.id, Status.OFF, 0, at, source=Source.PROBE)
                    for o in onts[k : k + per]
                ]
                await engine.ingest_many(obs)
                await asyncio.sleep(0.2)
            ingested = time.monotonic() - started
            ok = await runtime.sink.idle(LIMIT_S)
            # Anything the engine folds or delays late would still show in the outbox.
            await asyncio.sleep(max(0.5, group_wait + 0.5))
            ok = ok and await runtime.sink.idle(LIMIT_S)
            messages = fake.messages_to(GROUP)
            last = max((c.time for c in messages), default=started)
            elapsed = last - started
            counts = await OutboxStore(db).counts()
            await runtime.stop()
            await engine.stop()
            await db.close()
    chars = sum(len(c.text or "") for c in messages)
    print(f"mass outage of {n} ONTs in one area, group_wait {group_wait}s, flood limits on")
    print(f"  ingested in {ingested:.2f}s ({batches} batches)")
    print(f"  messages to the alert group: {len(messages)} ({chars} chars)")
    print(f"  last message {elapsed:.2f}s after the first OFF")
    print(f"  outbox rows by state: {counts}")
    print(f"  429 violations: {len(fake.violations)}; drained: {ok}")
    for c in messages:
        first = (c.visible_text or "").split("\n", 1)[0]
        print(f"    - {first[:100]}")
    good = ok and len(messages) <= 3 and elapsed <= 10.0 and not fake.violations
    print("RESULT:", "PASS (<= 3 messages within 10 s)" if good else "FAIL")
    return 0 if good else 1


def main() -> int:
    """Parse arguments and run."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--onts", type=int, default=500)
    p.add_argument("--group-wait", type=float, default=3.0)
    p.add_argument("--batches", type=int, default=5)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    return asyncio.run(run(args.onts, args.group_wait, args.batches))


if __name__ == "__main__":
    sys.exit(main())
