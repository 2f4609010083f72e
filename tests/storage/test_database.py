"""Schema migrations, backups and the read queries on real SQLite files."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.engine import Engine
from monitor.model import Observation, Status
from storage import backup
from storage.database import Database
from storage.queries import Queries
from storage.schema import MIGRATIONS
from storage.store import SqliteStore
from tests.conftest import ManualClock, sample_onts


async def test_migrations_run_once(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    for _ in range(2):
        db = await Database(path).open()
        await db.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_an_open_outage_of_schema_3_is_upgraded_and_loaded(tmp_path: Path) -> None:
    """A database of the release before area reminders keeps its open outage through the upgrade."""
    path = tmp_path / "v3.db"
    conn = sqlite3.connect(path)
    for number, script in enumerate(MIGRATIONS[:3], start=1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    conn.execute(
        "INSERT INTO mass_outages (area, started_at, members) VALUES (?, ?, ?)",
        ("Baciro", "2026-11-27T01:00:00.000000+00:00", '["1", "2", "3"]'),
    )
    conn.commit()
    conn.close()
    db = await Database(path).open()
    try:
        (outage,) = (await SqliteStore(db).load()).outages
        assert (outage.area, sorted(outage.members)) == ("Baciro", ["1", "2", "3"])
        assert (outage.last_notified_at, outage.acked_at, outage.acked_by) == (None, None, "")
    finally:
        await db.close()


@pytest.mark.sqlite_only  # backs up the SQLite file itself (PostgreSQL: pg_dump)
async def test_backup_is_consistent_and_rotated(
    tmp_path: Path, engine: Engine, db: Database, clock: ManualClock
) -> None:
    await engine.upsert(sample_onts(5))
    await engine.ingest(Observation.push("2", Status.OFF, 3, clock()))
    out = tmp_path / "backups"
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    made = [backup.backup(db.path, out, keep=3, now=t0 + timedelta(hours=i)) for i in range(5)]
    kept = sorted(out.glob("ontwatch-*.db"))
    assert kept == made[2:]
    conn = sqlite3.connect(kept[-1])
    assert conn.execute("SELECT COUNT(*) FROM onts").fetchone()[0] == 5
    assert conn.execute("SELECT status FROM ont_state WHERE ont_id='2'").fetchone()[0] == "OFF"
    conn.close()
    assert not list(out.glob("*.partial"))


async def test_stats_match_the_onts(engine: Engine, reads: Queries, clock: ManualClock) -> None:
    await engine.upsert(sample_onts(4) + sample_onts(2, area="Demangan")[:0])
    await engine.ingest(Observation.push("1", Status.OFF, 3, clock()))
    await engine.ingest(Observation.push("2", Status.ON, 0, clock()))
    await engine.ingest(Observation.push("3", Status.OFF, 1, clock()))
    stats = await reads.stats()
    onts = await reads.onts()
    assert stats["total"] == len(onts) == 4
    assert (stats["online"], stats["offline"], stats["unknown"]) == (1, 2, 1)
    assert stats["by_severity"] == {"ok": 2, "warning": 1, "critical": 1}
    assert stats["unread"] == 2
    assert stats["by_area"]["Baciro"]["offline"] == 2
    assert await reads.mark_read(None) == 2
    assert (await reads.stats())["unread"] == 0


async def test_a_read_after_a_commit_sees_it_while_other_reads_overlap(tmp_path: Path) -> None:
    """Overlapping reads on the shared reader must not keep an old snapshot past a commit.

    Delivery marks a row sent and then reads the pending rows again; a stale snapshot there
    sent the same alert twice.
    """
    db = await Database(tmp_path / "snap.db").open()
    try:
        async with db.transaction() as conn:
            await conn.execute("CREATE TABLE big (n INTEGER)")
            await conn.executemany("INSERT INTO big VALUES (?)", [(i,) for i in range(200)])
            await conn.execute("CREATE TABLE flag (v INTEGER)")
            await conn.execute("INSERT INTO flag VALUES (0)")
        stop = asyncio.Event()

        async def busy_reader() -> None:
            while not stop.is_set():
                await db.fetchall("SELECT n FROM big")

        readers = [asyncio.create_task(busy_reader()) for _ in range(4)]
        stale = 0
        try:
            for v in range(1, 201):
                async with db.transaction() as conn:
                    await conn.execute("UPDATE flag SET v = ?", (v,))
                if (await db.fetchall("SELECT v FROM flag"))[0][0] != v:
                    stale += 1
        finally:
            stop.set()
            await asyncio.gather(*readers)
        assert stale == 0
    finally:
        await db.close()
