"""A quiet network through one probe agent: bytes on the wire per minute and the agent's CPU.

    .venv/bin/python bench/agent_quiet_bench.py [--onts 25000] [--interval 5] [--seconds 60]
        [--silence 20 --trials 5]

The real centre (Service, AgentDesk, SQLite) runs in this process on a free loopback port;
the agent is the real `ontwatch agent` process, sweeping --onts loopback addresses in
127.80.0.0/16 (nothing else is ever probed). Its HTTP goes through a counting TCP proxy on
127.0.0.1, so the figure is every byte both ways: headers, gzip bodies, the assignment
fetches (304s), the answers. After a warm-up (the full report at start is applied and one
refresh cycle has begun) the bench measures --seconds: bytes up/down, reports, and the
agent's CPU from /proc (user + system time over wall time, in % of one core). With
--silence K (root, nftables): K ONTs are silenced at a random phase, --trials times, and the
time until the centre has each of them OFF is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.model import Ont, Status
from ontwatch.service import Service, utcnow
from ontwatch.settings import load_settings
from storage.agents import Agents
from storage.database import Database
from tests.netfilter import missing_privileges, nft_table
from tests.process import ROOT, free_port

CLK_TCK = os.sysconf("SC_CLK_TCK")


class CountingProxy:
    """TCP proxy 127.0.0.1:port -> target, counting bytes each way."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.up = 0  # agent -> centre
        self.down = 0  # centre -> agent
        self.port = free_port()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, up_w, "up"), self._pipe(up_r, writer, "down"), return_exceptions=True
        )

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, way: str) -> None:
        try:
            while data := await r.read(65536):
                if way == "up":
                    self.up += len(data)
                else:
                    self.down += len(data)
                w.write(data)
                await w.drain()
        finally:
            w.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def spawn_agent(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`ontwatch agent` as its own process, its output into log."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ontwatch.cli", "agent"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def loopback_onts(n: int) -> list[Ont]:
    """n ONTs in area Bench-POP at 127.80.x.y (x.y from 0.1 on)."""
    out = []
    for i in range(n):
        hi, lo = divmod(i + 1, 256)
        out.append(Ont(id=f"b{i}", name=f"Bench {i}", area="Bench-POP", ip=f"127.80.{hi}.{lo}"))
    return out


async def bench(n: int, interval: float, seconds: float, silence: int, trials: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="agent-bench-"))
    db_path, port = work / "centre.db", free_port()
    db = await Database(db_path).open()
    token = await Agents(db).add("POP-B", ["Bench-POP"], [], utcnow())
    await db.close()
    config = {
        "db": db_path,
        "http_port": port,
        "probe": False,
        "tile_url": "http://127.0.0.1:9/{z}/{x}/{y}.png",
        "probe_interval": interval,
        "log_level": "WARNING",
    }
    svc = Service(load_settings(**config))
    await svc.start()
    proxy = CountingProxy(port)
    await proxy.start()
    proc: subprocess.Popen[bytes] | None = None
    try:
        assert svc.engine is not None and svc.desk is not None
        await svc.engine.upsert(loopback_onts(n))
        deadline = time.monotonic() + 120
        while len(svc.desk.assigned()) < n:
            assert time.monotonic() < deadline, "the desk never planned the ONTs"
            await asyncio.sleep(0.2)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ONTWATCH_", "TELEGRAM_"))}
        env.update(
            ONTWATCH_CENTRAL_URL=f"http://127.0.0.1:{proxy.port}",
            ONTWATCH_AGENT_NAME="POP-B",
            ONTWATCH_AGENT_TOKEN=token,
            ONTWATCH_AGENT_QUEUE=str(work / "agent-queue.sqlite"),
            ONTWATCH_PROBE_INTERVAL=str(interval),
            ONTWATCH_LOG_LEVEL="WARNING",
        )
        proc = spawn_agent(env, work / "agent.log")
        states = svc.engine.states
        deadline = time.monotonic() + 120
        while sum(1 for i in range(n) if states[f"b{i}"].status is Status.ON) < n:
            assert proc.poll() is None, (work / "agent.log").read_text()
            assert time.monotonic() < deadline, "the agent's full report never landed"
            await asyncio.sleep(0.5)
        await asyncio.sleep(3 * interval)  # past the full report and its answer
        up0, down0, cpu0, t0 = proxy.up, proxy.down, cpu_seconds(proc.pid), time.monotonic()
        await asyncio.sleep(seconds)
        up, down = proxy.up - up0, proxy.down - down0
        cpu, wall = cpu_seconds(proc.pid) - cpu0, time.monotonic() - t0
        per_min = 60.0 / wall
        print(
            f"agent quiet bench: {n} ONTs on 127.80.0.0/16, interval {interval:g} s, {wall:.0f} s"
        )
        print(f"  bytes agent->centre per minute: {up * per_min:,.0f}")
        print(f"  bytes centre->agent per minute: {down * per_min:,.0f}")
        print(f"  both ways per minute:          {(up + down) * per_min:,.0f}")
        print(f"  agent CPU: {100 * cpu / wall:.1f} % of one core")
        off = sum(1 for i in range(n) if states[f"b{i}"].status is not Status.ON)
        print(f"  ONTs not ON at the centre at the end: {off}")
        if silence:
            await silence_to_off(svc, n, interval, silence, trials)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        await proxy.stop()
        await svc.stop()


async def silence_to_off(svc: Service, n: int, interval: float, k: int, trials: int) -> None:
    """k ONTs silenced at a random phase of the sweep, `trials` times: seconds until the centre
    has each OFF (what the agent's quick second echo is for), then back ON."""
    reason = missing_privileges("nft")
    if reason:
        print(f"  silence-to-OFF skipped: {reason}")
        return
    assert svc.engine is not None
    states, rng, times = svc.engine.states, random.Random(13), []
    for trial in range(trials):
        picked = rng.sample(range(n), k)
        ips = ", ".join(loopback_onts(n)[i].ip for i in picked)
        await asyncio.sleep(rng.uniform(0, interval))
        body = (
            "chain in { type filter hook input priority -10; policy accept;\n"
            f"  ip daddr {{ {ips} }} icmp type echo-request drop\n}}"
        )
        with nft_table(body):
            t0 = time.monotonic()
            pending = {f"b{i}" for i in picked}
            while pending and time.monotonic() - t0 < 60:
                for ont_id in [i for i in pending if states[i].status is Status.OFF]:
                    times.append(time.monotonic() - t0)
                    pending.discard(ont_id)
                await asyncio.sleep(0.02)
            assert not pending, f"trial {trial}: {len(pending)} never OFF"
        deadline = time.monotonic() + 60
        while any(states[f"b{i}"].status is not Status.ON for i in picked):
            assert time.monotonic() < deadline, "the silenced ONTs never came back"
            await asyncio.sleep(0.1)
    times.sort()
    print(
        f"  silence to OFF at the centre ({len(times)} ONTs, {trials} random phases): median "
        f"{statistics.median(times):.2f} s, p90 {times[int(0.9 * (len(times) - 1))]:.2f} s, "
        f"max {times[-1]:.2f} s"
    )


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--onts", type=int, default=25_000)
    p.add_argument("--interval", type=float, default=5.0)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument(
        "--silence",
        type=int,
        default=0,
        help="then silence this many ONTs (nftables, root)",
    )
    p.add_argument("--trials", type=int, default=5, help="silence trials, each at a random phase")
    a = p.parse_args()
    if not 1 <= a.onts <= 65_000:
        p.error("--onts must be 1..65000 (127.80.0.0/16)")
    asyncio.run(bench(a.onts, a.interval, a.seconds, a.silence, a.trials))


if __name__ == "__main__":
    main()
