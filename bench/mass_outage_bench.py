"""Mass outage: 500 ONTs of one area go OFF; how many messages reach the alert group, how fast.

Runs the real engine (SQLite in a temp dir), the real bot runtime (PTB) and the fake Bot API on
127.0.0.1 with flood limits on. Meanwhile technicians send commands (each of --techs private
chats a command every 1.5 s, and one /status in the alert group when the digest is due).
Targets: at most 3 alert messages within 10 s; every command answered; the group's /status
within 5 s. The pinned status message (on by default) is counted apart from the alerts.

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
TECHS = (6001, 6002, 6003)  # technicians' private chats
COMMANDS = ("/status", "/offline", "/ont 7", "/help")
LIMIT_S = 30.0  # the bench gives up after this long, whatever happens
SINGLE = Ont(id="kidul-1", name="Kidul RT 1", area="Kidul", ip="127.0.9.1")  # its own area


async def technicians(
    fake: FakeBotApi, techs: tuple[int, ...], until: float
) -> list[tuple[int, float]]:
    """Each technician sends a command every 1.5 s until `until` (bounded); (chat, sent at)."""
    sent: list[tuple[int, float]] = []
    for k in range(200):
        if time.monotonic() >= until:
            break
        for chat in techs:
            fake.push_message(chat, COMMANDS[k % len(COMMANDS)])
            sent.append((chat, time.monotonic()))
        await asyncio.sleep(1.5)
    return sent


async def ask_group(fake: FakeBotApi, at: float) -> float:
    """/status in the alert group when the outage digest is due to go out; when it was asked."""
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    fake.push_message(GROUP, "/status")
    return time.monotonic()


def latencies(fake: FakeBotApi, sent: list[tuple[int, float]]) -> list[float]:
    """Per chat, the n-th answer answers the n-th command (one answer each, in order)."""
    out = []
    for chat in {c for c, _ in sent}:
        asked = [at for c, at in sent if c == chat]
        answered = [c.time for c in fake.messages_to(chat)]
        out += [b - a for a, b in zip(asked, answered, strict=False)]
    return out


async def single_incident(
    engine: Engine, runtime: BotRuntime, fake: FakeBotApi
) -> tuple[int, int, int]:
    """One ONT goes silent as probing reports it: warning, critical 10 s later, then back.

    Returns (new messages, edits, replies) the alert group got for it: one thread is 2, 1, 1.
    """
    before_sent = len(fake.messages_to(GROUP))
    before_edits = len(fake.edits_to(GROUP))
    for rto, wait in ((1, 2.0), (2, 5.0), (3, 5.0)):  # the rto count a sweep every 5 s gives
        obs = Observation.push(SINGLE.id, Status.OFF, rto, datetime.now(UTC), source=Source.PROBE)
        await engine.ingest(obs)
        await asyncio.sleep(wait)
    await runtime.sink.idle(LIMIT_S)
    await engine.ingest(
        Observation.push(SINGLE.id, Status.ON, 0, datetime.now(UTC), source=Source.PROBE)
    )
    await asyncio.sleep(0.5)
    await runtime.sink.idle(LIMIT_S)
    new = [c for c in fake.messages_to(GROUP)[before_sent:] if not (c.text or "").startswith("📌")]
    edits = fake.edits_to(GROUP)[before_edits:]
    edits = [e for e in edits if not (e.text or "").startswith("📌")]
    replies = [c for c in new if isinstance(c.result, dict) and "reply_to_message" in c.result]
    return len(new), len(edits), len(replies)


async def run(n: int, group_wait: float, batches: int, techs: tuple[int, ...] = TECHS) -> int:
    """One outage; prints the figures; exit status 0 when within the target."""
    async with FakeBotApi() as fake:
        fake.enable_flood()
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                db=Path(tmp) / "bench.db",
                telegram_bot_token="123456:BENCH",
                telegram_api_url=fake.url,
                alert_chats=(GROUP,),
                allowed_chats=(GROUP, *techs),
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
            ] + [SINGLE]
            now = datetime.now(UTC)
            await engine.upsert(
                onts,
                [Observation.push(o.id, Status.ON, 0, now, source=Source.IMPORT) for o in onts],
            )
            await runtime.start(engine)
            await asyncio.wait_for(runtime.connected.wait(), 10)

            started = time.monotonic()
            crowd = asyncio.create_task(technicians(fake, techs, started + 8.0))
            asking = asyncio.create_task(ask_group(fake, started + group_wait))
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
            asked = await crowd
            group_asked = await asking
            ok = await runtime.sink.idle(LIMIT_S)
            # Anything the engine folds or delays late would still show in the outbox.
            await asyncio.sleep(max(0.5, group_wait + 0.5))
            ok = ok and await runtime.sink.idle(LIMIT_S)
            await fake.wait_for_count(lambda c: c.chat_id in techs, len(asked), timeout=LIMIT_S)
            everything = fake.messages_to(GROUP)
            board = [c for c in everything if (c.text or "").startswith("📌")]
            group_reply = [
                c for c in everything if c not in board and "Status jaringan" in (c.text or "")
            ]
            messages = [c for c in everything if c not in board and c not in group_reply]
            lat = sorted(latencies(fake, asked))
            answered = sum(len(fake.messages_to(chat)) for chat in techs)
            last = max((c.time for c in messages), default=started)
            elapsed = last - started
            thread = await single_incident(engine, runtime, fake)
            board_edits = sum((c.text or "").startswith("📌") for c in fake.edits_to(GROUP))
            counts = await OutboxStore(db).counts()
            await runtime.stop()
            await engine.stop()
            await db.close()
    chars = sum(len(c.text or "") for c in messages)
    print(f"mass outage of {n} ONTs in one area, group_wait {group_wait}s, flood limits on")
    print(f"  ingested in {ingested:.2f}s ({batches} batches)")
    print(f"  alert messages to the alert group: {len(messages)} ({chars} chars)")
    print(f"  pinned status message: {len(board)} created, {board_edits} edits")
    group_s = group_reply[0].time - group_asked if group_reply and group_asked else None
    print(
        f"  /status in the alert group answered in: {group_s:.2f}s"
        if group_s
        else "  /status in the alert group: NOT answered"
    )
    p50 = lat[len(lat) // 2] if lat else float("nan")
    worst = lat[-1] if lat else float("nan")
    print(
        f"  technicians: {len(asked)} commands from {len(techs)} chats, {answered} answers; "
        f"reply latency p50 {p50:.2f}s, max {worst:.2f}s"
    )
    print(f"  last message {elapsed:.2f}s after the first OFF")
    print(f"  outbox rows by state: {counts}")
    print(
        "  one ONT silenced (warning, critical 10 s later, recovery): "
        f"{thread[0]} messages, {thread[1]} edit, {thread[2]} reply"
    )
    print(f"  429 violations: {len(fake.violations)}; drained: {ok}")
    for c in messages:
        first = (c.visible_text or "").split("\n", 1)[0]
        print(f"    - {first[:100]}")
    good = (
        ok
        and len(messages) <= 3
        and elapsed <= 10.0
        and not fake.violations
        and answered == len(asked)
        and group_s is not None
        and group_s <= 5.0
        and thread == (2, 1, 1)
    )
    verdict = (
        "PASS (<= 3 alert messages within 10 s, every command answered, group /status <= 5 s, "
        "one thread for one incident)"
    )
    print("RESULT:", verdict if good else "FAIL")
    return 0 if good else 1


def main() -> int:
    """Parse arguments and run."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--onts", type=int, default=500)
    p.add_argument("--group-wait", type=float, default=3.0)
    p.add_argument("--batches", type=int, default=5)
    p.add_argument("--techs", type=int, default=len(TECHS), help="technicians sending commands")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    techs = tuple(6001 + i for i in range(max(0, args.techs)))
    return asyncio.run(run(args.onts, args.group_wait, args.batches, techs))


if __name__ == "__main__":
    sys.exit(main())
