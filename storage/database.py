"""Opening the database: SQLite (WAL, durability pragmas, migrations) or, for a
postgresql:// URL, storage.pg.PgDatabase with the same surface (open_database picks)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiosqlite

from storage.dialect import SQLITE, is_postgres_url
from storage.schema import migrate

if TYPE_CHECKING:
    from storage.pg import PgDatabase

BUSY_TIMEOUT_MS = 5000
T = TypeVar("T")


async def connect(path: str | Path, *, readonly: bool = False) -> aiosqlite.Connection:
    """Open the database (creating its folder and schema when writable)."""
    path = Path(path)
    if not readonly:
        path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a batch is exactly one transaction.
    conn = await aiosqlite.connect(str(path), isolation_level=None)
    try:
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            await conn.execute("PRAGMA journal_mode = WAL")
            # FULL: an answered push survives power loss, not only a crash; group commit pays it.
            await conn.execute("PRAGMA synchronous = FULL")
            await migrate(conn)
        else:
            await conn.execute("PRAGMA query_only = ON")
    except BaseException:
        await conn.close()
        raise
    return conn


class Database:
    """One writer connection (serialised by a lock) and one reader connection."""

    kind = SQLITE
    # A value SQLite refuses (too large an integer, bad text, a constraint): one job's fault.
    data_errors: tuple[type[BaseException], ...] = (
        sqlite3.IntegrityError,
        sqlite3.DataError,
        sqlite3.ProgrammingError,
    )
    integrity_errors: tuple[type[BaseException], ...] = (sqlite3.IntegrityError,)
    # Faults of the database itself (disk full, I/O error, locked, corrupt): the store is down.
    down_errors: tuple[type[BaseException], ...] = (sqlite3.DatabaseError, OSError)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self.write_lock = asyncio.Lock()

    @property
    def target(self) -> str:
        """What to name in messages: the file's path."""
        return str(self.path)

    async def open(self) -> Database:
        """Open both connections, migrating the schema first."""
        self._writer = await connect(self.path)
        self._reader = await connect(self.path, readonly=True)
        return self

    async def close(self) -> None:
        """Close both connections."""
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._writer = self._reader = None

    @property
    def writer(self) -> aiosqlite.Connection:
        """The write connection; hold write_lock around a transaction."""
        assert self._writer is not None, "database is not open"
        return self._writer

    @property
    def reader(self) -> aiosqlite.Connection:
        """The read-only connection (WAL: reads never wait for the writer)."""
        assert self._reader is not None, "database is not open"
        return self._reader

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE ... COMMIT on the writer, rolled back on any error."""
        async with self.write_lock:
            conn = self.writer
            try:
                # Inside the try: a task cancelled while awaiting the BEGIN leaves it running
                # on the database thread; the ROLLBACK queued behind it ends that transaction
                # (else the next writer met "cannot start a transaction within a transaction").
                await conn.execute("BEGIN IMMEDIATE")
                yield conn
            except BaseException:
                # The error that got us here is the one to raise (a BEGIN that failed leaves
                # no transaction: "cannot rollback", suppressed).
                with contextlib.suppress(sqlite3.Error, ValueError):
                    await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    async def run_in_writer(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(sqlite3_connection, *args) on the writer's thread, under the write lock.

        A group commit is many statements; running them as one call costs one hop to the
        database thread instead of one per statement (measured: +20% pushes/s in
        bench/push_bench.py). aiosqlite has no public API for this, hence its private
        _execute/_conn; the dependency is pinned below 0.23 for that reason.
        """
        async with self.write_lock:
            conn = self.writer
            return await conn._execute(fn, conn._conn, *args)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a read query on the reader, start to finish in one call on its thread.

        Not execute() then fetchall(): between those two hops another read can start, and
        while a statement is open SQLite keeps the connection's WAL snapshot, so reads that
        keep overlapping can miss a commit made meanwhile (delivery re-sent a row it had just
        marked sent). One call per query leaves no statement open between queries.
        """
        conn = self.reader
        return await conn._execute(_fetchall, conn._conn, sql, params)

    async def fetch_many(self, queries: Sequence[str]) -> list[list[Any]]:
        """Several reads (no parameters) that see one state: no commit lands between them."""
        conn = self.reader
        return await conn._execute(_fetch_many, conn._conn, queries)


def _fetch_many(conn: sqlite3.Connection, queries: Sequence[str]) -> list[list[Any]]:
    conn.execute("BEGIN")  # deferred: one WAL snapshot for every query
    try:
        return [conn.execute(sql).fetchall() for sql in queries]
    finally:
        conn.execute("COMMIT")


def open_database(target: str | Path) -> Database | PgDatabase:
    """The backend ONTWATCH_DB names (not opened yet): a postgresql:// or postgres:// URL is
    PostgreSQL, anything else a SQLite file path, as before."""
    if is_postgres_url(target):
        from storage.pg import PgDatabase  # psycopg is imported only when PostgreSQL is used

        return PgDatabase(str(target).strip())
    return Database(target)


def _fetchall(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    cur = conn.execute(sql, params)
    try:
        return cur.fetchall()
    finally:
        cur.close()
