"""Duplicates and losses of outbox delivery when its process is killed (kill -9) mid-send.

Usage: .venv/bin/python bench/outbox_takeover_bench.py [--kills 8] [--onts 40] [--every 0.1]
       [--backend both|sqlite|postgresql] [--when first|random]

Issue 14 promises: every alert delivered at least once, at most one duplicate per takeover.
This measures it with real processes: the parent runs the fake Bot API
(tests/fakes/bot_api.py) and an engine writing one alert per ONT (one ONT OFF every --every seconds,
routed to two alert groups), and starts delivery processes one after the other; each is
killed with SIGKILL the moment the fake has received its first message, so the kill lands
between Telegram's answer and the database's mark (or just after it): the worst case, every
kill finds a message in flight (`--when random`: 0-2 s after the process began delivering).
The next process runs under the next epoch (PostgreSQL: a new leader; SQLite: epoch 0, a restart) and first counts
the rows an earlier run claimed and never marked sent (in flight). A last process delivers
the rest. Then every alert's copies at the fake are counted (per group, by ONT name).

PostgreSQL: a server of its own (tests/pg.py: initdb in /tmp, a free loopback port, fsync
on, as the `postgres` user when run as root). Bounded: every wait has a limit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHATS = (-100777, -100888)
CHILD_SECONDS = 120.0  # a delivery process ends itself after this long, killed or not


# -- the delivery process -------------------------------------------------------------------


async def child(target: str, api: str, token: str, epoch: int) -> None:
    """One delivery 'instance': counts what an earlier run left in flight, then delivers."""
    from telegram import Bot

    from bot.delivery import Delivery
    from storage.database import open_database
    from storage.outbox import OutboxStore

    db = await open_database(target).open()
    bot = Bot(token, base_url=f"{api}/bot", base_file_url=f"{api}/file/bot")
    await bot.initialize()
    outbox = OutboxStore(db)
    print("IN_FLIGHT", len(await outbox.in_flight(epoch)), flush=True)
    delivery = Delivery(
        outbox,
        bot,
        lang_for=lambda chat: "en",
        tz=UTC,
        lookup=lambda ont_id: None,
        group_wait=0.0,
        poll_interval=0.2,
        epoch=epoch,
    )
    delivery.ready.set()
    delivery.start()
    print("STARTED", flush=True)
    try:
        await asyncio.sleep(CHILD_SECONDS)
    finally:
        await delivery.stop(grace=1.0)
        await bot.shutdown()
        await db.close()


# -- the parent -----------------------------------------------------------------------------


class Clock:
    """The engine's clock: moves 3 minutes per alert, so no two OFFs make a mass outage."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def names(onts: int) -> list[str]:
    return [f"Rumah-{i:03d}" for i in range(1, onts + 1)]


async def feed(engine: Any, clock: Clock, onts: int, every: float) -> None:
    """One ONT OFF every `every` seconds: one warning per ONT and alert group."""
    from monitor.model import Observation, Source, Status

    for i in range(1, onts + 1):
        clock.now += timedelta(minutes=3)
        await engine.ingest(Observation.push(str(i), Status.OFF, 1, clock(), source=Source.PUSH))
        await asyncio.sleep(every)


def spawn(target: str, api: str, token: str, epoch: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, __file__, "--child", target, api, token, str(epoch)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


async def first_message(fake: Any, token: str, limit: float = 30.0) -> bool:
    """Wait (bounded) until the fake has a message sent with this token."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if any(c.token == token and c.method.lower() == "sendmessage" for c in fake.sent):
            return True
        await asyncio.sleep(0.001)
    return False


def in_flight(proc: subprocess.Popen[str]) -> int:
    """The IN_FLIGHT count the process printed first."""
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    return int(line[1]) if line[:1] == ["IN_FLIGHT"] else -1


async def pending(db: Any) -> int:
    from storage.outbox import OutboxStore

    return (await OutboxStore(db).counts()).get("pending", 0)


async def measure(
    backend: str, target: str, kills: int, onts: int, when: str, every: float
) -> dict[str, Any]:
    """Run the kills on one database; the figures."""
    from monitor.engine import Engine
    from monitor.model import Observation, Ont, Source, Status, Thresholds
    from monitor.ports import StaticRouter
    from storage.database import open_database
    from storage.outbox import OutboxStore
    from storage.store import SqliteStore
    from tests.fakes.bot_api import FakeBotApi

    clock = Clock()
    db = await open_database(target).open()
    engine = Engine(
        SqliteStore(db), clock=clock, thresholds=Thresholds(), router=StaticRouter(CHATS)
    )
    await engine.start()
    inventory = [
        Ont(id=str(i), name=n, area=f"Area {i}", ip=f"127.0.5.{i}")
        for i, n in enumerate(names(onts), 1)
    ]
    await engine.upsert(
        inventory,
        [Observation.push(o.id, Status.ON, 0, clock(), source=Source.IMPORT) for o in inventory],
    )
    resent: list[int] = []
    rng = random.Random(14)
    try:
        async with FakeBotApi() as fake:
            feeder = asyncio.create_task(feed(engine, clock, onts, every))
            for k in range(1, kills + 1):
                epoch = k if backend == "postgresql" else 0
                token = f"{100000 + k}:BENCH-token"
                proc = spawn(target, fake.url, token, epoch)
                resent.append(await asyncio.wait_for(asyncio.to_thread(in_flight, proc), 30))
                if when == "first":
                    if await first_message(fake, token):
                        os.kill(proc.pid, signal.SIGKILL)
                else:  # a kill at any moment of the process's first seconds of work
                    await asyncio.sleep(rng.uniform(0.0, 2.0))
                    os.kill(proc.pid, signal.SIGKILL)
                proc.kill()
                proc.wait(timeout=30)
            await asyncio.wait_for(feeder, 60)
            epoch = kills + 1 if backend == "postgresql" else 0
            last = spawn(target, fake.url, "100999:BENCH-token", epoch)
            resent.append(await asyncio.wait_for(asyncio.to_thread(in_flight, last), 30))
            for _ in range(450):  # bounded: 90 s
                if not await pending(db):
                    break
                await asyncio.sleep(0.2)
            last.send_signal(signal.SIGTERM)
            last.wait(timeout=30)
            left = await pending(db)
            rows = sum((await OutboxStore(db).counts()).values())
            copies = [
                sum(n in (c.visible_text or "") for c in fake.messages_to(chat))
                for chat in CHATS
                for n in names(onts)
            ]
    finally:
        await engine.stop()
        await db.close()
    return {
        "backend": backend,
        "alerts": len(copies),
        "outbox_rows": rows,
        "kills": kills,
        "kill_at": when,
        "alert_every_s": every,
        "lost": sum(1 for n in copies if n == 0),
        "pending_left": left,
        "duplicates": sum(max(0, n - 1) for n in copies),
        "most_copies_of_one_alert": max(copies),
        "in_flight_found_by_each_next_run": resent[1:],
    }


def targets(choice: str, tmp: Path) -> tuple[list[tuple[str, str]], Any]:
    """(backend, ONTWATCH_DB) pairs to run, and the PostgreSQL server to stop (or None)."""
    out: list[tuple[str, str]] = []
    server = None
    if choice in ("both", "sqlite"):
        out.append(("sqlite", str(tmp / "ontwatch.db")))
    if choice in ("both", "postgresql"):
        from tests import pg as test_pg

        reason = test_pg.skip_reason()
        if reason:
            print(f"postgresql: not run ({reason})")
        else:
            bindir = test_pg.find_bindir()
            assert bindir is not None
            server = test_pg.PgServer(bindir, fsync=True).start()
            out.append(("postgresql", server.url(server.create_database())))
    return out, server


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        target, api, token, epoch = sys.argv[2:6]
        asyncio.run(child(target, api, token, int(epoch)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--onts", type=int, default=40)
    parser.add_argument("--every", type=float, default=0.1, help="seconds between two alerts")
    parser.add_argument("--backend", choices=("both", "sqlite", "postgresql"), default="both")
    parser.add_argument(
        "--when",
        choices=("first", "random"),
        default="first",
        help="first: kill the moment the fake has the process's first message (the worst "
        "case: that message is in flight); random: 0-2 s after the process started delivering",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ontwatch-outbox-bench-") as tmp:
        runs, server = targets(args.backend, Path(tmp))
        try:
            for backend, target in runs:
                figures = asyncio.run(
                    measure(backend, target, args.kills, args.onts, args.when, args.every)
                )
                print(" ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
