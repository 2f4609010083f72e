"""Steady state of the real service: 10,000 loopback ONTs probed every 5 s (issue 10 #10, #11).

Usage: .venv/bin/python bench/steady_state_bench.py [--onts 10000] [--seconds 120]
Starts `ontwatch run` (real ICMP; needs root or net.ipv4.ping_group_range) with --onts ONTs on
127.20.0.0/16 (loopback only: all of 127.0.0.0/8 answers on Linux), waits until all are ON,
then measures --seconds of a quiet network: CPU %, RSS, bytes written (/proc/PID/io
write_bytes) per hour and the event loop's lag (p50/p99/max of a 0.25 s heartbeat, from
/metrics). The last_seen job runs every --persist-minutes (default 1, so that its cost shows
within the run); the hourly figure is also projected for the default interval (30 min).
The database lives on the disk under bench/.tmp, removed after (a tmpfs would hide writes).
Bounded: one service, one measuring window, sampling once a second.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.process import ServiceProcess, free_port, service_env

HERE = Path(__file__).resolve().parent
DEFAULT_PERSIST_MINUTES = 30.0
TICKS = os.sysconf("SC_CLK_TCK")


def proc_io(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("no write_bytes")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def addresses(n: int) -> list[str]:
    return [f"127.20.{i // 250}.{i % 250 + 1}" for i in range(n)]


def loop_lag(base: str) -> dict[str, float]:
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("ontwatch_loop_lag_seconds{"):
            q = line.split('quantile="', 1)[1].split('"', 1)[0]
            out[q] = float(line.rsplit(" ", 1)[1])
    return out


def wait_all_on(svc: ServiceProcess, n: int, limit: float = 120) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        stats = svc.get("/api/stats")
        if stats.get("online") == n:
            return time.monotonic() - t0
        time.sleep(1)
    raise RuntimeError(f"not all {n} ONTs ON after {limit} s: {svc.get('/api/stats')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onts", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--persist-minutes", type=float, default=1.0)
    args = ap.parse_args()
    if args.onts > 250 * 256:
        raise SystemExit("at most 64,000 ONTs (127.20.0.0/16)")
    work = HERE / ".tmp" / "steady"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = service_env(
        work / "ontwatch.db",
        free_port(),
        ONTWATCH_PROBE="on",
        ONTWATCH_PROBE_INTERVAL=str(args.interval),
        ONTWATCH_SEEN_PERSIST_MINUTES=str(args.persist_minutes),
    )
    svc = ServiceProcess(env, log=work / "service.log")
    try:
        pid = svc.proc.pid
        onts = [
            {"id": str(i + 1), "name": f"Area{i % 50} {i + 1}", "area": f"A{i % 50}", "ip": ip}
            for i, ip in enumerate(addresses(args.onts))
        ]
        code, _ = svc.request("POST", "/api/onts", onts)
        assert code in (200, 201), code
        took = wait_all_on(svc, args.onts)
        print(f"{args.onts} ONTs created; all ON after {took:.0f} s; settling one interval")
        time.sleep(args.interval * 2)
        t0, cpu0, io0 = time.monotonic(), cpu_seconds(pid), proc_io(pid)
        samples = []
        last = io0
        while time.monotonic() - t0 < args.seconds:
            time.sleep(1)
            now = proc_io(pid)
            samples.append(now - last)
            last = now
        wall = time.monotonic() - t0
        cpu = cpu_seconds(pid) - cpu0
        written = proc_io(pid) - io0
        lag = loop_lag(svc.base)
        rss = rss_mb(pid)
        stats = svc.get("/api/stats")
    finally:
        svc.stop()
        shutil.rmtree(work, ignore_errors=True)
    # A last_seen flush shows as a burst over one or two seconds; bursts = flushes.
    busy = [b > 256 * 1024 for b in samples]
    flushes = sum(1 for i, b in enumerate(busy) if b and (i == 0 or not busy[i - 1]))
    flushed = sum(b for b, hot in zip(samples, busy, strict=True) if hot)
    quiet = written - flushed
    per_hour = written * 3600 / wall
    quiet_per_hour = quiet * 3600 / wall
    per_flush = flushed / flushes if flushes else 0.0
    projected = quiet_per_hour + per_flush * 60 / DEFAULT_PERSIST_MINUTES
    print(
        f"steady state, {args.onts} loopback ONTs probed every {args.interval:g} s, "
        f"{wall:.0f} s measured (online {stats.get('online')}, offline {stats.get('offline')}):"
    )
    print(f"  CPU {100 * cpu / wall:.1f} % of one core; RSS {rss:.0f} MB")
    print(
        f"  written {written / 1e6:.2f} MB = {per_hour / 1e6:.1f} MB/h with the last_seen job "
        f"every {args.persist_minutes:g} min ({flushes} flushes, {per_flush / 1e6:.2f} MB "
        f"each); without flushes {quiet_per_hour / 1e6:.2f} MB/h"
    )
    print(
        f"  projected at the default {DEFAULT_PERSIST_MINUTES:g} min: {projected / 1e6:.1f} MB/h "
        "(target < 10 MB/h)"
    )
    shown = ", ".join(f"q{q}={1000 * v:.0f} ms" for q, v in sorted(lag.items()))
    print(f"  loop lag of a 0.25 s heartbeat: {shown} (target p99 < 50 ms)")


if __name__ == "__main__":
    main()
