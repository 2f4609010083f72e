"""Copying a SQLite installation into PostgreSQL, and checking the copy row for row.

`ontwatch migrate-db` (ontwatch/migrate_cli.py) runs this. Why each step:

- The source is read from a snapshot (SQLite's backup API, like `ontwatch backup`), brought
  to the newest schema there: the operator's file is never changed, and a service still
  writing to it cannot tear the copy.
- The target gets the newest schema (storage.schema.migrate_pg), then every table in
  dependency order in ONE transaction, so a failure leaves it as it was. A target that
  already holds data is refused unless `replace=True` (`--force`), which empties it in that
  same transaction. A target whose lease a live instance holds is always refused.
- Identity columns (history, notifications, outbox, users ids) are moved past the copied ids,
  or the next insert would collide.
- The check reads both sides in key order and compares counts, a SHA-256 of the rows (the raw
  values with their types, and for onts and ont_state the objects the codec makes of them)
  and the first key that differs. It runs inside the copy's transaction (a mismatch rolls
  the copy back) and on its own (`verify`: an existing copy against the file).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from storage.codec import STATE_COLUMNS, ont_from_row, state_from_row
from storage.schema import MIGRATIONS, migrate_pg
from storage.store import ONT_COLUMNS

_CHUNK = 2000  # rows per fetch: bounded memory whatever the history's size
_TRANSFER_LOCK = 0x6F6E7478  # pg_advisory_xact_lock key: two migrate-db runs do not interleave
_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True, slots=True)
class Table:
    """One table to copy and the columns that order its rows (its primary key)."""

    name: str
    key: tuple[str, ...]


# Every table of the schema, parents before children (ont_state after onts, outbox after
# notifications, sessions after users). tests/ontwatch/test_migrate_db.py checks this list
# against the tables both schemas really have, so a new migration cannot be left out.
TABLES: tuple[Table, ...] = (
    Table("onts", ("id",)),
    Table("ont_state", ("ont_id",)),
    Table("history", ("id",)),
    Table("notifications", ("id",)),
    Table("outbox", ("id",)),
    Table("mutes", ("target",)),
    Table("chat_prefs", ("chat_id",)),
    Table("subscriptions", ("chat_id", "area")),
    Table("mass_outages", ("area",)),
    Table("meta", ("key",)),
    Table("users", ("id",)),
    Table("sessions", ("id_hash",)),
    Table("bot_threads", ("chat_id", "key")),
    Table("bot_status_messages", ("chat_id",)),
    Table("agents", ("name",)),
)
# Tables of the PostgreSQL side that are not an installation's data: never copied.
PG_ONLY_TABLES = frozenset({"schema_version", "leadership"})

# The codec's readers: a table's rows are also compared as the objects the service loads.
_DECODERS: dict[str, tuple[tuple[str, ...], Callable[[Any], Any]]] = {
    "onts": (tuple(c.strip() for c in ONT_COLUMNS.split(",")), ont_from_row),
    "ont_state": (tuple(c.strip() for c in STATE_COLUMNS.split(",")), state_from_row),
}


class TransferError(Exception):
    """A reason the copy or the check could not be made, fit to show (no password in it)."""


@dataclass(frozen=True, slots=True)
class TableCheck:
    """One table's comparison: counts, digests and the first key whose row differs."""

    table: str
    source_rows: int
    target_rows: int
    source_digest: str
    target_digest: str
    first_difference: tuple[Any, ...] | None

    @property
    def ok(self) -> bool:
        return (
            self.source_rows == self.target_rows
            and self.source_digest == self.target_digest
            and self.first_difference is None
        )


@dataclass(frozen=True, slots=True)
class Report:
    """Every table's check."""

    tables: tuple[TableCheck, ...]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    @property
    def rows(self) -> int:
        return sum(t.source_rows for t in self.tables)


class CopyMismatch(TransferError):
    """The copy made in the transaction did not read back equal; it was rolled back."""

    def __init__(self, report: Report) -> None:
        bad = ", ".join(t.table for t in report.tables if not t.ok)
        super().__init__(f"the copy differs from the source in: {bad}; nothing was committed")
        self.report = report


# -- the source: a migrated snapshot of the SQLite file ---------------------------------------


@contextlib.contextmanager
def sqlite_snapshot(path: Path) -> Iterator[sqlite3.Connection]:
    """A read connection on a consistent copy of the file, at the newest schema version.

    The copy lives in a temporary directory removed afterwards; the file itself is opened
    read-only and never written.
    """
    _check_sqlite_file(path)
    with tempfile.TemporaryDirectory(prefix="ontwatch-migrate-") as tmp:
        copy = Path(tmp) / "snapshot.db"
        try:
            src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                dst = sqlite3.connect(copy)
                try:
                    src.backup(dst, pages=1024)
                    _upgrade(dst)
                finally:
                    dst.close()
            finally:
                src.close()
            conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
        except sqlite3.DatabaseError as exc:
            raise TransferError(f"{path}: cannot read it as an ontwatch database: {exc}") from exc
        try:
            yield conn
        finally:
            conn.close()
            shutil.rmtree(tmp, ignore_errors=True)


def _check_sqlite_file(path: Path) -> None:
    if not path.is_file():
        raise TransferError(f"{path}: no such file")
    with path.open("rb") as f:
        if f.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
            raise TransferError(f"{path}: not a SQLite database")


def _upgrade(conn: sqlite3.Connection) -> None:
    """The snapshot at the newest version (the service would do this at its next start)."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise TransferError(
            f"the file is at schema version {version}, newer than this ontwatch "
            f"({len(MIGRATIONS)}): use the ontwatch that wrote it"
        )
    if version == 0 and not _sqlite_tables(conn):
        raise TransferError("the file holds no ontwatch tables (an empty database)")
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")


def _sqlite_tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return {r[0] for r in rows}


def _sqlite_columns(conn: sqlite3.Connection, table: str) -> tuple[str, ...]:
    return tuple(r[1] for r in conn.execute(f'PRAGMA table_info("{table}")').fetchall())


def _sqlite_rows(conn: sqlite3.Connection, table: Table, columns: Sequence[str]) -> Iterator[Any]:
    """The rows in key order, byte-wise for text (as PostgreSQL's COLLATE "C" orders)."""
    order = ", ".join(f'"{k}" COLLATE BINARY' for k in table.key)
    cols = ", ".join(f'"{c}"' for c in columns)
    cur = conn.execute(f'SELECT {cols} FROM "{table.name}" ORDER BY {order}')
    while rows := cur.fetchmany(_CHUNK):
        yield from rows


# -- the target: PostgreSQL -------------------------------------------------------------------


def connect_target(url: str) -> psycopg.Connection[Any]:
    """An autocommit connection to the target (errors as TransferError, password-free)."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise TransferError(f"cannot connect: {scrub(str(exc), url)}") from None


def scrub(message: str, url: str) -> str:
    """The message without the URL's password, should the driver have quoted it."""
    from urllib.parse import parse_qs, urlsplit

    secrets = []
    with contextlib.suppress(ValueError):
        parts = urlsplit(url)
        if parts.password:
            secrets.append(parts.password)
        secrets.extend(parse_qs(parts.query).get("password", []))
    for secret in secrets:
        message = message.replace(secret, "***")
    return message.strip()


def _pg_tables(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
    ).fetchall()
    return {r[0] for r in rows}


def _pg_columns(conn: psycopg.Connection[Any], table: str) -> tuple[str, ...]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return tuple(r[0] for r in rows)


def _pg_rows(conn: psycopg.Connection[Any], table: Table, columns: Sequence[str]) -> Iterator[Any]:
    """The rows in key order, streamed by a server-side cursor (inside a transaction)."""
    query = sql.SQL("SELECT {cols} FROM {table} ORDER BY {order}").format(
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        table=sql.Identifier(table.name),
        order=sql.SQL(", ").join(map(sql.Identifier, table.key)),
    )
    with conn.cursor(name=f"read_{table.name}") as cur:
        cur.itersize = _CHUNK
        cur.execute(query)
        yield from cur


def live_lease_holder(conn: psycopg.Connection[Any]) -> str | None:
    """The instance holding a live lease on the target (storage/leadership.py), if any."""
    if conn.execute("SELECT to_regclass('leadership')").fetchone() == (None,):
        return None
    row = conn.execute("SELECT holder FROM leadership WHERE lease_until > now() LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def _data_tables(conn: psycopg.Connection[Any]) -> list[str]:
    """The copied tables that hold rows on the target."""
    busy = []
    for table in TABLES:
        query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table.name))
        if conn.execute(query).fetchone() == (True,):
            busy.append(table.name)
    return busy


# -- copy and check ---------------------------------------------------------------------------


def copy_installation(
    source: sqlite3.Connection, conn: psycopg.Connection[Any], *, replace: bool
) -> Report:
    """Copy every table in one transaction and check it there; the committed check's report.

    Raises TransferError (nothing written) for a busy or non-empty target, a schema that
    does not match, or a copy that does not read back equal (CopyMismatch).
    """
    migrate_pg(conn)
    _same_tables(source, conn)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_TRANSFER_LOCK,))
        holder = live_lease_holder(conn)
        if holder is not None:
            raise TransferError(
                f"instance {holder!r} holds the lease on the target: stop every ontwatch "
                "instance that uses it first"
            )
        busy = _data_tables(conn)
        if busy and not replace:
            raise TransferError(
                f"the target already holds data ({', '.join(busy)}): nothing copied; "
                "--force replaces it"
            )
        if busy:
            names = sql.SQL(", ").join(sql.Identifier(t.name) for t in TABLES)
            conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(names))
        for table in TABLES:
            _copy_table(source, conn, table)
        _advance_identities(conn)
        report = check(source, conn)
        if not report.ok:
            raise CopyMismatch(report)
    return report


def _same_tables(source: sqlite3.Connection, conn: psycopg.Connection[Any]) -> None:
    """The file has exactly TABLES (a table left out would be data lost), the target at least
    those (other tables of its own are left alone), with the same columns."""
    wanted = {t.name for t in TABLES}
    src, dst = _sqlite_tables(source), _pg_tables(conn)
    if src != wanted:
        raise TransferError(
            f"the file's tables are not the ones this ontwatch copies: {sorted(src ^ wanted)}"
        )
    if wanted - dst:
        raise TransferError(f"the target lacks tables: {sorted(wanted - dst)}")
    for table in TABLES:
        a, b = _sqlite_columns(source, table.name), _pg_columns(conn, table.name)
        if set(a) != set(b):
            raise TransferError(f"table {table.name}: columns differ ({sorted(set(a) ^ set(b))})")


def _copy_table(source: sqlite3.Connection, conn: psycopg.Connection[Any], table: Table) -> None:
    columns = _sqlite_columns(source, table.name)
    statement = sql.SQL("COPY {table} ({cols}) FROM STDIN").format(
        table=sql.Identifier(table.name), cols=sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    try:
        with conn.cursor().copy(statement) as copy:
            for row in _sqlite_rows(source, table, columns):
                copy.write_row(row)
    except psycopg.Error as exc:
        raise TransferError(f"table {table.name}: the target refused a row: {exc}") from None


def _advance_identities(conn: psycopg.Connection[Any]) -> None:
    """Each identity column's next value past the highest copied id."""
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND is_identity = 'YES'"
    ).fetchall()
    for table, column in rows:
        query = sql.SQL(
            "SELECT setval(pg_get_serial_sequence({t}, {c}), COALESCE(MAX({col}), 0) + 1, false)"
            " FROM {table}"
        ).format(
            t=sql.Literal(table),
            c=sql.Literal(column),
            col=sql.Identifier(column),
            table=sql.Identifier(table),
        )
        conn.execute(query)


def verify_installation(source: sqlite3.Connection, conn: psycopg.Connection[Any]) -> Report:
    """Check an existing copy against the file, on one consistent read of the target."""
    _same_tables(source, conn)
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return check(source, conn)


def check(source: sqlite3.Connection, conn: psycopg.Connection[Any]) -> Report:
    """Every table compared row for row (call inside a transaction on conn)."""
    return Report(tuple(_check_table(source, conn, table) for table in TABLES))


def _check_table(
    source: sqlite3.Connection, conn: psycopg.Connection[Any], table: Table
) -> TableCheck:
    columns = _sqlite_columns(source, table.name)
    key_at = [columns.index(k) for k in table.key]
    decode = _decoder(table.name, columns)
    sides = [_Side(), _Side()]
    first: tuple[Any, ...] | None = None
    pairs = zip_longest(_sqlite_rows(source, table, columns), _pg_rows(conn, table, columns))
    for a, b in pairs:
        line_a = sides[0].add(a, decode)
        line_b = sides[1].add(b, decode)
        if first is None and line_a != line_b:
            row = a if a is not None else b
            first = tuple(row[i] for i in key_at)
    return TableCheck(
        table.name,
        sides[0].count,
        sides[1].count,
        sides[0].hexdigest(),
        sides[1].hexdigest(),
        first,
    )


class _Side:
    """One side's running count and digest."""

    def __init__(self) -> None:
        self.count = 0
        self._hash = hashlib.sha256()

    def add(
        self, row: Sequence[Any] | None, decode: Callable[[Sequence[Any]], str]
    ) -> bytes | None:
        if row is None:
            return None
        self.count += 1
        line = (json.dumps([_typed(v) for v in row]) + "\t" + decode(row) + "\n").encode()
        self._hash.update(line)
        return line

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _typed(value: Any) -> Any:
    """A value with its type kept: 1, 1.0 and '1' must not compare equal."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return ["bool", int(value)]
    if isinstance(value, int):
        return ["int", str(value)]
    if isinstance(value, float):
        return ["float", value.hex()]
    if isinstance(value, bytes | bytearray | memoryview):
        return ["bytes", bytes(value).hex()]
    return [type(value).__name__, str(value)]


def _decoder(table: str, columns: Sequence[str]) -> Callable[[Sequence[Any]], str]:
    """The codec's reading of a row (repr of the object), or '' for a table without one."""
    entry = _DECODERS.get(table)
    if entry is None:
        return lambda row: ""
    wanted, fn = entry
    at = [columns.index(c) for c in wanted]

    def decode(row: Sequence[Any]) -> str:
        try:
            return repr(fn([row[i] for i in at]))
        except (ValueError, TypeError, KeyError) as exc:  # a row the service could not load
            return f"undecodable: {type(exc).__name__}"

    return decode
