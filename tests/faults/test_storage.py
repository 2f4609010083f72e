"""Storage faults on the real process: a full disk and a database locked by another process."""

from __future__ import annotations

import contextlib
import errno
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import ServiceProcess, figure, request
from tests.process import free_port, service_env

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 6 MB tmpfs mounted under the test's directory (needs root; skipped otherwise)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs: {done.stderr.strip() or done.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path: Path) -> int:
    """Write a file until the filesystem is full; return the bytes written."""
    written = 0
    chunk = b"\0" * 65536
    with open(path, "wb") as f:
        while True:
            try:
                f.write(chunk)
                f.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
            written += len(chunk)
    with contextlib.suppress(OSError), open(path, "ab") as f:  # the last, smaller pieces
        for _ in range(64):
            f.write(b"\0" * 512)
            f.flush()
    return written


@pytest.mark.privileged
def test_disk_full_writes_503_reads_work_then_recovers(small_fs: Path) -> None:
    """A full disk: writes answer 503 with a clear error, reads answer 200, and it recovers."""
    db = small_fs / "ontwatch.db"
    env = service_env(db, free_port(), ONTWATCH_BACKUP_DIR=str(small_fs / "backups"))
    svc = ServiceProcess(env, log=small_fs.parent / "service.log")
    try:
        onts = [{"id": str(i), "name": f"Disk {i}", "area": f"A{i}"} for i in range(1, 51)]
        assert request(svc.base, "POST", "/api/onts", onts)[0] in (200, 201)
        acked: dict[str, int] = {}
        for i in range(3, 51):  # acknowledged before the disk fills: these must survive
            code, body = request(
                svc.base, "POST", f"/api/ont-status/{i}", {"status": "OFF", "rto_count": 1000 + i}
            )
            assert code == 200, (code, body)
            acked[str(i)] = 1000 + i
        acked_before_full = len(acked)
        filler = small_fs / "filler"
        filled = fill(filler)
        refused: list[dict[str, object]] = []
        # Bounded: the WAL may absorb a few writes before SQLite needs new space.
        for rto in range(1, 401):
            ont = str(rto % 50 + 1)
            code, body = request(
                svc.base, "POST", f"/api/ont-status/{ont}", {"status": "OFF", "rto_count": rto}
            )
            if code == 200:
                acked[ont] = rto
                if rto % 25 == 0:  # bigger writes too, so the database must grow
                    big = [{"id": f"big{rto}-{i}", "name": "x" * 400} for i in range(200)]
                    code, body = request(svc.base, "POST", "/api/onts", big)
            if code == 503:
                refused.append(body)
                break
            assert code in (200, 201), (code, body)
        assert refused, "no write was refused on a full disk"
        assert "storage unavailable" in refused[0]["error"]
        assert "full" in str(refused[0]["detail"]).lower()
        reads = [
            request(svc.base, "GET", p)[0]
            for p in ("/api/onts", "/api/stats", "/api/onts/1", "/healthz")
        ]
        second = request(svc.base, "POST", "/api/ont-status/1", {"status": "ON", "rto_count": 0})
        filler.unlink()
        recovered = None
        for attempt in range(1, 21):  # bounded retries after space is freed
            code, body = request(
                svc.base, "POST", "/api/ont-status/2", {"status": "OFF", "rto_count": 99_999}
            )
            if code == 200:
                recovered = attempt
                break
            time.sleep(0.2)
        _, listed = request(svc.base, "GET", "/api/onts")
        state = {o["id"]: o["rto_count"] for o in listed}
        lost = [i for i, r in acked.items() if i not in {"1", "2"} and state.get(i) != r]
        svc.stop()  # and after a restart, from the database file itself
        svc = ServiceProcess(env, log=small_fs.parent / "service2.log")
        _, listed = request(svc.base, "GET", "/api/onts")
        restarted = {o["id"]: o["rto_count"] for o in listed}
        lost += [i for i, r in acked.items() if i not in {"1", "2"} and restarted.get(i) != r]
        figure(
            "FAULT disk-full",
            filler_bytes=filled,
            acked_before_full=acked_before_full,
            writes_ok_before_503=len(acked),
            first_error=f"'{refused[0]['error']}: {refused[0]['detail']}'",
            reads_while_full="/".join(map(str, reads)),
            write_while_full=second[0],
            recovered_after_attempts=recovered,
            lost=len(lost),
        )
        assert reads[:3] == [200, 200, 200]
        assert second[0] == 503
        assert recovered is not None and state["2"] == 99_999
        assert acked_before_full == 48 and len(acked) >= acked_before_full  # the set is not empty
        assert lost == []
        assert restarted["2"] == 99_999
    finally:
        svc.stop()


HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("LOCKED", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def test_database_locked_by_another_process_503_then_recovers(tmp_path: Path) -> None:
    """Another process holds BEGIN EXCLUSIVE past busy_timeout: 503, reads fine, then OK."""
    db = tmp_path / "ontwatch.db"
    env = service_env(db, free_port())
    svc = ServiceProcess(env, log=tmp_path / "service.log")
    try:
        onts = [{"id": str(i), "name": f"Lock {i}", "area": f"A{i}"} for i in range(1, 4)]
        assert request(svc.base, "POST", "/api/onts", onts)[0] in (200, 201)
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(db), "7"], stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "LOCKED"
            started = time.monotonic()
            read_code, _ = request(svc.base, "GET", "/api/onts/1")
            read_s = time.monotonic() - started
            code, body = request(
                svc.base, "POST", "/api/ont-status/1", {"status": "OFF", "rto_count": 2}
            )
            locked_s = time.monotonic() - started
        finally:
            holder.wait(15)
        after, _ = request(svc.base, "POST", "/api/ont-status/1", {"status": "OFF", "rto_count": 3})
        _, ont = request(svc.base, "GET", "/api/onts/1")
        figure(
            "FAULT db-locked",
            read_while_locked=read_code,
            read_seconds=f"{read_s:.2f}",
            write_while_locked=code,
            error=f"'{body.get('error') if isinstance(body, dict) else body}: {body.get('detail') if isinstance(body, dict) else ''}'",
            answered_after_s=f"{locked_s:.1f}",
            write_after_release=after,
        )
        assert read_code == 200
        assert code == 503 and "storage unavailable" in body["error"] and "locked" in body["detail"]
        assert after == 200 and ont["rto_count"] == 3
    finally:
        svc.stop()
