"""Deleting old notifications, delivered outbox rows and history."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

from storage.codec import ts
from storage.database import Database


def _prune(conn: sqlite3.Connection | Any, cutoff: str) -> dict[str, int]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        outbox = conn.execute(
            "DELETE FROM outbox WHERE state != 'pending' AND created_at < ?", (cutoff,)
        ).rowcount
        # A notification still waiting for delivery is kept, however old.
        notifications = conn.execute(
            "DELETE FROM notifications WHERE created_at < ? AND id NOT IN "
            "(SELECT notification_id FROM outbox WHERE state = 'pending')",
            (cutoff,),
        ).rowcount
        history = conn.execute("DELETE FROM history WHERE at < ?", (cutoff,)).rowcount
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return {"outbox": outbox, "notifications": notifications, "history": history}


async def prune(db: Database, now: datetime, keep: timedelta) -> dict[str, int]:
    """Delete what is older than `keep`; returns the counts deleted per table."""
    return await db.run_in_writer(_prune, ts(now - keep))
