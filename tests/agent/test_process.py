"""`ontwatch agent` as a real process: its start line, SIGTERM, kill -9 while the centre is
down, and settings errors. The centre is the loopback fake (tests/agent/centre.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.sweep import detect_icmp_mode
from tests.agent.centre import FakeCentre
from tests.process import ROOT

pytestmark = pytest.mark.skipif(detect_icmp_mode() == "none", reason="no ICMP socket allowed")
NET = "127.77.4"


def agent_env(centre: FakeCentre, queue: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONTWATCH_", "TELEGRAM_"))}
    env.update(
        ONTWATCH_CENTRAL_URL=centre.url,
        ONTWATCH_AGENT_NAME="POP-T",
        ONTWATCH_AGENT_TOKEN=centre.token,
        ONTWATCH_AGENT_QUEUE=str(queue),
        ONTWATCH_PROBE_INTERVAL="0.5",
        ONTWATCH_PROBE_TIMEOUT="0.3",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ontwatch.cli", "agent"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def until(cond: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def stopped(proc: subprocess.Popen[bytes], within: float = 10.0) -> int:
    deadline = time.monotonic() + within
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the agent did not stop")
        await asyncio.sleep(0.05)
    return proc.returncode


async def test_start_line_reports_and_sigterm(tmp_path: Path) -> None:
    """One start line (name, centre, queue, interval); reports arrive; SIGTERM exits 0;
    the token is in no output."""
    centre = await FakeCentre(targets=[(str(i), f"{NET}.{i}") for i in (1, 2, 3)]).start()
    log, queue = tmp_path / "agent.log", tmp_path / "queue.sqlite"
    proc = spawn(agent_env(centre, queue, ONTWATCH_LOG_LEVEL="DEBUG"), log)
    try:
        await until(lambda: len(centre.reports) >= 3)
        proc.send_signal(signal.SIGTERM)
        assert await stopped(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        await centre.stop()
    text = log.read_text()
    start = [line for line in text.splitlines() if line.startswith("ontwatch agent POP-T:")]
    assert len(start) == 1, text
    assert centre.url in start[0] and str(queue) in start[0] and "every 0.5 s" in start[0]
    assert centre.token not in text
    full = next(r for r in centre.reports if r["full"] and r["obs"])
    assert sorted((o[0], o[2]) for o in full["obs"]) == [("1", 0), ("2", 0), ("3", 0)]
    assert queue.exists()


async def test_kill_9_while_the_centre_is_down_loses_nothing(tmp_path: Path) -> None:
    """Centre down, the agent queues, kill -9, started again, centre up: every report from
    seq 1 on arrives once, in order, in one epoch."""
    centre = await FakeCentre(targets=[("1", f"{NET}.9")]).start()
    log, queue = tmp_path / "agent.log", tmp_path / "queue.sqlite"
    env = agent_env(centre, queue)
    proc = spawn(env, log)
    try:
        await until(lambda: len(centre.reports) >= 1)
        await centre.stop()
        await asyncio.sleep(2.0)
        proc.send_signal(signal.SIGKILL)
        assert await stopped(proc) == -signal.SIGKILL
        proc = spawn(env, log)
        await asyncio.sleep(1.0)
        await centre.start()
        n = len(centre.reports)
        await until(lambda: len(centre.reports) >= n + 6)
    finally:
        proc.send_signal(signal.SIGTERM)
        await stopped(proc)
        await centre.stop()
    seqs = [r["seq"] for r in centre.reports]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    assert len({r["epoch"] for r in centre.reports}) == 1
    assert len(log.read_text().splitlines()) > 2


def test_a_missing_setting_exits_78_naming_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONTWATCH_", "TELEGRAM_"))}
    env["ONTWATCH_CENTRAL_URL"] = "http://127.0.0.1:9"
    result = subprocess.run(
        [sys.executable, "-m", "ontwatch.cli", "agent"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 78
    assert "ONTWATCH_AGENT_NAME: required" in result.stderr
    assert "ONTWATCH_AGENT_TOKEN: required" in result.stderr
    assert not list(tmp_path.iterdir())  # nothing created before the settings are good


def test_a_bad_queue_file_exits_1_naming_it(tmp_path: Path) -> None:
    """ONTWATCH_AGENT_QUEUE pointing at something that is not SQLite: one clear line."""
    bad = tmp_path / "queue.sqlite"
    bad.write_bytes(b"not sqlite at all " * 200)
    centre = FakeCentre()  # never started: the agent stops before any request
    env = agent_env(centre, bad)
    result = subprocess.run(
        [sys.executable, "-m", "ontwatch.cli", "agent"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert f"ONTWATCH_AGENT_QUEUE {bad}" in result.stderr and "Traceback" not in result.stderr
    assert centre.token not in result.stderr + result.stdout
