"""What connected event-stream clients cost the push path, and how fast a mass outage reaches them.

Usage: .venv/bin/python bench/sse_bench.py [--onts 10000] [--clients 100] [--requests 8000]
           [--seconds 15] [--concurrency 50] [--bulk 5000]

Runs a real `ontwatch run` process on loopback (its own database in a temporary directory),
then, in the same run:
  1. the push rate with 0 event-stream clients;
  2. the push rate with --clients clients connected to GET /api/events (they live in a
     separate worker process, so reading the streams does not take the push driver's CPU);
  3. a bulk OFF of --bulk ONTs (one POST /api/ont-status): the time from sending it until
     every client has read every one of those ONTs as OFF in its `onts` frames.
Every push is a change (each ONT alternates rto 0 / 1), so every push makes stream frames.
Bounded: each load phase stops after --requests requests or --seconds seconds, whichever first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.process import ServiceProcess, free_port, service_env  # noqa: E402

OFF_MARK = b'"status":"OFF"'


# -- the push driver ----------------------------------------------------------------------


async def push_load(
    base: str, n_onts: int, requests: int, concurrency: int, seconds: float, first: int
) -> dict[str, float]:
    """Single pushes, every one a change; returns the count, the rate and errors."""
    done = errors = 0
    counter = iter(range(first, first + requests))
    deadline = time.monotonic() + seconds
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def worker() -> None:
            nonlocal done, errors
            for i in counter:
                if time.monotonic() > deadline:
                    return
                ont = i % n_onts + 1
                body = {"status": "ON", "rto_count": (i // n_onts) % 2}
                async with session.post(f"{base}/api/ont-status/{ont}", json=body) as r:
                    await r.read()
                    errors += r.status != 200
                done += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {"requests": done, "rate": done / elapsed, "errors": errors, "seconds": elapsed}


async def bulk(base: str, ids: range, status: str) -> None:
    """One POST /api/ont-status setting every id to status."""
    body = [{"id": str(i), "status": status, "rto_count": 0} for i in ids]
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/api/ont-status", json=body) as r,
    ):
        result = await r.json()
    assert r.status == 200 and result["applied"] == len(ids), result


def import_inventory(base: str, n: int) -> None:
    import urllib.request

    body = json.dumps(
        [
            {"id": i, "name": f"Area{i % 20} ONT {i}", "area": f"Area{i % 20}", "ip": ""}
            for i in range(1, n + 1)
        ]
    ).encode()
    req = urllib.request.Request(
        base + "/api/onts/import",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=120).read()


# -- the client worker (a separate process) -----------------------------------------------


class StreamClient:
    """One event-stream client that counts the OFF states in its `onts` frames."""

    def __init__(self) -> None:
        self.off = 0
        self.bytes = 0
        self.frames = 0
        self.ready = asyncio.Event()
        self.target = 0
        self.reached: asyncio.Future[float] | None = None
        self._buffer = b""

    def feed(self, chunk: bytes) -> None:
        self.bytes += len(chunk)
        self._buffer += chunk
        *blocks, self._buffer = self._buffer.split(b"\n\n")
        for block in blocks:
            if b"\nevent: " not in block and not block.startswith(b"retry"):
                continue  # a heartbeat
            self.frames += 1
            if b"event: hello" in block:
                self.ready.set()
            elif b"event: onts" in block:
                self.off += block.count(OFF_MARK)
        if self.reached is not None and not self.reached.done() and self.off >= self.target:
            self.reached.set_result(time.monotonic())

    async def run(self, session: aiohttp.ClientSession, url: str) -> None:
        async with session.get(url) as r:
            async for chunk in r.content.iter_any():
                self.feed(chunk)


async def worker(url: str, n: int) -> None:
    """Open n streams, then obey stdin: `bulk N` (report when all saw N OFFs), `quit`."""
    loop = asyncio.get_running_loop()
    clients = [StreamClient() for _ in range(n)]
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=conn, timeout=aiohttp.ClientTimeout(total=None)
    ) as session:
        tasks = [asyncio.create_task(c.run(session, url)) for c in clients]
        async with asyncio.timeout(30):
            await asyncio.gather(*(c.ready.wait() for c in clients))
        print("ready", flush=True)
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
            if not line or line[0] == "quit":
                break
            if line[0] == "bulk":
                for c in clients:
                    c.off, c.target = 0, int(line[1])
                    c.reached = loop.create_future()
                print("armed", flush=True)
                async with asyncio.timeout(60):
                    times = await asyncio.gather(*(c.reached for c in clients if c.reached))
                print(f"done {max(times):.6f} {min(times):.6f}", flush=True)
        alive = sum(not t.done() for t in tasks)
        total = sum(c.bytes for c in clients)
        print(f"stats {alive} {total} {sum(c.frames for c in clients)}", flush=True)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# -- the run ------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, phase: dict[str, float], start: float) -> dict[str, float]:
    """The phase's figures plus the service's CPU time per push."""
    used = cpu_seconds(pid) - start
    return {**phase, "cpu_ms_per_push": 1000 * used / max(1.0, phase["requests"])}


def quiet(seconds: float = 1.5) -> None:
    """Let the stream's last flushes go out before the next phase."""
    time.sleep(seconds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--onts", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--requests", type=int, default=8_000)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--bulk", type=int, default=5_000)
    ap.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        asyncio.run(worker(args.worker, args.clients))
        return
    if not 0 < args.bulk <= args.onts:
        ap.error("--bulk must be between 1 and --onts")

    tmp = Path(tempfile.mkdtemp(prefix="ontwatch-sse-bench-"))
    env = service_env(tmp / "ontwatch.db", free_port(), ONTWATCH_LOG_LEVEL="WARNING")
    svc = ServiceProcess(env, log=tmp / "service.log")
    helper: subprocess.Popen[str] | None = None
    try:
        import_inventory(svc.base, args.onts)
        load = (svc.base, args.onts, args.requests, args.concurrency, args.seconds)
        cpu = cpu_seconds(svc.proc.pid)
        without = measured(svc.proc.pid, asyncio.run(push_load(*load, first=0)), cpu)
        quiet()
        helper = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                f"{svc.base}/api/events",
                "--clients",
                str(args.clients),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert helper.stdin is not None and helper.stdout is not None
        assert helper.stdout.readline().strip() == "ready"
        cpu, helper_cpu = cpu_seconds(svc.proc.pid), cpu_seconds(helper.pid)
        with_clients = measured(
            svc.proc.pid, asyncio.run(push_load(*load, first=args.requests)), cpu
        )
        helper_cpu = cpu_seconds(helper.pid) - helper_cpu
        asyncio.run(bulk(svc.base, range(1, args.onts + 1), "ON"))
        quiet()
        helper.stdin.write(f"bulk {args.bulk}\n")
        helper.stdin.flush()
        assert helper.stdout.readline().strip() == "armed"
        t0 = time.monotonic()
        asyncio.run(bulk(svc.base, range(1, args.bulk + 1), "OFF"))
        answered = time.monotonic() - t0
        _, last, first = helper.stdout.readline().split()
        helper.stdin.write("quit\n")
        helper.stdin.flush()
        _, alive, total_bytes, frames = helper.stdout.readline().split()
        helper.wait(30)
    finally:
        if helper is not None and helper.poll() is None:
            helper.kill()
        svc.stop()

    ratio = with_clients["rate"] / without["rate"]
    print(f"single pushes (every one a change), {args.concurrency} concurrent, {args.onts} ONTs:")
    for name, r in (("0 event-stream clients", without), (f"{args.clients} clients", with_clients)):
        print(
            f"  {name:<24} {r['requests']:>6.0f} pushes in {r['seconds']:5.1f} s"
            f"  {r['rate']:7.0f}/s  errors {r['errors']:.0f}"
            f"  service CPU {r['cpu_ms_per_push']:.2f} ms/push"
        )
    print(
        f"  rate with clients / without: {ratio:.2f} (cost {100 * (1 - ratio):.0f}%; target <= 20%)"
    )
    print(
        f"  the {args.clients} clients' own process used {helper_cpu:.1f} s CPU in that phase "
        f"(machine: {os.cpu_count()} cores, shared by the service, the pushes and the clients)"
    )
    print(
        f"bulk OFF of {args.bulk} ONTs: answered in {answered:.2f} s; first client had them all "
        f"after {float(first) - t0:.2f} s, all {args.clients} clients after {float(last) - t0:.2f} s"
    )
    print(
        f"  clients still connected at the end: {alive}/{args.clients}; "
        f"{int(frames)} frames, {int(total_bytes) / 2**20:.0f} MiB read in all"
    )


if __name__ == "__main__":
    main()
