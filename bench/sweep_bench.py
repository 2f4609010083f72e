"""Sweep 10,000 loopback hosts with monitor.sweep and with fping in the same run; print times.

    sudo .venv/bin/python bench/sweep_bench.py [--runs 5] [--hosts 10000] [--silent 1000]

Scenario "all answer": every host replies; target: our sweep <= 3x fping's time.
Scenario "silent": every 10th host of the list (1,000 of 10,000) is made silent by an
nftables rule that drops their echo requests on input (removed afterwards); timeout 1 s for
both tools; target <= 1.3x fping's time. Only 127.1.0.0/16 is ever probed.

fping runs as `fping -c1 -q -i0 -r0 -t <timeout ms> -f <list>` (same list, same order, same
56-byte payload, no retries, same timeout) and its time is the wall time of the process;
ours is the time of `Sweeper.sweep()` in a running process, which is what the service pays.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.sweep import Sweeper
from tests.netfilter import is_loopback, missing_privileges, nft_table

TARGET_ALL = 3.0
TARGET_SILENT = 1.3
_FPING_LINE = re.compile(r"^(\S+)\s*: xmt/rcv/%loss = (\d+)/(\d+)/")


def hosts(count: int) -> list[str]:
    """count addresses in 127.1.0.0/16 (x.y.0 and x.y.255 skipped), all loopback."""
    out = [f"127.1.{i // 254}.{i % 254 + 1}" for i in range(count)]
    bad = [a for a in out if not ipaddress.ip_address(a).is_loopback]
    if bad:  # the guard: this bench never probes anything but loopback
        raise SystemExit(f"refusing non-loopback targets: {bad[:3]}")
    return out


def run_fping(list_file: str, timeout_ms: int, expected: int) -> tuple[float, int]:
    """Time one fping run over the list; return (seconds, hosts that replied)."""
    argv = ["fping", "-c1", "-q", "-i0", "-r0", "-t", str(timeout_ms), "-f", list_file]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.perf_counter() - start
    replied = 0
    seen = 0
    for line in proc.stderr.splitlines():
        m = _FPING_LINE.match(line)
        if m:
            seen += 1
            replied += int(m.group(3)) > 0
    if seen != expected:
        raise SystemExit(f"fping reported {seen} of {expected} hosts: {proc.stderr[-500:]}")
    return elapsed, replied


async def run_ours(addresses: list[str], wait_s: float, rate: float) -> tuple[float, int]:
    """Time one sweep with a fresh Sweeper (socket opened inside the timed sweep)."""
    with Sweeper(timeout=wait_s, rate_per_s=rate, allowed=is_loopback) as sweeper:
        result = await asyncio.wait_for(sweeper.sweep(addresses), timeout=120)
    if result.errors:
        errs = [p for p in result.results.values() if p.error][:3]
        raise SystemExit(f"sweep had {result.errors} errors, e.g. {errs}")
    return result.duration, result.replied


def scenario(
    name: str, addresses: list[str], runs: int, timeout: float, rate: float, target: float
) -> bool:
    """Alternate fping and our sweep `runs` times; print medians and the ratio."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(addresses) + "\n")
        list_file = f.name
    try:
        fp_times, our_times = [], []
        fp_replied = our_replied = -1
        for _ in range(runs):
            t, fp_replied = run_fping(list_file, int(timeout * 1000), len(addresses))
            fp_times.append(t)
            t, our_replied = asyncio.run(run_ours(addresses, timeout, rate))
            our_times.append(t)
    finally:
        os.unlink(list_file)
    fp, ours = statistics.median(fp_times), statistics.median(our_times)
    ratio = ours / fp
    ok = ratio <= target and our_replied == fp_replied
    print(
        f"\n[{name}] {len(addresses)} hosts, timeout {timeout:g} s, rate {rate:,.0f}/s, {runs} runs"
    )
    print(
        f"  fping   median {fp:7.3f} s  runs {[round(x, 3) for x in fp_times]}  "
        f"replied {fp_replied}"
    )
    print(
        f"  sweep   median {ours:7.3f} s  runs {[round(x, 3) for x in our_times]}  "
        f"replied {our_replied}"
    )
    print(
        f"  ratio   {ratio:.2f}x of medians (target <= {target}x)  {'OK' if ok else 'MISSED'}; "
        f"best vs best {min(our_times) / min(fp_times):.2f}x"
    )
    return ok


def machine() -> str:
    """One line about where the figures came from."""
    fping = subprocess.run(["fping", "-v"], capture_output=True, text=True, check=False)
    version = (fping.stdout or fping.stderr).strip().splitlines()[0]
    with Sweeper() as s:
        mode = f"{s.mode} ({s.mode_reason})"
    return (
        f"nproc {os.cpu_count()}, kernel {platform.release()}, "
        f"python {platform.python_version()}, {version}, icmp mode {mode}"
    )


def main() -> int:
    """Run both scenarios and print the figures; exit 1 if a target was missed."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per scenario (1-20), median")
    ap.add_argument("--hosts", type=int, default=10_000, help="hosts (1-60000)")
    ap.add_argument("--silent", type=int, default=1_000, help="silent hosts in scenario 2")
    ap.add_argument("--timeout", type=float, default=1.0, help="seconds, both tools")
    ap.add_argument("--rate", type=float, default=50_000, help="our send rate per second")
    args = ap.parse_args()
    runs = max(1, min(args.runs, 20))
    count = max(1, min(args.hosts, 60_000))
    silent_count = max(0, min(args.silent, count))

    if shutil.which("fping") is None:
        print("fping not found: apt-get install -y fping", file=sys.stderr)
        return 2
    addresses = hosts(count)
    print(machine())
    ok = scenario("all answer", addresses, runs, args.timeout, args.rate, TARGET_ALL)

    why = missing_privileges("nft")
    if why:
        print(f"\n[silent] skipped: {why}")
        return 0 if ok else 1
    # Every k-th host is silent, spread over the list the way dead ONTs would be.
    step = max(1, count // max(1, silent_count))
    silent = addresses[step - 1 :: step][:silent_count]
    body = (
        "set silent { type ipv4_addr; elements = { " + ", ".join(silent) + " } }\n"
        "chain in { type filter hook input priority -10; policy accept;\n"
        "  ip daddr @silent icmp type echo-request drop\n}"
    )
    with nft_table(body, prefix="ontwatch_bench"):
        ok = (
            scenario(
                f"{len(silent)} silent", addresses, runs, args.timeout, args.rate, TARGET_SILENT
            )
            and ok
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
