"""What connected event-stream clients cost the push path, and how fast a mass outage reaches them.

Usage: .venv/bin/python bench/sse_bench.py [--onts 10000] [--clients 100] [--requests 8000]
           [--seconds 15] [--concurrency 50] [--bulk 5000]

Runs a real `ontwatch run` process on loopback (its own database in a temporary directory),
then, in the same run:
  1. the push rate with 0 event-stream clients and with --clients clients connected to
     GET /api/events, in --rounds alternations (so a change in the machine's load hits both
     alike); the clients live in a worker process, not in the push driver;
     two mixes: a poller's (1 push in 20 a problem) and every push a change (the stream's
     worst case: every push makes frames);
  2. a bulk OFF of --bulk ONTs (one POST /api/ont-status): the time from sending it until
     every client has read every one of those ONTs as OFF in its `onts` frames.
Also printed: the service's CPU time per push (from /proc), steadier than rates on a shared box.
Bounded: each condition stops after --requests requests or --seconds seconds, whichever first.
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
MIXES = ("poller", "change")
_rto: dict[int, int] = {}  # the rto each ONT was last pushed with (the "change" mix)


# -- the push driver ----------------------------------------------------------------------


async def push_load(
    base: str, n_onts: int, requests: int, concurrency: int, seconds: float, mix: str
) -> dict[str, float]:
    """Single pushes of one mix; returns the count, the rate and errors."""
    done = errors = 0
    counter = iter(range(requests))
    deadline = time.monotonic() + seconds
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def worker() -> None:
            nonlocal done, errors
            for i in counter:
                if time.monotonic() > deadline:
                    return
                ont = i % n_onts + 1
                if mix == "change":  # every push a change: each ONT alternates rto 0 / 1
                    body = {"status": "ON", "rto_count": 1 - _rto[ont]}
                    _rto[ont] = body["rto_count"]
                else:  # a poller's day: 1 push in 20 reports a problem, the rest all-clear
                    bad = i % 20 == 0
                    body = {"status": "OFF" if bad else "ON", "rto_count": 1 if bad else 0}
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


class Streams:
    """n clients that can be opened and closed between phases."""

    def __init__(self, url: str, n: int, session: aiohttp.ClientSession) -> None:
        self.url, self.n, self.session = url, n, session
        self.clients: list[StreamClient] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.bytes = self.frames = self.cut = 0

    async def open(self) -> None:
        self.clients = [StreamClient() for _ in range(self.n)]
        self.tasks = [asyncio.create_task(c.run(self.session, self.url)) for c in self.clients]
        async with asyncio.timeout(30):
            await asyncio.gather(*(c.ready.wait() for c in self.clients))

    async def close(self) -> None:
        self.cut += sum(t.done() for t in self.tasks)  # ended before we closed them
        self.bytes += sum(c.bytes for c in self.clients)
        self.frames += sum(c.frames for c in self.clients)
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.clients, self.tasks = [], []

    async def bulk(self, target: int) -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        for c in self.clients:
            c.off, c.target = 0, target
            c.reached = loop.create_future()
        print("armed", flush=True)
        async with asyncio.timeout(60):
            times = await asyncio.gather(*(c.reached for c in self.clients if c.reached))
        return max(times), min(times)


async def worker(url: str, n: int) -> None:
    """Obey stdin: `open`, `close` (n streams), `bulk N` (report when all saw N OFFs), `quit`."""
    loop = asyncio.get_running_loop()
    conn = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        streams = Streams(url, n, session)
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
            if not line or line[0] == "quit":
                break
            if line[0] == "open":
                await streams.open()
                print("ready", flush=True)
            elif line[0] == "close":
                await streams.close()
                print("closed", flush=True)
            elif line[0] == "bulk":
                last, first = await streams.bulk(int(line[1]))
                print(f"done {last:.6f} {first:.6f}", flush=True)
        await streams.close()
        print(f"stats {streams.cut} {streams.bytes} {streams.frames}", flush=True)


class Helper:
    """The worker process, driven line by line."""

    def __init__(self, url: str, clients: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", url, "--clients", str(clients)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def ask(self, command: str, expect: str | None = None) -> list[str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().split()
        if expect is not None:
            assert answer and answer[0] == expect, (command, answer)
        return answer

    def read(self) -> list[str]:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().split()


# -- the run ------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, phase: dict[str, float], start: float) -> dict[str, float]:
    """The phase's figures plus the service's CPU time per push."""
    used = cpu_seconds(pid) - start
    return {**phase, "cpu_ms_per_push": 1000 * used / max(1.0, phase["requests"])}


def all_on(base: str, n_onts: int) -> None:
    """Every ONT ON with rto 0 (one bulk push), and the stream quiet again."""
    asyncio.run(bulk(base, range(1, n_onts + 1), "ON"))
    _rto.update(dict.fromkeys(range(1, n_onts + 1), 0))
    quiet()


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
    ap.add_argument("--rounds", type=int, default=3, help="alternations of 0 and N clients")
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
    helper: Helper | None = None
    per_round = max(1, args.requests // args.rounds), args.seconds / args.rounds
    phases: dict[tuple[str, int], list[dict[str, float]]] = {}
    try:
        import_inventory(svc.base, args.onts)
        helper = Helper(f"{svc.base}/api/events", args.clients)
        load = (svc.base, args.onts, per_round[0], args.concurrency, per_round[1])
        # rounds alternate 0 and N clients, so drift in the machine's load hits both alike
        for mix in MIXES:
            all_on(svc.base, args.onts)
            for _ in range(args.rounds):
                for clients in (0, args.clients):
                    if clients:
                        helper.ask("open", "ready")
                    cpu = cpu_seconds(svc.proc.pid)
                    phase = asyncio.run(push_load(*load, mix))
                    phases.setdefault((mix, clients), []).append(measured(svc.proc.pid, phase, cpu))
                    if clients:
                        helper.ask("close", "closed")
                    quiet(0.5)
        all_on(svc.base, args.onts)
        helper.ask("open", "ready")
        helper.ask(f"bulk {args.bulk}", "armed")
        t0 = time.monotonic()
        asyncio.run(bulk(svc.base, range(1, args.bulk + 1), "OFF"))
        answered = time.monotonic() - t0
        _, last, first = helper.read()
        _, cut, total_bytes, frames = helper.ask("quit")
        helper.proc.wait(30)
    finally:
        if helper is not None and helper.proc.poll() is None:
            helper.proc.kill()
        svc.stop()

    def total(mix: str, clients: int) -> dict[str, float]:
        runs = phases[(mix, clients)]
        done = sum(r["requests"] for r in runs)
        seconds = sum(r["seconds"] for r in runs)
        cpu = sum(r["cpu_ms_per_push"] * r["requests"] for r in runs) / max(1.0, done)
        errors = sum(r["errors"] for r in runs)
        return {
            "requests": done,
            "seconds": seconds,
            "rate": done / seconds,
            "errors": errors,
            "cpu_ms_per_push": cpu,
        }

    without = {mix: total(mix, 0) for mix in MIXES}
    with_clients = {mix: total(mix, args.clients) for mix in MIXES}
    print(f"single pushes, {args.concurrency} concurrent, {args.onts} ONTs, same run:")
    for mix in MIXES:
        title = {"poller": "poller mix (1 push in 20 a problem)", "change": "every push a change"}
        print(f" {title[mix]}:")
        for name, r in (
            ("0 event-stream clients", without[mix]),
            (f"{args.clients} clients", with_clients[mix]),
        ):
            print(
                f"  {name:<24} {r['requests']:>6.0f} pushes in {r['seconds']:5.1f} s"
                f"  {r['rate']:7.0f}/s  errors {r['errors']:.0f}"
                f"  service CPU {r['cpu_ms_per_push']:.2f} ms/push"
            )
        ratio = with_clients[mix]["rate"] / without[mix]["rate"]
        cpu = with_clients[mix]["cpu_ms_per_push"] / without[mix]["cpu_ms_per_push"]
        print(
            f"  rate with clients / without: {ratio:.2f} (cost {100 * (1 - ratio):.0f}%;"
            f" target <= 20%); service CPU per push with / without: {cpu:.2f}"
        )
    print(f"  (machine: {os.cpu_count()} cores, shared by the service, the pushes and the clients)")
    print(
        f"bulk OFF of {args.bulk} ONTs: answered in {answered:.2f} s; first client had them all "
        f"after {float(first) - t0:.2f} s, all {args.clients} clients after {float(last) - t0:.2f} s"
    )
    print(
        f"  streams cut off by the service during the run: {cut}; "
        f"{int(frames)} frames, {int(total_bytes) / 2**20:.0f} MiB read in all"
    )


if __name__ == "__main__":
    main()
