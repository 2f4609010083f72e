"""Backups check what they copy; a bad copy never rotates a good one away; restore (finding 13)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage import backup as backups
from tests.process import ServiceProcess, cli, free_port, service_env

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def make_db(path: Path, rows: int = 3000) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("CREATE INDEX t_body ON t (body)")
    conn.executemany("INSERT INTO t (body) VALUES (?)", [(f"row {i} " * 8,) for i in range(rows)])
    conn.commit()
    conn.close()
    return path


def corrupt(path: Path) -> None:
    """Overwrite pages in the middle of the file (a bad sector, a torn write)."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        for offset in range(size // 3, size // 3 + 8 * 4096, 4096):
            f.seek(offset + 100)
            f.write(b"\xde\xad\xbe\xef" * 200)


def test_a_good_database_backs_up_and_rotates(tmp_path: Path) -> None:
    db = make_db(tmp_path / "live.db")
    out = tmp_path / "backups"
    made = [backups.backup(db, out, keep=2, now=T0 + timedelta(hours=h)) for h in range(4)]
    assert backups.good_backups(out) == made[-2:]
    assert backups.integrity_problems(made[-1]) == []
    assert backups.last_failure(out) is None


def test_a_corrupt_copy_is_kept_aside_and_never_rotates_good_ones_away(tmp_path: Path) -> None:
    db = make_db(tmp_path / "live.db")
    out = tmp_path / "backups"
    good = [backups.backup(db, out, keep=2, now=T0 + timedelta(hours=h)) for h in range(2)]
    corrupt(db)
    assert backups.integrity_problems(db), "the corruption was not detectable"
    for h in range(2, 7):  # more failures than `keep`
        with pytest.raises(backups.BackupFailed) as failed:
            backups.backup(db, out, keep=2, now=T0 + timedelta(hours=h))
        assert failed.value.path.parent == out / backups.FAILED_DIR
        assert failed.value.path.exists() and failed.value.problems
    assert backups.good_backups(out) == good  # both good backups are still there
    assert all(backups.integrity_problems(g) == [] for g in good)
    kept_aside = sorted((out / backups.FAILED_DIR).glob("*.db"))
    assert len(kept_aside) == backups.FAILED_KEEP
    failure = backups.last_failure(out)
    assert failure is not None and failure.at == T0 + timedelta(hours=6)
    assert failure.problems and failure.path == kept_aside[-1]
    assert not list(out.glob("*.partial"))


def test_a_good_backup_after_a_failure_clears_the_report(tmp_path: Path) -> None:
    bad = make_db(tmp_path / "bad.db")
    corrupt(bad)
    out = tmp_path / "backups"
    with pytest.raises(backups.BackupFailed):
        backups.backup(bad, out, keep=3, now=T0)
    assert backups.last_failure(out) is not None
    backups.backup(make_db(tmp_path / "good.db"), out, keep=3, now=T0 + timedelta(hours=1))
    assert backups.last_failure(out) is None


def test_cli_backup_of_a_corrupt_database_fails_loudly(tmp_path: Path) -> None:
    db = make_db(tmp_path / "ontwatch.db")
    out = tmp_path / "backups"
    env = service_env(db, free_port(), ONTWATCH_BACKUP_DIR=str(out), ONTWATCH_BACKUP_KEEP="1")
    first = cli("backup", env=env)
    assert first.returncode == 0, first.stderr
    corrupt(db)
    for _ in range(3):
        done = cli("backup", env=env)
        assert done.returncode == 1
        assert "integrity check" in done.stderr and "backup written" not in done.stdout
    assert len(backups.good_backups(out)) == 1  # the good one survived three failed runs


def test_healthz_reports_a_failed_backup(tmp_path: Path) -> None:
    out = tmp_path / "backups"
    env = service_env(tmp_path / "ontwatch.db", free_port(), ONTWATCH_BACKUP_DIR=str(out))
    svc = ServiceProcess(env, log=tmp_path / "service.log")
    try:
        assert svc.request("GET", "/healthz")[0] == 200
        bad = make_db(tmp_path / "bad.db")
        corrupt(bad)
        with pytest.raises(backups.BackupFailed):
            backups.backup(bad, out, keep=3)
        code, body = svc.request("GET", "/healthz")
        assert code == 503
        assert any("backup failed its integrity check" in p for p in body["problems"])
        assert cli("backup", env=env).returncode == 0  # a good backup of the live database
        assert svc.request("GET", "/healthz")[0] == 200
    finally:
        svc.stop()


def test_restore_brings_back_the_backed_up_state(tmp_path: Path) -> None:
    db = tmp_path / "ontwatch.db"
    out = tmp_path / "backups"
    env = service_env(db, free_port(), ONTWATCH_BACKUP_DIR=str(out))
    svc = ServiceProcess(env, log=tmp_path / "service.log")
    try:
        onts = [{"id": str(i), "name": f"R {i}", "area": "A"} for i in range(1, 4)]
        assert svc.request("POST", "/api/onts", onts)[0] in (200, 201)
        svc.request("POST", "/api/ont-status/2", {"status": "OFF", "rto_count": 3})
        assert cli("backup", env=env).returncode == 0
        (saved,) = backups.good_backups(out)
        assert svc.request("DELETE", "/api/onts/2")[0] == 200
        refused = cli("restore", str(saved), env=env)
        assert refused.returncode == 1 and "running" in refused.stderr
    finally:
        svc.stop()
    bad = make_db(tmp_path / "bad.db")
    corrupt(bad)
    before = db.read_bytes()
    refused = cli("restore", str(bad), env=env)
    assert refused.returncode == 1 and "integrity" in refused.stderr
    assert db.read_bytes() == before  # a bad backup changes nothing
    done = cli("restore", str(saved), env=env)
    assert done.returncode == 0, done.stderr
    assert "previous database is kept" in done.stdout
    svc = ServiceProcess(env, log=tmp_path / "service2.log")
    try:
        code, ont = svc.request("GET", "/api/onts/2")
        assert code == 200 and ont["status"] == "OFF" and ont["rto_count"] == 3
        assert len(svc.get("/api/onts")) == 3
    finally:
        svc.stop()
