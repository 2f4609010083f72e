"""The health check's write probe: one real write through the writer connection."""

from __future__ import annotations

import sqlite3
from typing import Any

from monitor.ports import StoreDown
from storage.database import Database
from storage.dialect import SQLITE


def _touch(conn: sqlite3.Connection | Any, stamp: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('healthz', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (stamp,),
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


async def write_probe(db: Database, stamp: str) -> None:
    """Commit a timestamp into the meta table; raises sqlite3.Error or OSError when it cannot
    (on PostgreSQL: StoreDown, naming the driver's error)."""
    if db.kind == SQLITE:
        await db.run_in_writer(_touch, stamp)
        return
    try:
        await db.run_in_writer(_touch, stamp)
    except StoreDown:
        raise
    except db.down_errors as exc:
        raise StoreDown(f"{type(exc).__name__}: {exc}") from exc
