"""The health check's write probe: one real write through the writer connection."""

from __future__ import annotations

import sqlite3

from storage.database import Database


def _touch(conn: sqlite3.Connection, stamp: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('healthz', ?)", (stamp,))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


async def write_probe(db: Database, stamp: str) -> None:
    """Commit a timestamp into the meta table; raises sqlite3.Error or OSError when it cannot."""
    await db.run_in_writer(_touch, stamp)
