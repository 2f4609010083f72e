"""The agent's store-and-forward queue: reports on disk until the centre answered 2xx.

A report is committed (WAL, synchronous=FULL) before the agent tries to send it, so one the
queue accepted survives kill -9 and power loss. `seq` is SQLite's AUTOINCREMENT key: never
reused, even after every row was deleted, so (epoch, seq) names one report for ever and the
centre can tell a replay from a new report. The epoch is made once, with the file.

The bound is on the stored (compressed) bodies: past it the oldest reports are dropped and
counted, and `overflowed` tells the runner to send a full report next, which restores the
centre's picture of what was lost. All SQLite work runs on one thread of its own, so the
event loop never waits on a disk flush and calls never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reports (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS aside (
    seq INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    set_aside REAL NOT NULL,
    why TEXT NOT NULL,
    body BLOB NOT NULL
);
"""
ASIDE_KEEP = 100  # reports the centre refused, kept for a look (newest), never resent


@contextlib.contextmanager
def _tx(db: sqlite3.Connection) -> Iterator[None]:
    """One transaction: all of it or nothing (the connection is in autocommit mode)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class QueueError(RuntimeError):
    """The queue file cannot be opened or is not an agent queue."""


@dataclass(frozen=True, slots=True)
class Queued:
    """One stored report: its seq, when it was made, and its payload."""

    seq: int
    created: float
    payload: dict[str, Any]


def encode(payload: Mapping[str, Any]) -> bytes:
    """Compact JSON, compressed: a full report of 25,000 ONTs stays a few hundred KB."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return zlib.compress(text.encode("utf-8"), 6)


def decode(body: bytes) -> dict[str, Any]:
    """The payload of a stored body."""
    value = json.loads(zlib.decompress(body).decode("utf-8"))
    if not isinstance(value, dict):
        raise ValueError("stored report is not an object")
    return value


class ReportQueue:
    """The queue file. Open with `await ReportQueue(path, max_bytes).open()`."""

    def __init__(self, path: Path, max_bytes: int = 256 * 1024 * 1024) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be > 0")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.epoch = ""
        self.depth = 0  # reports stored
        self.bytes = 0  # their stored size
        self.oldest: float | None = None  # created time of the oldest stored report
        self.dropped = 0  # reports dropped by the bound, over the file's life
        self.set_aside = 0  # reports the centre refused as bad, over the file's life
        self.overflowed = False  # dropped since the runner last looked: a full report is due
        self._db: sqlite3.Connection | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agent-queue")

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    async def open(self) -> ReportQueue:
        """Open (or create) the file; the epoch is made once, in the creating transaction."""
        await self._run(self._open)
        return self

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise QueueError(f"ONTWATCH_AGENT_QUEUE {self.path}: {exc}") from None
        self._db = db
        self._load_meta()

    def _load_meta(self) -> None:
        db = self._conn()
        with _tx(db):
            db.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('epoch', ?)",
                (secrets.token_hex(16),),
            )
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        self.epoch = meta["epoch"]
        self.dropped = int(meta.get("dropped", 0))
        self.set_aside = int(meta.get("set_aside", 0))
        self._recount()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise QueueError("the queue is not open")
        return self._db

    def _recount(self) -> None:
        row = (
            self._conn()
            .execute("SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(created) FROM reports")
            .fetchone()
        )
        self.depth, self.bytes, self.oldest = int(row[0]), int(row[1]), row[2]

    async def close(self) -> None:
        """Finish pending work and close the file."""
        if self._db is not None:
            await self._run(self._close)
        self._pool.shutdown(wait=True)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- the queue ----------------------------------------------------------------------

    async def put(self, payload: Mapping[str, Any], created: float | None = None) -> int:
        """Store a report durably; its seq. Past the bound the oldest others are dropped."""
        body = encode(payload)
        at = time.time() if created is None else created
        return await self._run(lambda: self._put(body, at))

    def _put(self, body: bytes, created: float) -> int:
        db = self._conn()
        with _tx(db):
            cur = db.execute(
                "INSERT INTO reports(created, size, body) VALUES (?, ?, ?)",
                (created, len(body), body),
            )
            seq = int(cur.lastrowid or 0)
            dropped = self._enforce_bound(db, seq, self.bytes + len(body))
        self._recount()
        if dropped:
            self.dropped += dropped
            self.overflowed = True
        return seq

    def _enforce_bound(self, db: sqlite3.Connection, newest: int, total: int) -> int:
        """Delete the oldest reports (never the newest) until the rest fits; how many."""
        if total <= self.max_bytes:
            return 0
        doomed: list[int] = []
        for seq, size in db.execute(
            "SELECT seq, size FROM reports WHERE seq < ? ORDER BY seq", (newest,)
        ):
            if total <= self.max_bytes:
                break
            doomed.append(seq)
            total -= size
        db.executemany("DELETE FROM reports WHERE seq = ?", [(s,) for s in doomed])
        db.execute(
            "INSERT INTO meta(key, value) VALUES ('dropped', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (str(self.dropped + len(doomed)),),
        )
        return len(doomed)

    async def peek(self, n: int = 1) -> list[Queued]:
        """Up to n stored reports, oldest first (they stay until acked)."""
        rows = await self._run(
            lambda: (
                self._conn()
                .execute("SELECT seq, created, body FROM reports ORDER BY seq LIMIT ?", (n,))
                .fetchall()
            )
        )
        return [Queued(int(seq), float(created), decode(body)) for seq, created, body in rows]

    async def ack(self, seq: int) -> None:
        """The centre answered 2xx: the report is done."""
        await self._run(lambda: self._ack(seq))

    def _ack(self, seq: int) -> None:
        db = self._conn()
        with _tx(db):
            db.execute("DELETE FROM reports WHERE seq = ?", (seq,))
        self._recount()

    async def put_aside(self, seq: int, why: str) -> None:
        """The centre refused the report as bad: out of the queue, kept for a look, counted."""
        await self._run(lambda: self._put_aside(seq, why))

    def _put_aside(self, seq: int, why: str) -> None:
        db = self._conn()
        with _tx(db):
            moved = db.execute(
                "INSERT OR REPLACE INTO aside(seq, created, set_aside, why, body) "
                "SELECT seq, created, ?, ?, body FROM reports WHERE seq = ?",
                (time.time(), why[:500], seq),
            ).rowcount
            db.execute("DELETE FROM reports WHERE seq = ?", (seq,))
            db.execute(
                "DELETE FROM aside WHERE seq NOT IN "
                "(SELECT seq FROM aside ORDER BY seq DESC LIMIT ?)",
                (ASIDE_KEEP,),
            )
            if moved:
                db.execute(
                    "INSERT INTO meta(key, value) VALUES ('set_aside', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (str(self.set_aside + 1),),
                )
        if moved:
            self.set_aside += 1
        self._recount()

    async def meta(self, key: str) -> str | None:
        """A value the agent keeps beside its reports (e.g. the last assignment)."""
        row = await self._run(
            lambda: self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        )
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        """Keep a value beside the reports (durably, like them)."""

        def write() -> None:
            db = self._conn()
            with _tx(db):
                db.execute(
                    "INSERT INTO meta(key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

        await self._run(write)

    def take_overflow(self) -> bool:
        """Whether reports were dropped since the last call (then a full report is due)."""
        overflowed, self.overflowed = self.overflowed, False
        return overflowed

    def stats(self) -> dict[str, Any]:
        """The queue as a report's "queue" field says it."""
        oldest = None if self.oldest is None else round(self.oldest, 3)
        return {"depth": self.depth, "oldest": oldest, "dropped": self.dropped}
