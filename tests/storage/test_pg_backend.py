"""storage.pg and storage.dialect on a real PostgreSQL server (tests/pg.py): what is special to
the second backend — parameter translation, errors mapped as the engine expects, the fence
hook, NOTIFY delivered at commit only, reconnecting after the server dropped a connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from monitor.engine import Engine, StoreUnavailable, UnstorableValue
from monitor.model import Observation, Ont, Status, Thresholds
from monitor.ports import Batch, StaticRouter, StoreDown
from storage import probe
from storage.backup import use_pg_dump
from storage.database import Database, open_database
from storage.dialect import all_digits, is_postgres_url, mask_url, to_pyformat
from storage.pg import COMMIT_CHANNEL, PgDatabase
from storage.schema import MIGRATIONS, PG_BASE_VERSION, PG_MIGRATIONS, PG_SCHEMA, migrate_pg
from storage.store import SqliteStore
from tests.conftest import ManualClock, sample_onts

# -- without a server ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
        ("SELECT '?' , ?", "SELECT '?' , %s"),  # a quoted ? is text, not a parameter
        ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', %s"),  # a doubled quote stays inside
        ("SELECT 5 % 2, ?", "SELECT 5 %% 2, %s"),  # a literal % is doubled for psycopg
        (
            "SELECT '100%' WHERE x LIKE 'a%' AND y = ?",
            "SELECT '100%%' WHERE x LIKE 'a%%' AND y = %s",
        ),
        ('SELECT "odd?col" FROM t WHERE id = ?', 'SELECT "odd?col" FROM t WHERE id = %s'),
    ],
)
def test_placeholders_translated(sql: str, expected: str) -> None:
    assert to_pyformat(sql) == expected


def test_translation_is_cached_per_statement_text() -> None:
    sql = "UPDATE cache_probe SET a = ? WHERE b = ?"
    to_pyformat(sql)
    hits = to_pyformat.cache_info().hits
    assert to_pyformat(sql) == "UPDATE cache_probe SET a = %s WHERE b = %s"
    assert to_pyformat.cache_info().hits == hits + 1


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://ow:s3cret@db.example:5432/ow", "postgresql://ow:***@db.example:5432/ow"),
        ("postgres://ow@db/ow", "postgres://ow@db/ow"),
        (
            "postgresql://db/ow?password=s3cret&sslmode=require",
            "postgresql://db/ow?password=***&sslmode=require",
        ),
        ("postgresql://ow:p%40ss@h/ow", "postgresql://ow:***@h/ow"),
    ],
)
def test_urls_are_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert "s3cret" not in use_pg_dump(url) and "pg_dump" in use_pg_dump(url)


def test_the_target_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_database("postgresql://u@h/d"), PgDatabase)
    assert isinstance(open_database(" POSTGRES://u@h/d"), PgDatabase)
    assert isinstance(open_database(tmp_path / "x.db"), Database)
    assert isinstance(open_database(str(tmp_path / "postgresql.db")), Database)
    assert not is_postgres_url(Path("postgresql://u@h/d"))  # a Path is a file name
    assert open_database(tmp_path / "x.db").kind == "sqlite"
    assert repr(PgDatabase("postgresql://u:pw@h/d")) == "PgDatabase(postgresql://u:***@h/d)"


# -- on the server -------------------------------------------------------------------------


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[PgDatabase]:
    db = await PgDatabase(pg_url).open()
    yield db
    await db.close()


@pytest.fixture
async def pg_engine(pg: PgDatabase, clock: ManualClock) -> AsyncIterator[Engine]:
    eng = Engine(SqliteStore(pg), clock=clock, thresholds=Thresholds(), router=StaticRouter([-100]))
    await eng.start()
    yield eng
    await eng.stop()


async def count(db: PgDatabase, table: str) -> int:
    return int((await db.fetchall(f"SELECT COUNT(*) FROM {table}"))[0][0])


async def test_schema_version_and_migration_run_once(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert migrate_pg(conn) == len(MIGRATIONS)
        assert migrate_pg(conn) == len(MIGRATIONS)  # nothing left to do
        rows = conn.execute("SELECT version FROM schema_version").fetchall()
    assert rows == [(len(MIGRATIONS),)]


async def test_two_instances_migrating_at_once_both_open(pg_url: str) -> None:
    a, b = PgDatabase(pg_url), PgDatabase(pg_url)
    await asyncio.gather(a.open(), b.open())
    try:
        assert await a.fetchall("SELECT version FROM schema_version") == [(len(MIGRATIONS),)]
    finally:
        await a.close()
        await b.close()


async def test_transaction_cursor_and_rowcount(pg: PgDatabase) -> None:
    async with pg.transaction() as conn:
        await conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)", [("a", "1%"), ("b", "2"), ("c", "3")]
        )
        cur = await conn.execute("UPDATE meta SET value = value || '!' WHERE key <> ?", ("a",))
        assert cur.rowcount == 2
        async with conn.execute("SELECT key, value FROM meta ORDER BY key") as rows:
            assert await rows.fetchone() == ("a", "1%")
            assert await rows.fetchall() == [("b", "2!"), ("c", "3!")]
            assert await rows.fetchone() is None
    assert await pg.fetchall("SELECT value FROM meta WHERE value LIKE '%!'") == [("2!",), ("3!",)]


async def test_an_error_in_a_transaction_rolls_all_of_it_back(pg: PgDatabase) -> None:
    with pytest.raises(psycopg.IntegrityError):
        async with pg.transaction() as conn:
            await conn.execute("INSERT INTO meta (key, value) VALUES ('x', '1')")
            await conn.execute("INSERT INTO meta (key, value) VALUES ('x', '2')")
    assert await count(pg, "meta") == 0
    async with pg.transaction() as conn:  # the writer is usable again
        await conn.execute("INSERT INTO meta (key, value) VALUES ('x', '3')")
    assert await pg.fetchall("SELECT value FROM meta") == [("3",)]


async def test_digit_ids_by_regex_as_sqlite_glob(pg: PgDatabase) -> None:
    cond = all_digits("v", "postgresql")
    rows = await pg.fetchall(
        f"SELECT v, {cond} FROM (VALUES ('007'), ('12a'), (''), ('١٢')) AS t(v) ORDER BY v"
    )
    assert dict(rows) == {"007": True, "12a": False, "": True, "١٢": False}


async def test_bad_values_are_one_jobs_fault_and_the_rest_is_stored(
    pg_engine: Engine, pg: PgDatabase
) -> None:
    await pg_engine.upsert(sample_onts(2))
    # A NUL in text (PostgreSQL refuses it) and too large an integer (beyond bigint).
    with pytest.raises(UnstorableValue):
        await pg_engine.upsert([Ont(id="nul", name="bad\x00name", area="Baciro")])
    with pytest.raises(pg.data_errors) as refused:  # beyond bigint: the value, not the store
        async with pg.transaction() as conn:
            await conn.execute("UPDATE ont_state SET rto_count = ? WHERE ont_id = '1'", (2**70,))
    assert not isinstance(refused.value, (OSError, StoreDown))
    # In one batch with good jobs: the halves retry stores the good ones, refuses the bad one.
    good = Ont(id="good", name="fine", area="Baciro")
    results = await asyncio.gather(
        pg_engine.upsert([good]),
        pg_engine.upsert([Ont(id="bad", name="x\x00", area="Baciro")]),
        return_exceptions=True,
    )
    assert not isinstance(results[0], BaseException)
    assert isinstance(results[1], UnstorableValue)
    ids = {r[0] for r in await pg.fetchall("SELECT id FROM onts")}
    assert ids == {"1", "2", "good"}


async def test_a_dropped_writer_connection_is_store_down_then_reconnects(
    pg_engine: Engine, pg: PgDatabase, pg_url: str
) -> None:
    await pg_engine.upsert(sample_onts(1))
    with psycopg.connect(pg_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    assert killed  # the writer and the reader were connected
    with pytest.raises(StoreUnavailable):
        await pg_engine.ingest(Observation.push("1", Status.OFF, 1, pg_engine.clock()))
    # The next write connects again; the read side too.
    await pg_engine.ingest(Observation.push("1", Status.OFF, 1, pg_engine.clock()))
    assert await count(pg, "history") >= 1


async def test_store_commit_maps_a_lost_connection_to_store_down(pg: PgDatabase) -> None:
    store = SqliteStore(pg)

    def boom(_conn: object) -> None:
        raise psycopg.OperationalError("terminating connection due to administrator command")

    pg.fence = boom

    with pytest.raises(StoreDown, match="administrator command"):
        await store.commit(Batch(onts={o.id: o for o in sample_onts(1)}))
    pg.fence = None
    with pytest.raises(StoreDown):
        await probe.write_probe(_Unreachable(), "x")  # type: ignore[arg-type]


class _Unreachable:
    """A database whose writer cannot reach PostgreSQL (a refused connection)."""

    kind = "postgresql"
    down_errors = PgDatabase.down_errors

    async def run_in_writer(self, *_: object) -> None:
        psycopg.connect("postgresql://nobody@127.0.0.1:1/none", connect_timeout=2)


async def test_a_refusing_fence_writes_nothing(pg_engine: Engine, pg: PgDatabase) -> None:
    await pg_engine.upsert(sample_onts(1))
    calls: list[object] = []

    class NotLeader(StoreDown):
        pass

    def fence(conn: object) -> None:
        calls.append(conn)
        conn.execute("INSERT INTO meta (key, value) VALUES ('fence-ran', '1')")  # type: ignore[attr-defined]
        raise NotLeader("not the leader")

    pg.fence = fence
    with pytest.raises(StoreUnavailable, match="not the leader"):
        await pg_engine.upsert(sample_onts(3))
    with pytest.raises(NotLeader):
        async with pg.transaction() as conn:
            await conn.execute("INSERT INTO meta (key, value) VALUES ('small', '1')")
    assert len(calls) == 2
    assert await count(pg, "onts") == 1
    assert await count(pg, "meta") == 0  # not even what the fence itself wrote
    pg.fence = None
    await pg_engine.upsert(sample_onts(3))
    assert await count(pg, "onts") == 3


async def test_notify_is_delivered_at_commit_only(pg: PgDatabase, pg_url: str) -> None:
    got: list[str] = []
    arrived = asyncio.Event()
    ready = asyncio.Event()

    def on_notice(payload: str) -> None:
        got.append(payload)
        arrived.set()

    pg.listen(COMMIT_CHANNEL, on_notice, ready=ready)
    await asyncio.wait_for(ready.wait(), 10)
    with pytest.raises(RuntimeError):
        async with pg.transaction() as conn:
            await conn.execute("SELECT pg_notify(?, ?)", (COMMIT_CHANNEL, "rolled back"))
            raise RuntimeError("abandon")
    async with pg.transaction() as conn:
        await conn.execute("SELECT pg_notify(?, ?)", (COMMIT_CHANNEL, "committed"))
        await asyncio.sleep(0.5)  # the listener is connected: nothing may arrive before COMMIT
        assert got == []
    await asyncio.wait_for(arrived.wait(), 10)
    assert got == ["committed"]


async def test_every_engine_commit_notifies_the_highest_notification_id(
    pg_engine: Engine, pg: PgDatabase
) -> None:
    got: asyncio.Queue[str] = asyncio.Queue()
    ready = asyncio.Event()
    pg.listen(COMMIT_CHANNEL, got.put_nowait, ready=ready)
    await asyncio.wait_for(ready.wait(), 10)
    await pg_engine.upsert(sample_onts(1))
    assert await asyncio.wait_for(got.get(), 10) == "0"  # no notification stored yet
    await pg_engine.ingest(Observation.push("1", Status.OFF, 1, pg_engine.clock()))
    payload = await asyncio.wait_for(got.get(), 10)
    (top,) = (await pg.fetchall("SELECT MAX(id) FROM notifications"))[0]
    assert top is not None and payload == str(top)


async def test_a_listener_reconnects_and_says_so(pg: PgDatabase, pg_url: str) -> None:
    got: asyncio.Queue[str] = asyncio.Queue()
    ready = asyncio.Event()
    pg.listen("ontwatch_test", got.put_nowait, ready=ready)
    await asyncio.wait_for(ready.wait(), 10)
    ready.clear()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        )
    await asyncio.wait_for(ready.wait(), 15)
    assert await asyncio.wait_for(got.get(), 10) == ""  # reconnected: reload, some were missed
    async with pg.transaction() as conn:
        await conn.execute("SELECT pg_notify('ontwatch_test', 'after')")
    assert await asyncio.wait_for(got.get(), 10) == "after"


def test_cli_backup_and_restore_on_postgresql_point_to_pg_dump(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ontwatch.cli import main

    url = pg_url.replace("ontwatch@", "ontwatch:hunter2secret@")  # trust auth ignores it
    monkeypatch.chdir(tmp_path)
    for name in ("ONTWATCH_CONFIG", "ONTWATCH_API_TOKEN", "ONTWATCH_BACKUP_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ONTWATCH_DB", url)
    monkeypatch.setenv("ONTWATCH_HTTP_PORT", "9")  # nothing listens: the CLI reads directly
    assert main(["backup"]) == 1
    err = capsys.readouterr().err
    assert "pg_dump" in err and "ontwatch:***@127.0.0.1" in err and "hunter2" not in err
    (tmp_path / "x.db").write_bytes(b"")
    assert main(["restore", "x.db"]) == 1
    err = capsys.readouterr().err
    assert "pg_restore" in err and "hunter2" not in err
    # The offline list reads PostgreSQL (no SQLite file appears) and names it masked.
    assert main(["list", "--offline"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.db"]


async def test_a_missing_table_is_the_store_down_not_a_jobs_fault(
    pg_engine: Engine, pg: PgDatabase, pg_url: str
) -> None:
    await pg_engine.upsert(sample_onts(1))
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("ALTER TABLE history RENAME TO history_elsewhere")
    with pytest.raises(StoreUnavailable, match="UndefinedTable"):
        await pg_engine.ingest(Observation.push("1", Status.OFF, 1, pg_engine.clock()))
    with pytest.raises(StoreDown, match="UndefinedTable"):
        async with pg.transaction() as conn:
            await conn.execute("DELETE FROM history")


async def test_fetch_many_reads_in_one_snapshot(pg: PgDatabase, tmp_path: Path) -> None:
    got = await pg.fetch_many(
        ["SHOW transaction_isolation", "SHOW transaction_read_only", "SELECT COUNT(*) FROM onts"]
    )
    assert got == [[("repeatable read",)], [("on",)], [(0,)]]
    assert await pg.fetchall("SHOW transaction_isolation") == [("read committed",)]
    lite = await Database(tmp_path / "x.db").open()
    try:
        assert await lite.fetch_many(["SELECT 1", "SELECT COUNT(*) FROM onts"]) == [[(1,)], [(0,)]]
    finally:
        await lite.close()


async def test_store_load_reads_back_what_was_committed(pg_engine: Engine, pg: PgDatabase) -> None:
    await pg_engine.upsert(sample_onts(3))
    await pg_engine.ingest(Observation.push("2", Status.OFF, 4, pg_engine.clock()))
    snap = await SqliteStore(pg).load()
    assert sorted(o.id for o in snap.onts) == ["1", "2", "3"]
    states = {s.ont_id: s for s in snap.states}
    assert states["2"].status is Status.OFF and states["2"].rto_count == 4


async def test_both_dialects_have_the_same_tables_and_columns(
    pg: PgDatabase, tmp_path: Path
) -> None:
    """A migration added to one dialect only (or a column misspelt in PG_SCHEMA) fails here."""
    lite = await Database(tmp_path / "x.db").open()
    try:
        tables = [
            r[0]
            for r in await lite.fetchall(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        sqlite_columns = {
            t: [r[1] for r in await lite.fetchall(f"PRAGMA table_info({t})")] for t in tables
        }
    finally:
        await lite.close()
    rows = await pg.fetchall(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name <> 'schema_version' "
        "AND table_name <> 'leadership' ORDER BY table_name, ordinal_position"
    )
    pg_columns: dict[str, list[str]] = {}
    for table, column in rows:
        pg_columns.setdefault(table, []).append(column)
    assert pg_columns == sqlite_columns


async def test_healthz_says_the_postgresql_database_is_not_writable() -> None:
    from ontwatch.health import database_writable

    reason = await database_writable(_Unreachable())  # type: ignore[arg-type]
    assert reason.startswith("database not writable: OperationalError")


async def test_an_unreachable_server_fails_open_and_leaves_nothing_running() -> None:
    db = PgDatabase("postgresql://nobody:s3cretpw@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(psycopg.OperationalError) as failed:
        await db.open()
    assert "s3cretpw" not in repr(db) and "s3cretpw" not in str(failed.value)
    assert db._thread is None and db._writer is None and db._reader is None


async def test_a_database_at_the_base_version_gets_the_later_migrations(pg_url: str) -> None:
    """Version PG_BASE_VERSION (an installation older than migration 8) is brought up to date
    by the numbered PG_MIGRATIONS, keeping its rows."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(PG_SCHEMA)
        conn.execute("CREATE TABLE schema_version (version BIGINT NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (%s)", (PG_BASE_VERSION,))
        conn.execute("INSERT INTO meta (key, value) VALUES ('kept', 'yes')")
        assert migrate_pg(conn) == len(MIGRATIONS)
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(len(MIGRATIONS),)]
        assert conn.execute("SELECT value FROM meta").fetchall() == [("yes",)]
        later = len(MIGRATIONS) - PG_BASE_VERSION
    assert later == len(PG_MIGRATIONS)
