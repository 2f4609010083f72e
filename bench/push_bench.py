"""Push throughput and latency of ontwatch vs a bare aiohttp+aiosqlite server, on loopback only.

Usage: .venv/bin/python bench/push_bench.py [--client auto|wrk|python] [--seconds 15]
       [--concurrency 100] [--onts 10000] [--requests 10000 (python client only)]
The load comes from `wrk` with bench/push_wrk.lua when wrk is installed (Debian package):
the Python client below caps even the bare server at about 1,450 requests/s on a 2-core VM,
so with it the figures describe the client, not the server. Without wrk it falls back to the
Python client and says so. The main mix is a poller's: 1 push in 20 reports a problem (OFF,
rto 1), the rest all-clear; the "storm" mix makes every push a change (incidents opening,
escalating, resolving, and mass outages in every area) to show the worst case. The bare
server (bench/bare_server.py) has the same durability contract: synchronous=FULL, COMMIT
before answering. Bounded: each load phase stops after --seconds seconds (and, for the
Python client, after --requests requests).

PostgreSQL (issue 14): in the same run, the same single-push load goes to ontwatch on a
PostgreSQL server of its own (tests/pg.py: initdb in /tmp, a free loopback port, fsync on,
as the `postgres` user when run as root), and the rate is printed next to SQLite's with the
ratio (target >= 0.5). `--postgresql off` leaves it out; `auto` (default) runs it when the
server binaries and psycopg are installed and says why not otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import wrk_run
from tests import pg as test_pg
from tests.process import ServiceProcess, free_port, service_env

HERE = Path(__file__).resolve().parent


async def load(
    base: str,
    n_onts: int,
    requests: int,
    concurrency: int,
    seconds: float,
    storm: bool = False,
    prefix: str = "",
) -> dict:
    """Single pushes from `concurrency` connections; returns rate and latency percentiles."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))
    deadline = time.monotonic() + seconds
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def worker() -> None:
            nonlocal errors
            for i in counter:
                if time.monotonic() > deadline:
                    return
                ont = i % n_onts + 1
                if storm:  # every push a change: incidents open, escalate, resolve all the time
                    body = {"status": "OFF" if i % 7 == 0 else "ON", "rto_count": i % 4}
                else:  # a poller's day: 1 push in 20 reports a problem, the rest all-clear
                    bad = i % 20 == 0
                    body = {"status": "OFF" if bad else "ON", "rto_count": 1 if bad else 0}
                t0 = time.perf_counter()
                async with session.post(f"{base}/api/ont-status/{prefix}{ont}", json=body) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "rate": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
    }


async def bulk(base: str, n_onts: int) -> float:
    """One POST /api/ont-status with an update for every ONT; seconds until answered."""
    body = [{"id": str(i), "status": "OFF", "rto_count": 1} for i in range(1, n_onts + 1)]
    async with aiohttp.ClientSession() as session:
        t0 = time.perf_counter()
        async with session.post(f"{base}/api/ont-status", json=body) as r:
            result = await r.json()
        elapsed = time.perf_counter() - t0
    assert r.status == 200 and result["applied"] == n_onts, result
    return elapsed


def inventory(n: int) -> bytes:
    """n ONTs with loopback IPs in 20 areas."""
    return json.dumps(
        [
            {
                "id": i,
                "name": f"Area{i % 20} ONT {i}",
                "ip": f"127.20.{i // 250}.{i % 250 + 1}",
                "latitude": -7.8,
                "longitude": 110.4,
            }
            for i in range(1, n + 1)
        ]
    ).encode()


def drive(base: str, args: argparse.Namespace, mix: str = "poller") -> dict:
    """One bounded load phase with the chosen client."""
    if args.client == "wrk":
        return wrk_run.run(
            base, onts=args.onts, seconds=args.seconds, connections=args.concurrency, mix=mix
        )
    return asyncio.run(
        load(base, args.onts, args.requests, args.concurrency, args.seconds, storm=mix == "storm")
    )


def wait_http(base: str, tries: int = 100) -> None:
    """Until GET /healthz answers (bounded)."""
    import urllib.request

    for _ in range(tries):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(base)


def import_inventory(base: str, n_onts: int) -> None:
    """POST the bench inventory to a running service."""
    import urllib.request

    req = urllib.request.Request(
        base + "/api/onts/import",
        data=inventory(n_onts),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=120).read()


def postgresql_phase(args: argparse.Namespace, tmp: Path) -> dict | None:
    """The single-push load against ontwatch on its own PostgreSQL server; None when skipped.

    The server is started and removed here (fsync on: the same durability as SQLite's
    synchronous=FULL); its database is created empty and migrated by the service itself.
    """
    reason = test_pg.skip_reason() if args.postgresql != "off" else "--postgresql off"
    if reason:
        if args.postgresql == "on":
            raise SystemExit(f"PostgreSQL run asked for but impossible: {reason}")
        print(f"PostgreSQL run skipped: {reason}")
        return None
    bindir = test_pg.find_bindir()
    assert bindir is not None
    server = test_pg.PgServer(bindir, fsync=True).start()
    try:
        name = server.create_database()
        url = server.url(name)
        version = server.execute("SHOW server_version")[0][0]
        print(
            f"PostgreSQL {version} on 127.0.0.1:{server.port} (fsync on), data under {server.root}"
        )
        env = service_env(tmp / "unused.db", free_port(), ONTWATCH_LOG_LEVEL="WARNING")
        env["ONTWATCH_DB"] = url
        svc = ServiceProcess(env, log=tmp / "service-pg.log")
        try:
            import_inventory(svc.base, args.onts)
            result = drive(svc.base, args)
        finally:
            svc.stop()
        # The pushes really went to PostgreSQL (not to a SQLite file named like the URL).
        stored = server.execute("SELECT count(*) FROM history WHERE source = 'push'", name)[0][0]
        print(f"PostgreSQL holds {stored} push history rows after the run")
        assert stored >= result["requests"] - result["errors"], (stored, result)
        return result
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--onts", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--postgresql", choices=["auto", "on", "off"], default="auto")
    args = ap.parse_args()
    if args.client == "auto":
        args.client = "wrk" if wrk_run.wrk_path() else "python"
    tmp = Path(tempfile.mkdtemp(prefix="ontwatch-bench-"))
    print(
        f"machine: {platform.node()} {os.cpu_count()} cores, {platform.platform()}, "
        f"Python {platform.python_version()}; database under {tmp}"
    )
    client = (
        f"wrk ({wrk_run.wrk_path()}, 2 threads, bench/push_wrk.lua)"
        if args.client == "wrk"
        else "the Python aiohttp client (wrk not installed: figures are capped by the client)"
    )
    print(f"load generator: {client}, {args.concurrency} connections, {args.seconds:.0f} s a phase")

    port = free_port()
    bare = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "bare_server.py"),
            str(tmp / "bare.db"),
            str(port),
            str(args.onts),
        ]
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base)
        bare_res = drive(base, args)
    finally:
        bare.terminate()
        bare.wait(10)

    env = service_env(tmp / "ontwatch.db", free_port(), ONTWATCH_LOG_LEVEL="WARNING")
    svc = ServiceProcess(env, log=tmp / "service.log")
    try:
        import_inventory(svc.base, args.onts)
        ours = drive(svc.base, args)
        storm = drive(svc.base, args, mix="storm")
        bulk_times = [asyncio.run(bulk(svc.base, args.onts)) for _ in range(3)]
    finally:
        svc.stop()
    on_pg = postgresql_phase(args, tmp)

    def row(name: str, r: dict) -> str:
        return (
            f"{name:<28} {r['requests']:>7} req  {r['rate']:>8.0f}/s  p50 {r['p50_ms']:6.1f} ms"
            f"  p99 {r['p99_ms']:6.1f} ms  errors {r['errors']}"
        )

    print(f"single pushes, {args.concurrency} concurrent connections, {args.onts} ONTs:")
    print(row("bare aiohttp+aiosqlite", bare_res))
    print(row("ontwatch", ours))
    print(row("ontwatch, every push a change", storm))
    if on_pg is not None:
        print(row("ontwatch on PostgreSQL", on_pg))
        print(
            f"PostgreSQL / SQLite rate: {on_pg['rate'] / ours['rate']:.2f}  (target >= 0.5, "
            f"single pushes at {args.concurrency} connections)"
        )
    print(
        f"ontwatch / bare rate: {ours['rate'] / bare_res['rate']:.2f}  (target >= 0.5; "
        f"p99 target < 50 ms)"
    )
    print(
        f"bulk push of {args.onts} updates: median {statistics.median(bulk_times):.3f} s "
        f"(runs: {', '.join(f'{t:.3f}' for t in bulk_times)}; target < 1 s)"
    )


if __name__ == "__main__":
    main()
