"""The agent desk's own costs at the design scale: 100,000 ONTs over 4 agents.

    .venv/bin/python bench/desk_bench.py [--onts 100000] [--agents 4] [--reports 60]

A real Engine on a SQLite file in a temporary folder, the real agents table, the real
AgentDesk; nothing is probed (the ONTs' addresses are only inventory text). Measures: the
pure assignment of every ONT, the desk's start (the plan on a thread), one full report of
one agent, a steady report (one agent's "still the same" refresh slice of an interval:
targets / (refresh_s / interval)), check(), and the re-plan after one ONT moved and after
1,000 were added (only the changed ONTs are assigned again).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.agents import AgentDesk, AgentReport, assign
from monitor.engine import Engine
from monitor.model import Ont, Thresholds
from monitor.ports import StaticRouter
from storage.agents import Agents
from storage.database import Database
from storage.store import SqliteStore


def utcnow() -> datetime:
    return datetime.now(UTC)


async def timed(step: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = await step()
    return time.perf_counter() - started, value


def inventory(n: int, agents: int) -> list[Ont]:
    """n ONTs; agent k's prefix 10.k.0.0/16 holds every agents-th of them."""
    return [
        Ont(id=str(i), area=f"A{i % 400}", ip=f"10.{i % agents}.{(i // 256) % 256}.{i % 256}")
        for i in range(n)
    ]


def report(seq: int, version: str, obs: list[tuple[str, datetime, int]], full: bool) -> AgentReport:
    return AgentReport("bench", seq, utcnow(), 5.0, version, full, None, 0, None, 0, obs)


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database(Path(tmp) / "desk.db").open()
        engine = Engine(
            SqliteStore(db), clock=utcnow, thresholds=Thresholds(), router=StaticRouter(())
        )
        await engine.start()
        onts = inventory(args.onts, args.agents)
        for start in range(0, len(onts), 5000):
            await engine.upsert(onts[start : start + 5000])
        table = Agents(db)
        for k in range(args.agents):
            await table.add(f"POP-{k}", [], [f"10.{k}.0.0/16"], utcnow())
        configs = [r.config for r in await table.all()]

        started = time.perf_counter()
        owners = assign(engine.onts, configs)
        print(f"assign {len(owners):,} ONTs: {time.perf_counter() - started:.3f} s")
        desk = AgentDesk(table, engine, utcnow)
        took, _ = await timed(desk.start)
        print(f"desk start (plan on a thread): {took:.3f} s")

        mine = await desk.assignment("POP-0")
        ids = [ont_id for ont_id, _ in mine.targets]
        now = utcnow()
        took, answer = await timed(
            lambda: desk.report("POP-0", report(1, mine.version, [(i, now, 0) for i in ids], True))
        )
        print(f"full report of {len(ids):,}: {took:.3f} s, accepted {answer.accepted:,}")

        per_report = max(1, round(len(ids) / (mine.refresh_s / 5.0)))
        times = []
        for seq in range(2, args.reports + 2):
            at = utcnow()
            start = (seq * per_report) % len(ids)
            part = [(i, at, 0) for i in ids[start : start + per_report]]
            steady = report(seq, mine.version, part, False)
            began = time.perf_counter()
            await desk.report("POP-0", steady)
            times.append(time.perf_counter() - began)
        print(
            f"steady report of {per_report} observations: median "
            f"{statistics.median(times) * 1000:.2f} ms, max {max(times) * 1000:.2f} ms "
            f"({args.reports} reports)"
        )
        took, _ = await timed(desk.check)
        print(f"check(): {took * 1000:.2f} ms")

        await engine.upsert([Ont(id="1", area="A1", ip="10.2.9.9")])  # POP-1's to POP-2's
        took, _ = await timed(desk.refresh)
        print(f"re-plan after one ONT moved: {took * 1000:.1f} ms")
        await engine.upsert(inventory(args.onts + 1000, args.agents)[args.onts :])
        took, _ = await timed(desk.refresh)
        print(f"re-plan after 1,000 ONTs were added: {took * 1000:.1f} ms")
        await desk.stop()
        await engine.stop()
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onts", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--reports", type=int, default=60)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
