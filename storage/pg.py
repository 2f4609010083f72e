"""PostgreSQL behind the same seam as storage.database.Database (psycopg 3).

Writes go through one synchronous psycopg connection owned by one thread, like SQLite's
writer: `run_in_writer(fn)` runs a whole group commit there in one hop, and `transaction()`
sends its statements to the same thread. The storage functions written for sqlite3
(`BEGIN IMMEDIATE` … `COMMIT`, `?` parameters, cursors with fetchall/fetchone/rowcount)
run unchanged on the small adapters below. Reads use a psycopg AsyncConnection in
autocommit. `synchronous_commit` stays on (PostgreSQL's default): a commit returns once
its WAL is flushed, so a push is answered only after its change is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg

from monitor.ports import StoreDown
from storage.dialect import POSTGRESQL, mask_url, to_pyformat
from storage.schema import migrate_pg

T = TypeVar("T")
log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
LISTEN_RETRY_S = (0.2, 0.5, 1.0, 2.0, 5.0)  # reconnect waits of a listener, the last repeated
COMMIT_CHANNEL = "ontwatch_commit"


def _params(sql: str, params: Sequence[Any] | None) -> tuple[str, Sequence[Any] | None]:
    """The statement for psycopg: without parameters it is sent as written (no % parsing)."""
    if not params:
        return sql, None
    return to_pyformat(sql), params


class SyncConnection:
    """A psycopg connection that speaks the sqlite3 subset the storage functions use.

    `BEGIN IMMEDIATE` starts a transaction and runs the database's fence hook first: if
    the hook raises, the transaction is rolled back before anything was written.
    """

    def __init__(self, conn: psycopg.Connection[Any], fence: Callable[[Any], None] | None):
        self.raw = conn
        self._fence = fence

    def execute(self, sql: str, params: Sequence[Any] | None = ()) -> psycopg.Cursor[Any]:
        """Run one statement; the cursor has fetchall, fetchone and rowcount."""
        if sql.strip().upper() == "BEGIN IMMEDIATE":
            return self._begin()
        query, args = _params(sql, params)
        return self.raw.execute(query, args)  # type: ignore[arg-type]

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> psycopg.Cursor[Any]:
        """Run one statement for many rows, pipelined (one round trip); rowcount is the sum."""
        cur = self.raw.cursor()
        rows = list(rows)
        if rows:
            cur.executemany(to_pyformat(sql), rows)
        return cur

    def _begin(self) -> psycopg.Cursor[Any]:
        cur = self.raw.execute("BEGIN")
        if self._fence is not None:
            try:
                self._fence(self)
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    self.raw.execute("ROLLBACK")
                raise
        return cur


class Rows:
    """What a statement in transaction() returned, read on the writer thread already."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount

    async def fetchall(self) -> list[Any]:
        """The rows not fetched yet."""
        rest, self._next = self._rows[self._next :], len(self._rows)
        return rest

    async def fetchone(self) -> Any:
        """The next row, or None."""
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    async def close(self) -> None:
        """Nothing to release: the rows are in memory."""


class _Statement:
    """Awaitable and `async with`-able, like aiosqlite's execute() result."""

    def __init__(self, run: Callable[[], Awaitable[Rows]]) -> None:
        self._run = run
        self._rows: Rows | None = None

    def __await__(self) -> Generator[Any, None, Rows]:
        return self._get().__await__()

    async def _get(self) -> Rows:
        if self._rows is None:
            self._rows = await self._run()
        return self._rows

    async def __aenter__(self) -> Rows:
        return await self._get()

    async def __aexit__(self, *exc: object) -> None:
        return None


class TxConnection:
    """The connection transaction() yields: aiosqlite-like execute/executemany."""

    def __init__(self, db: PgDatabase, conn: SyncConnection) -> None:
        self._db = db
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Statement:
        """One statement on the writer thread."""
        return _Statement(lambda: self._db._on_writer(_execute, self._conn, sql, params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> _Statement:
        """One statement for many rows on the writer thread."""
        return _Statement(lambda: self._db._on_writer(_executemany, self._conn, sql, rows))


def _execute(conn: SyncConnection, sql: str, params: Sequence[Any]) -> Rows:
    cur = conn.execute(sql, params)
    rows = cur.fetchall() if cur.description is not None else []
    return Rows(rows, cur.rowcount)


def _executemany(conn: SyncConnection, sql: str, rows: Sequence[Sequence[Any]]) -> Rows:
    cur = conn.executemany(sql, rows)
    return Rows([], max(cur.rowcount, 0))


class PgDatabase:
    """PostgreSQL with Database's surface: a writer thread, an async reader, notifications."""

    kind = POSTGRESQL
    # A value the database refuses (too long, bad encoding, a constraint): one job's fault.
    data_errors: tuple[type[BaseException], ...] = (
        psycopg.IntegrityError,
        psycopg.DataError,
        psycopg.ProgrammingError,
    )
    integrity_errors: tuple[type[BaseException], ...] = (psycopg.IntegrityError,)
    # The database itself (connection lost, admin shutdown, disk full): the store is down.
    down_errors: tuple[type[BaseException], ...] = (psycopg.Error, OSError)

    def __init__(self, url: str) -> None:
        self.url = url
        self.write_lock = asyncio.Lock()
        self.fence: Callable[[Any], None] | None = None
        self._writer: SyncConnection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._reader: psycopg.AsyncConnection[Any] | None = None
        self._read_lock = asyncio.Lock()
        self._snapshot: psycopg.AsyncConnection[Any] | None = None
        self._snapshot_lock = asyncio.Lock()
        self._listeners: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"PgDatabase({mask_url(self.url)})"

    @property
    def target(self) -> str:
        """What to name in messages: the URL with its password masked."""
        return mask_url(self.url)

    async def open(self) -> PgDatabase:
        """Connect the writer (migrating the schema first) and the reader."""
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="ontwatch-pg-writer")
        try:
            await self._on_writer(self._connect_writer)
            self._reader = await self._connect_async()
        except BaseException:
            await self.close()  # nothing half-open is left behind
            raise
        return self

    async def close(self) -> None:
        """Stop the listeners, close both connections and the writer thread."""
        for task in list(self._listeners):
            task.cancel()
        for task in list(self._listeners):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for conn in (self._reader, self._snapshot):
            if conn is not None:
                with contextlib.suppress(psycopg.Error):
                    await conn.close()
        self._reader = self._snapshot = None
        if self._writer is not None:
            with contextlib.suppress(psycopg.Error, RuntimeError):
                await self._on_writer(self._writer.raw.close)
            self._writer = None
        if self._thread is not None:
            self._thread.shutdown(wait=False)
            self._thread = None

    # -- writes --------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[TxConnection]:
        """BEGIN (fenced) … COMMIT on the writer, rolled back on any error."""
        async with self.write_lock:
            conn = await self._on_writer(self._writer_conn)
            tx = TxConnection(self, conn)
            try:
                # Inside the try: cancelled while the BEGIN runs on the writer thread, the
                # ROLLBACK queued behind it still ends that transaction.
                await self._on_writer(conn.execute, "BEGIN IMMEDIATE")
                yield tx
            except BaseException as exc:
                with contextlib.suppress(psycopg.Error):
                    await self._on_writer(conn.execute, "ROLLBACK")
                if isinstance(exc, psycopg.ProgrammingError):
                    _raise_if_schema_broken(exc)
                raise
            await self._on_writer(conn.execute, "COMMIT")

    async def run_in_writer(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(connection, *args) on the writer's thread, under the write lock."""
        async with self.write_lock:
            try:
                return await self._on_writer(_with_writer, self, fn, args)
            except psycopg.ProgrammingError as exc:
                _raise_if_schema_broken(exc)
                raise

    async def _on_writer(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._thread is not None, "database is not open"
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def _connect_writer(self) -> SyncConnection:
        raw = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        try:
            # The push promise: a commit returns once durable, whatever the server's default.
            raw.execute("SET synchronous_commit TO on")
            migrate_pg(raw)
        except BaseException:
            raw.close()
            raise
        self._writer = SyncConnection(raw, self._run_fence)
        return self._writer

    def _writer_conn(self) -> SyncConnection:
        """The writer connection, connected again if the last one broke (on the thread)."""
        if self._writer is None or self._writer.raw.closed:
            return self._connect_writer()
        if self._writer.raw.broken:
            with contextlib.suppress(psycopg.Error):
                self._writer.raw.close()
            return self._connect_writer()
        return self._writer

    def _run_fence(self, conn: SyncConnection) -> None:
        if self.fence is not None:
            self.fence(conn)

    # -- reads ---------------------------------------------------------------------------

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a read query (autocommit: each query sees every commit made before it)."""
        query, args = _params(sql, params)
        for attempt in (1, 2):
            conn = await self._reader_conn()
            try:
                cur = await conn.execute(query, args)  # type: ignore[arg-type]
                return await cur.fetchall() if cur.description is not None else []
            except psycopg.OperationalError:
                if attempt == 2 or not conn.broken:
                    raise
                log.warning("read connection to %s lost; connecting again", self.target)
        raise AssertionError("unreachable")

    async def fetch_many(self, queries: Sequence[str]) -> list[list[Any]]:
        """Several reads (no parameters) that see one state: one REPEATABLE READ, READ ONLY
        transaction on a connection of its own (the reader stays in autocommit)."""
        async with self._snapshot_lock:
            if self._snapshot is None or self._snapshot.closed or self._snapshot.broken:
                self._snapshot = await self._connect_async()
                await self._snapshot.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
                await self._snapshot.set_read_only(True)
            conn = self._snapshot
            out: list[list[Any]] = []
            async with conn.transaction():
                for sql in queries:
                    cur = await conn.execute(sql)
                    out.append(await cur.fetchall() if cur.description is not None else [])
            return out

    async def _reader_conn(self) -> psycopg.AsyncConnection[Any]:
        async with self._read_lock:
            if self._reader is None or self._reader.closed or self._reader.broken:
                if self._reader is not None:
                    with contextlib.suppress(psycopg.Error):
                        await self._reader.close()
                self._reader = await self._connect_async()
            return self._reader

    async def _connect_async(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        )

    # -- notifications -------------------------------------------------------------------

    def listen(
        self, channel: str, callback: Callable[[str], Any], *, ready: asyncio.Event | None = None
    ) -> asyncio.Task[None]:
        """Call callback(payload) on the event loop for every NOTIFY on channel.

        A dedicated connection LISTENs; when it is lost it connects again (waits of
        LISTEN_RETRY_S) and then calls callback("") once: notifications sent meanwhile were
        missed, so the listener should reload. `ready` is set once LISTEN is in place.
        Cancel the task (or close the database) to stop.
        """
        if not (channel.isascii() and channel.isidentifier()):
            raise ValueError(f"channel: {channel!r} is not a plain identifier")
        task = asyncio.get_running_loop().create_task(self._listen(channel, callback, ready))
        self._listeners.add(task)
        task.add_done_callback(self._listeners.discard)
        return task

    async def _listen(
        self, channel: str, callback: Callable[[str], Any], ready: asyncio.Event | None
    ) -> None:
        failures = 0
        while True:
            try:
                async with await self._connect_async() as conn:
                    await conn.execute(f"LISTEN {channel}")
                    if ready is not None:
                        ready.set()
                    if failures:
                        await _call(callback, "")
                    failures = 0
                    async for notice in conn.notifies():
                        await _call(callback, notice.payload)
            except (psycopg.Error, OSError) as exc:
                wait = LISTEN_RETRY_S[min(failures, len(LISTEN_RETRY_S) - 1)]
                failures += 1
                log.warning(
                    "listening on %s at %s failed (%s); again in %.1f s",
                    channel,
                    self.target,
                    type(exc).__name__,
                    wait,
                )
                await asyncio.sleep(wait)


async def _call(callback: Callable[[str], Any], payload: str) -> None:
    try:
        result = callback(payload)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("a NOTIFY callback failed")


# Refusals that say the schema or the grants are wrong, not a job's values: no write could pass.
_SCHEMA_BROKEN = frozenset({"42501", "42P01", "42703"})  # no privilege, no table, no column


def _raise_if_schema_broken(exc: psycopg.ProgrammingError) -> None:
    """StoreDown for a broken schema or missing grants; any other ProgrammingError (a value
    psycopg cannot adapt, a type mismatch) is left to raise as it is: one job's fault."""
    if exc.sqlstate in _SCHEMA_BROKEN:
        raise StoreDown(f"{type(exc).__name__}: {exc}") from exc


def _with_writer(db: PgDatabase, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    return fn(db._writer_conn(), *args)
