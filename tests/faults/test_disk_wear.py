"""Finding 10 of issue 10 and the durability blind spot: writes follow changes, not the clock.

A quiet network (every ONT answering, nothing changing) used to rewrite every ONT's last_seen
at each 15 s tick (about 490 MB/h at 10,000 ONTs). Here the real service probes loopback ONTs
with real ICMP every 0.5 s and ticks every 0.5 s, and the bytes it writes (/proc/PID/io) stay
near zero; last_seen is written by its coarse job and at shutdown. The figure at 10,000 ONTs
is bench/steady_state_bench.py's. Durability itself: PRAGMA synchronous is read back as FULL.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from monitor.sweep import detect_icmp_mode
from storage.database import Database
from tests.process import ServiceProcess, free_port, service_env

N = 60
QUIET_SECONDS = 6.0
MAX_QUIET_BYTES = 32 * 1024  # a tick rewriting 60 states costs more than this in 6 s


async def test_the_writer_connection_is_synchronous_full_in_wal(tmp_path: Path) -> None:
    """FULL: an answered push survives power loss, not only a crash (kill -9 cannot tell)."""
    db = await Database(tmp_path / "ontwatch.db").open()
    try:
        async with db.writer.execute("PRAGMA synchronous") as cur:
            (synchronous,) = await cur.fetchone()  # type: ignore[misc]
        async with db.writer.execute("PRAGMA journal_mode") as cur:
            (journal,) = await cur.fetchone()  # type: ignore[misc]
    finally:
        await db.close()
    assert synchronous == 2, "PRAGMA synchronous must be FULL (2)"
    assert journal == "wal"


def write_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise AssertionError("no write_bytes in /proc/PID/io")


def query(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def wait_all_on(db: Path, limit: float = 20) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if query(db, "SELECT COUNT(*) FROM ont_state WHERE status = 'ON'") == [(N,)]:
            return
        time.sleep(0.2)
    raise AssertionError("the loopback ONTs did not all come ON")


def start(tmp_path: Path, **extra: str) -> tuple[ServiceProcess, Path]:
    db = tmp_path / "ontwatch.db"
    env = service_env(
        db,
        free_port(),
        ONTWATCH_PROBE="on",
        ONTWATCH_PROBE_INTERVAL="0.5",
        ONTWATCH_PROBE_TIMEOUT="0.3",
        ONTWATCH_TICK_SECONDS="0.5",
        ONTWATCH_LOG_LEVEL="WARNING",
        **extra,
    )
    svc = ServiceProcess(env, log=tmp_path / "service.log")
    onts = [{"id": f"q{i}", "area": "Tenang", "ip": f"127.10.0.{i}"} for i in range(1, N + 1)]
    status, _ = svc.request("POST", "/api/onts", onts)
    assert status in (200, 201)
    wait_all_on(db)
    return svc, db


needs_icmp = pytest.mark.skipif(detect_icmp_mode() == "none", reason="no ICMP socket allowed")


@pytest.mark.e2e
@needs_icmp
def test_a_quiet_network_writes_next_to_nothing(tmp_path: Path) -> None:
    svc, db = start(tmp_path)
    try:
        time.sleep(1.0)  # the commits of the ON changes are behind us
        seen_before = dict(query(db, "SELECT ont_id, last_seen FROM ont_state"))
        history_before = query(db, "SELECT COUNT(*) FROM history")
        before = write_bytes(svc.proc.pid)
        if before == 0:  # creating 60 ONTs wrote pages: none counted means no block device
            pytest.skip("the database is on a filesystem without block I/O (tmpfs?)")
        time.sleep(QUIET_SECONDS)  # ~12 sweeps and ~12 ticks, nothing changing
        written = write_bytes(svc.proc.pid) - before
        assert written < MAX_QUIET_BYTES, f"{written} bytes written by a quiet network"
        assert query(db, "SELECT COUNT(*) FROM history") == history_before
        assert dict(query(db, "SELECT ont_id, last_seen FROM ont_state")) == seen_before
        assert svc.get("/api/onts/q1")["last_seen"] > seen_before["q1"]  # fresh in memory
    finally:
        assert svc.stop() == 0
    after = dict(query(db, "SELECT ont_id, last_seen FROM ont_state"))
    assert all(after[i] > seen_before[i] for i in seen_before), "last_seen written at shutdown"


@pytest.mark.e2e
@needs_icmp
def test_the_last_seen_job_writes_freshness_coarsely(tmp_path: Path) -> None:
    svc, db = start(tmp_path, ONTWATCH_SEEN_PERSIST_MINUTES="0.03")  # every 1.8 s
    try:
        first = dict(query(db, "SELECT ont_id, last_seen FROM ont_state"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            now = dict(query(db, "SELECT ont_id, last_seen FROM ont_state"))
            if all(now[i] > first[i] for i in first):
                break
            time.sleep(0.3)
        else:
            raise AssertionError("the last_seen job never wrote the probes' freshness")
    finally:
        svc.stop()
