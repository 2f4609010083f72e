"""Retention, table-driven on a real SQLite file: what is old goes, what is recent or still
waiting to be sent stays (an inverted cutoff, or pruning pending outbox rows, fails here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from storage import retention
from storage.codec import ts
from storage.database import Database

NOW = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
KEEP = timedelta(days=90)
CUTOFF = NOW - KEEP


@dataclass(frozen=True)
class Case:
    name: str
    age: timedelta  # how long before NOW the row was written
    outbox: str | None  # state of the notification's one outbox row; None = no outbox row
    kept: bool  # the notification (and its outbox row) survives the prune


NOTIFICATIONS = [
    Case("recent_sent", timedelta(days=1), "sent", True),
    Case("recent_pending", timedelta(days=1), "pending", True),
    Case("recent_no_outbox", timedelta(days=1), None, True),
    Case("old_sent", KEEP + timedelta(days=1), "sent", False),
    Case("old_failed", KEEP + timedelta(days=1), "failed", False),
    Case("old_folded", KEEP + timedelta(days=1), "folded", False),
    Case("old_no_outbox", KEEP + timedelta(days=1), None, False),
    Case("old_still_pending", KEEP + timedelta(days=400), "pending", True),
    Case("just_inside", KEEP - timedelta(seconds=1), "sent", True),
    Case("exactly_at_cutoff", KEEP, "sent", True),  # older than the cutoff goes; at it stays
    Case("just_outside", KEEP + timedelta(seconds=1), "sent", False),
]


async def seed_notification(db: Database, case: Case) -> int:
    at = ts(NOW - case.age)
    async with db.transaction() as conn:
        cur = await conn.execute(
            "INSERT INTO notifications (created_at, kind, severity, ont_id, area, message, payload)"
            " VALUES (?, 'opened', 'warning', ?, 'Baciro', ?, '{}') RETURNING id",
            (at, case.name, case.name),
        )
        (nid,) = await cur.fetchone()
        if case.outbox is not None:
            await conn.execute(
                "INSERT INTO outbox (notification_id, chat_id, created_at, state) VALUES (?,?,?,?)",
                (nid, -100, at, case.outbox),
            )
    return int(nid)


async def test_prune_keeps_recent_and_undelivered_rows(db: Database) -> None:
    ids = {c.name: await seed_notification(db, c) for c in NOTIFICATIONS}
    counts = await retention.prune(db, NOW, KEEP)
    left = {row[0] for row in await db.fetchall("SELECT ont_id FROM notifications")}
    outbox = {row[0] for row in await db.fetchall("SELECT notification_id FROM outbox")}
    for case in NOTIFICATIONS:
        assert (case.name in left) is case.kept, case.name
        if case.outbox is not None:
            assert (ids[case.name] in outbox) is case.kept, f"outbox of {case.name}"
    gone = [c for c in NOTIFICATIONS if not c.kept]
    assert counts["notifications"] == len(gone)
    assert counts["outbox"] == sum(c.outbox is not None for c in gone)


HISTORY = [
    ("yesterday", timedelta(days=1), True),
    ("inside", KEEP - timedelta(minutes=1), True),
    ("at_cutoff", KEEP, True),
    ("outside", KEEP + timedelta(minutes=1), False),
    ("ancient", timedelta(days=3650), False),
]


@pytest.mark.parametrize(("name", "age", "kept"), HISTORY, ids=[h[0] for h in HISTORY])
async def test_history_cutoff(db: Database, name: str, age: timedelta, kept: bool) -> None:
    for ont, row_age in (("probe", age), ("control", timedelta(0))):
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO history (ont_id, at, source, status, rto_count, severity, reason)"
                " VALUES (?, ?, 'push', 'OFF', 0, 'warning', '')",
                (ont, ts(NOW - row_age)),
            )
    counts = await retention.prune(db, NOW, KEEP)
    left = {row[0] for row in await db.fetchall("SELECT ont_id FROM history")}
    assert ("probe" in left) is kept
    assert "control" in left  # a row written now is never pruned
    assert counts["history"] == (0 if kept else 1)


async def test_prune_twice_deletes_nothing_more(db: Database) -> None:
    for case in NOTIFICATIONS:
        await seed_notification(db, case)
    await retention.prune(db, NOW, KEEP)
    again = await retention.prune(db, NOW, KEEP)
    assert again == {"outbox": 0, "notifications": 0, "history": 0}
