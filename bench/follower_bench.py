"""What a standby's follower costs the event loop: one reload of N ONTs, SQLite and PostgreSQL.

Usage: .venv/bin/python bench/follower_bench.py [--onts 10000] [--backends sqlite,postgresql]
       [--repeat 5]

A real leader Engine writes N ONTs (1 in 7 OFF, so incidents are stored) into a SQLite file
or a PostgreSQL server of its own (tests/pg.py: initdb in /tmp, a free loopback port); a
standby engine on connections of its own is followed by monitor.follower.Follower. For each
case it times `Follower.reload()`: wall time, the event loop thread's CPU time (what the loop
could not spend on pages and pushes meanwhile; the rest runs on worker threads), and, in a
second run of the same case, the longest stall a 1 ms ticker saw on the loop. Cases: the first load (start), nothing changed,
1% of the states changed, every state changed. Medians of --repeat runs. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from monitor.engine import Engine
from monitor.follower import Follower
from monitor.model import Observation, Ont, Status
from storage.database import Database
from storage.follow import FollowReads
from storage.store import SqliteStore
from tests import pg as test_pg


class Stalls:
    """The longest gap between the ticks of a 1 ms sleeper on the loop."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(0.001)
            now = loop.time()
            self.worst = max(self.worst, now - last - 0.001)
            last = now

    def __enter__(self) -> Stalls:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def timed(run: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """(wall ms, loop-thread CPU ms) of one awaited call, nothing else running on the loop."""
    await asyncio.sleep(0.01)
    t0, c0 = time.perf_counter(), time.thread_time()
    await run()
    return (time.perf_counter() - t0) * 1000, (time.thread_time() - c0) * 1000


async def stalled(run: Callable[[], Awaitable[Any]]) -> float:
    """The worst loop stall (ms) a 1 ms ticker saw during one awaited call (a separate run:
    the ticker's own work would count as the loop's CPU)."""
    await asyncio.sleep(0.01)
    with Stalls() as stalls:
        await asyncio.sleep(0.005)
        await run()
        await asyncio.sleep(0.005)
    return stalls.worst * 1000


async def fill(leader: Engine, n: int) -> None:
    now = datetime.now(UTC)
    onts = [
        Ont(id=str(i), name=f"RT {i}", area=f"A{i % 50}", ip=f"127.1.{i // 250}.{i % 250}")
        for i in range(1, n + 1)
    ]
    await leader.upsert(onts)
    await leader.ingest_many(
        [
            Observation.push(str(i), Status.OFF if i % 7 == 0 else Status.ON, i % 2, now)
            for i in range(1, n + 1)
        ]
    )


async def flip(leader: Engine, ids: list[str]) -> None:
    now = datetime.now(UTC)
    obs = []
    for i in ids:
        old = leader.states[i].status
        obs.append(Observation.push(i, Status.ON if old is Status.OFF else Status.OFF, 0, now))
    await leader.ingest_many(obs)


async def bench(open_db: Callable[[], Awaitable[Any]], n: int, repeat: int) -> dict[str, list]:
    leader_db, standby_db = await open_db(), await open_db()
    clock = lambda: datetime.now(UTC)  # noqa: E731
    leader = Engine(SqliteStore(leader_db), clock=clock)
    await leader.start()
    await fill(leader, n)
    results: dict[str, list[tuple[float, float, float]]] = {}
    ids = list(leader.onts)
    followers: list[Follower] = []

    async def case(
        name: str, prepare: Callable[[], Awaitable[Any]], run: Callable[[], Awaitable[Any]]
    ) -> None:
        await prepare()
        wall, cpu = await timed(run)
        await prepare()
        results.setdefault(name, []).append((wall, cpu, await stalled(run)))

    async def cold() -> None:  # a new standby: nothing decoded yet
        reads = FollowReads(standby_db)
        followers.append(Follower(Engine(SqliteStore(standby_db), clock=clock), reads, reads))

    async def first_load() -> None:
        await followers[-1].start()
        await followers[-1].stop()  # reloads below are called by hand

    async def reload() -> None:
        await followers[-1].reload()

    async def nothing() -> None:
        return None

    try:
        for _ in range(repeat):
            await case("start (first load)", cold, first_load)
            await case("nothing changed", nothing, reload)
            await case("1% changed", lambda: flip(leader, ids[::100]), reload)
            await case("all changed", lambda: flip(leader, ids), reload)
    finally:
        await leader.stop()
        await standby_db.close()
        await leader_db.close()
    return results


def report(name: str, n: int, results: dict[str, list[tuple[float, float, float]]]) -> None:
    print(f"\n{name}, {n} ONTs (medians):")
    print(f"  {'case':<20} {'wall ms':>9} {'loop CPU ms':>12} {'worst stall ms':>15}")
    for case, runs in results.items():
        wall, cpu, stall = (statistics.median(r[k] for r in runs) for k in range(3))
        print(f"  {case:<20} {wall:>9.1f} {cpu:>12.1f} {stall:>15.1f}")


async def main_async(args: argparse.Namespace) -> None:
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="follower-bench-"))
    if "sqlite" in backends:
        path = tmp / "bench.db"
        results = await bench(lambda: Database(path).open(), args.onts, args.repeat)
        report("SQLite", args.onts, results)
    if "postgresql" in backends:
        from storage.pg import PgDatabase

        bindir = test_pg.find_bindir()
        assert bindir is not None, "PostgreSQL is not installed"
        server = test_pg.PgServer(bindir, fsync=True).start()
        try:
            url = server.url(server.create_database(server.migrated_template()))
            results = await bench(lambda: PgDatabase(url).open(), args.onts, args.repeat)
            report("PostgreSQL", args.onts, results)
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onts", type=int, default=10_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(
        f"machine: {platform.node()} {os.cpu_count()} cores, {platform.platform()}, "
        f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f}"
    )
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
