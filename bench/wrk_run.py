"""Drive a loopback HTTP server with `wrk` and bench/push_wrk.lua; parse its figures."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
LUA = HERE / "push_wrk.lua"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def wrk_path() -> str | None:
    """The wrk binary, when installed (Debian package `wrk`)."""
    return shutil.which("wrk")


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse(output: str) -> dict[str, float]:
    """Requests, rate, p50/p99 (ms) and non-2xx count from `wrk --latency` output."""
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.MULTILINE))
    done = re.search(r"^\s+(\d+) requests in ([\d.]+)(\w+)", output, re.MULTILINE)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if not (pct and done and rate):
        raise ValueError(f"unreadable wrk output:\n{output}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "requests": int(done[1]),
        "rate": float(rate[1]),
        "p50_ms": _ms(pct["50"]),
        "p99_ms": _ms(pct["99"]),
        "errors": (int(bad[1]) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0),
    }


def run(
    base: str,
    *,
    onts: int,
    seconds: float,
    connections: int,
    threads: int = 2,
    mix: str = "poller",
    prefix: str = "",
) -> dict[str, float]:
    """wrk for `seconds` against base (must be loopback) with the push bodies of push_wrk.lua."""
    assert base.startswith(("http://127.", "http://[::1]")), base
    binary = wrk_path()
    assert binary is not None, "wrk is not installed"
    env = {**os.environ, "ONTS": str(onts), "MIX": mix, "PREFIX": prefix}
    done = subprocess.run(
        [
            binary,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            base,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    return parse(done.stdout)
