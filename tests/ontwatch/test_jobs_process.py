"""The scheduler of the running service, seen in the REAL process (issue 10's blind spot).

Every job's interval and every time threshold is shortened by its setting, so within seconds
the tick escalates an OFF ONT ("OFF for more than 1 h", the hour made 1.8 s by
ONTWATCH_CRITICAL_OFF_MINUTES), reminds of it, ends a mute and a flapping period; the backup
job writes a file; the retention job prunes old rows (keeping a pending outbox row); the
last_seen job writes probe freshness. Removing any job from the service fails this test.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.engine import Engine
from monitor.model import Observation, Ont, Status
from monitor.ports import StaticRouter
from storage.codec import ts
from storage.database import Database
from storage.store import SqliteStore
from tests.process import ServiceProcess, free_port, service_env

pytestmark = [pytest.mark.e2e]

OLD = datetime.now(UTC) - timedelta(days=10)


async def seed(db_path: Path) -> None:
    """Inventory through the real engine, a mute ending soon, and 10-day-old rows."""
    db = await Database(db_path).open()
    engine = Engine(SqliteStore(db), clock=lambda: datetime.now(UTC), router=StaticRouter(()))
    await engine.start()
    try:
        await engine.upsert(
            [Ont(id=i, name=f"Baciro {i}", area="Baciro", ip="127.9.0.1") for i in ("e1", "f1")]
        )
        await engine.upsert([Ont(id="m1", name="Klitren m1", area="Klitren", ip="127.9.0.2")])
        await engine.ingest(Observation.push("m1", Status.OFF, 0, datetime.now(UTC)))
        await engine.mute("ont:m1", datetime.now(UTC) + timedelta(seconds=4), "test")
    finally:
        await engine.stop()
    conn = db.writer
    for kind, state in (("old-sent", "sent"), ("old-pending", "pending")):
        cur = await conn.execute(
            "INSERT INTO notifications (created_at, kind, severity, ont_id, area, message,"
            " payload) VALUES (?, 'opened', 'warning', ?, 'Baciro', 'old', '{}')",
            (ts(OLD), kind),
        )
        await conn.execute(
            "INSERT INTO outbox (notification_id, chat_id, created_at, state) VALUES (?,?,?,?)",
            (cur.lastrowid, -100, ts(OLD), state),
        )
    await conn.execute(
        "INSERT INTO history (ont_id, at, source, status, rto_count, severity, reason)"
        " VALUES ('old-history', ?, 'push', 'OFF', 0, 'warning', '')",
        (ts(OLD),),
    )
    await db.close()


def rows(db: Path, sql: str, *params: object) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def kinds(db: Path, ont_id: str) -> list[str]:
    return [k for (k,) in rows(db, "SELECT kind FROM notifications WHERE ont_id = ?", ont_id)]


def wait_for(what: str, check: object, limit: float = 40) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.25)
    raise AssertionError(f"not seen within {limit:.0f} s: {what}")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[ServiceProcess, Path, Path]]:
    db = tmp_path / "ontwatch.db"
    asyncio.run(seed(db))
    backups = tmp_path / "backups"
    env = service_env(
        db,
        free_port(),
        ONTWATCH_TICK_SECONDS="0.5",
        ONTWATCH_CRITICAL_OFF_MINUTES="0.03",  # "OFF for more than 1 h" after 1.8 s
        ONTWATCH_REMINDER_MINUTES="0.05",  # reminders every 3 s
        ONTWATCH_FLAP_WINDOW_MINUTES="0.05",  # stable for 3 s ends flapping
        ONTWATCH_BACKUP_EVERY_HOURS="0.0008",  # about every 3 s
        ONTWATCH_BACKUP_DIR=str(backups),
        ONTWATCH_RETENTION_EVERY_HOURS="0.0008",
        ONTWATCH_RETENTION_DAYS="1",
    )
    svc = ServiceProcess(env, log=tmp_path / "service.log")
    yield svc, db, backups
    svc.stop()


def test_every_scheduled_job_runs_in_the_service(
    service: tuple[ServiceProcess, Path, Path],
) -> None:
    svc, db, backups = service
    status, _ = svc.request("POST", "/api/ont-status/e1", {"status": "OFF", "rto_count": 0})
    assert status == 200
    flaps = [{"id": "f1", "status": "OFF" if i % 2 == 0 else "ON"} for i in range(8)]
    status, _ = svc.request("POST", "/api/ont-status", flaps)
    assert status == 200
    assert "flapping" in kinds(db, "f1")
    assert kinds(db, "e1") == ["opened"]  # nothing is due yet: what follows is the tick's

    wait_for("escalation of e1 after its shortened hour", lambda: "escalated" in kinds(db, "e1"))
    state = svc.get("/api/onts/e1")
    assert state["severity"] == "critical"
    wait_for("a reminder of the unacknowledged e1", lambda: "reminder" in kinds(db, "e1"))
    wait_for("the mute of m1 ended", lambda: not rows(db, "SELECT * FROM mutes"))
    wait_for("the reminder when m1's mute ended", lambda: "reminder" in kinds(db, "m1"))
    wait_for("flapping of f1 ended", lambda: "flapping_ended" in kinds(db, "f1"))
    wait_for("a backup file", lambda: any(backups.glob("*.db")))
    wait_for(
        "retention pruned the old rows",
        lambda: not rows(db, "SELECT 1 FROM history WHERE ont_id = 'old-history'"),
    )
    assert kinds(db, "old-sent") == []
    assert kinds(db, "old-pending") == ["opened"]  # still waiting to be sent: kept
    assert rows(
        db,
        "SELECT state FROM outbox WHERE state = 'pending' AND created_at < ?",
        ts(OLD + timedelta(seconds=1)),
    )
    assert kinds(db, "e1")[:2] == ["opened", "escalated"]  # recent rows are not pruned
