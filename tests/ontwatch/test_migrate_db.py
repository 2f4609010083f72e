"""`ontwatch migrate-db`: a real installation's SQLite file copied into the real PostgreSQL
test server (tests/pg.py), checked row for row; tampered copies, busy and non-empty targets,
old files and bad input are reported, and no message shows the URL's password."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from operator import attrgetter
from pathlib import Path

import psycopg
import pytest

from monitor.engine import Engine
from monitor.model import Observation, Ont, Status, Thresholds
from monitor.ports import StaticRouter
from ontwatch.cli import main
from storage.agents import Agents
from storage.database import Database
from storage.outbox import BotMessages, ChatPrefs, OutboxStore, Subscription, Subscriptions
from storage.probe import write_probe
from storage.queries import Queries
from storage.schema import MIGRATIONS, migrate_pg
from storage.store import SqliteStore
from storage.transfer import PG_ONLY_TABLES, TABLES
from storage.users import Users
from tests.conftest import ManualClock
from tests.pg import PgServer, free_port

PASSWORD = "hunter2-Secret"  # trust auth ignores it; it must never be printed


GEDONG = [f"g{n}" for n in range(1, 7)]  # an area that goes down at once: a mass outage


def onts() -> list[Ont]:
    """Ids and areas whose byte order and case-blind order differ (B < a < Été)."""
    ids = [("a", "Baciro"), ("B", "Baciro"), ("Été", "Kota"), ("10", "Kota"), ("9", "Umbul")]
    ids += [(g, "Gedong") for g in GEDONG]
    return [
        Ont(id=i, name=f"{area} {i}", area=area, ip=f"127.0.2.{n}", lat=-7.7 - n / 7, lon=110.4)
        for n, (i, area) in enumerate(ids, start=1)
    ]


async def make_installation(path: Path, clock: ManualClock) -> None:
    """What a running service leaves in its file: every table holds rows."""
    db = await Database(path).open()
    engine = Engine(
        SqliteStore(db), clock=clock, thresholds=Thresholds(), router=StaticRouter([-100, 7])
    )
    await engine.start()
    try:
        await engine.upsert(onts())
        for ont_id, status, rto in [
            ("a", Status.OFF, 0),
            ("B", Status.OFF, 3),
            ("10", Status.OFF, 1),
        ]:
            await engine.ingest(Observation.push(ont_id, status, rto, clock()))
        for ont_id in GEDONG:
            await engine.ingest(Observation.push(ont_id, Status.OFF, 0, clock()))
        clock.advance(minutes=20)
        await engine.tick()
        await engine.ingest(Observation.push("a", Status.ON, 0, clock()))
        await engine.ack("B", "budi")
        await engine.mute("area:Umbul", clock() + timedelta(hours=2), "ani")
        await engine.tick()
    finally:
        await engine.stop()
    outbox = OutboxStore(db)
    pending = await outbox.pending()
    await outbox.mark_sent([r.id for r in pending[:2]], 555, clock())
    users = Users(db)
    user = await users.add("Budi", "operator", "a long password 1", clock())
    await users.add("ani", "admin", "a long password 2", clock())
    await users.open_session(user, clock())
    agents = Agents(db)
    await agents.add("pop-a", ["Kota"], [], clock())
    await agents.add("POP-B", ["Baciro"], ["10.2.0.0/16"], clock())
    await Subscriptions(db).subscribe(Subscription(7, "Baciro", "critical"))
    await ChatPrefs(db).set_lang(7, "en")
    messages = BotMessages(db)
    await messages.set_status_message(-100, 41, "status text", clock())
    await messages.set_threads(-100, [("ont:B", 42, True)], [], clock())
    await write_probe(db, "2026-11-27T01:20:00")
    await db.close()


def table_counts(conn: sqlite3.Connection | psycopg.Connection) -> dict[str, int]:  # type: ignore[type-arg]
    return {t.name: conn.execute(f"SELECT count(*) FROM {t.name}").fetchone()[0] for t in TABLES}  # type: ignore[index]


@pytest.fixture
async def installation(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Path]:
    path = tmp_path / "ontwatch.db"
    await make_installation(path, clock)
    yield path


@pytest.fixture
def target(pg_url: str) -> str:
    """The fresh test database's URL, with a password in it (to prove it is masked)."""
    return pg_url.replace("ontwatch@", f"ontwatch:{PASSWORD}@", 1)


def migrate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["migrate-db", *args])
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err
    return code, out, err


def test_tables_are_every_table_of_both_schemas_parents_first(tmp_path: Path, pg_url: str) -> None:
    """TABLES names every table of the SQLite and the PostgreSQL schema, parents first."""
    lite = sqlite3.connect(tmp_path / "fresh.db")
    for script in MIGRATIONS:
        lite.executescript(script)
    names = {r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names == {t.name for t in TABLES}
    with psycopg.connect(pg_url, autocommit=True) as conn:
        migrate_pg(conn)
        pg_names = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema='public'"
            )
        }
        refs = conn.execute(
            "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint"
            " WHERE contype = 'f'"
        ).fetchall()
    assert pg_names - PG_ONLY_TABLES == names
    order = [t.name for t in TABLES]
    assert refs and all(order.index(parent) < order.index(child) for child, parent in refs)


def test_copy_is_checked_and_the_file_left_alone(
    installation: Path, target: str, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = hashlib.sha256(installation.read_bytes()).hexdigest()
    source = sqlite3.connect(installation)
    counts = table_counts(source)
    source.close()
    assert all(counts.values()), f"the installation should fill every table: {counts}"
    code, out, err = migrate(capsys, str(installation), target)
    assert code == 0, err
    total = sum(counts.values())
    assert f"{total} rows in {len(TABLES)} tables copied to" in out
    assert "checked row for row" in out and "ontwatch:***@127.0.0.1" in out
    for name, n in counts.items():
        assert any(
            line.split()[:2] == [name, str(n)] and line.endswith("ok") for line in out.splitlines()
        )
    assert hashlib.sha256(installation.read_bytes()).hexdigest() == before
    code, out, _ = migrate(capsys, "--verify", str(installation), target)
    assert code == 0 and f"{total} rows in {len(TABLES)} tables matches" in out
    with psycopg.connect(pg_url) as conn:
        assert table_counts(conn) == counts
        # identities moved past the copied ids: the service's next insert does not collide
        top = conn.execute("SELECT max(id) FROM notifications").fetchone()[0]
        new = conn.execute(
            "INSERT INTO notifications (created_at, kind, severity, message, payload)"
            " VALUES ('2026-12-01', 'opened', 'warning', 'm', '{}') RETURNING id"
        ).fetchone()[0]
        assert new == top + 1
    code, _, err = migrate(capsys, "--verify", str(installation), target)
    assert code == 1 and "notifications" in err.split("differs from", 1)[1]  # the added row


def test_verify_reports_a_tampered_copy(
    installation: Path, target: str, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert migrate(capsys, str(installation), target)[0] == 0
    assert migrate(capsys, "--verify", str(installation), target)[0] == 0
    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE onts SET lat = lat + 1e-9 WHERE id = 'Été'")
        conn.execute("DELETE FROM history WHERE id = (SELECT max(id) FROM history)")
    code, _, err = migrate(capsys, "--verify", str(installation), target)
    assert code == 1
    lines = {line.split()[0]: line for line in err.splitlines() if line.strip()}
    assert "DIFFERS" in lines["onts"] and "first differing key ('Été',)" in lines["onts"]
    assert "DIFFERS" in lines["history"] and "target:" in lines["history"]
    assert lines["ont_state"].endswith("ok")
    assert "differs from" in err and "onts, history" in err


def test_verify_reports_a_changed_source(
    installation: Path, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert migrate(capsys, str(installation), target)[0] == 0
    with sqlite3.connect(installation) as conn:
        conn.execute("UPDATE users SET role = 'admin' WHERE name = 'Budi'")
    code, _, err = migrate(capsys, "--verify", str(installation), target)
    assert code == 1 and "users" in err.split("differs from", 1)[1]


def test_a_copy_that_reads_back_different_is_rolled_back(
    installation: Path, target: str, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A target that changes rows on the way in (a trigger) is caught before the commit."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        migrate_pg(conn)
        conn.execute(
            "CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER shout BEFORE INSERT ON onts FOR EACH ROW EXECUTE FUNCTION shout()"
        )
    code, _, err = migrate(capsys, str(installation), target)
    assert code == 1
    assert "the copy differs from the source in: onts; nothing was committed" in err
    with psycopg.connect(pg_url) as conn:
        assert set(table_counts(conn).values()) == {0}


def test_a_non_empty_target_is_refused_unless_forced(
    installation: Path, target: str, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert migrate(capsys, str(installation), target)[0] == 0
    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE onts SET name = 'changed on the target'")
    code, _, err = migrate(capsys, str(installation), target)
    assert code == 1 and "already holds data (onts," in err and "--force" in err
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT DISTINCT name FROM onts").fetchall() == [
            ("changed on the target",)
        ]
    code, _, err = migrate(capsys, "--force", str(installation), target)
    assert code == 0, err
    assert migrate(capsys, "--verify", str(installation), target)[0] == 0


async def test_a_target_led_by_a_live_instance_is_refused(
    installation: Path, target: str, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from storage.leadership import Lease

    lease = await Lease(pg_url, "noc-1", ttl=60).open()
    try:
        assert await lease.acquire() is not None
        code, _, err = migrate(capsys, "--force", str(installation), target)
    finally:
        await lease.close()
    assert code == 1 and "instance 'noc-1' holds the lease" in err


def test_an_older_file_is_upgraded_in_the_snapshot_only(
    tmp_path: Path, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        for n, script in enumerate(MIGRATIONS[:6], start=1):
            conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {n};\nCOMMIT;")
        conn.execute("INSERT INTO onts (id, name, updated_at) VALUES ('1', 'old', '2025-01-01')")
    code, out, err = migrate(capsys, str(old), target)
    assert code == 0, err
    assert "1 rows in" in out
    with sqlite3.connect(old) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (6,)


def test_bad_input_is_named(
    tmp_path: Path, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = migrate(capsys, str(tmp_path / "none.db"), target)
    assert code == 1 and "none.db: no such file" in err
    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    code, _, err = migrate(capsys, str(text), target)
    assert code == 1 and "not a SQLite database" in err
    code, _, err = migrate(capsys, str(text), "/var/lib/other.db")
    assert code == 2 and "url: must start with postgresql://" in err
    assert not (tmp_path / "none.db").exists()


def test_connection_errors_mask_the_password(
    installation: Path, pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = f"postgresql://ontwatch:{PASSWORD}@127.0.0.1:{free_port()}/t"
    code, _, err = migrate(capsys, str(installation), closed)
    assert code == 1 and "cannot connect" in err and "ontwatch:***@" in err
    missing = pg_server.url("no_such_db").replace("ontwatch@", f"ontwatch:{PASSWORD}@")
    code, _, err = migrate(capsys, str(installation), missing)
    assert code == 1 and "no_such_db" in err


async def test_the_service_loads_the_same_installation_from_the_copy(
    installation: Path, target: str, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The engine's start-up load and the reads give the same answers on either database."""
    from storage.pg import PgDatabase

    assert migrate(capsys, str(installation), target)[0] == 0
    lite, pg = await Database(installation).open(), await PgDatabase(pg_url).open()
    try:
        loaded = [await SqliteStore(d).load() for d in (lite, pg)]
        listed = [await Queries(d).notifications() for d in (lite, pg)]
        users = [await Users(d).all() for d in (lite, pg)]
        agents = [await Agents(d).all() for d in (lite, pg)]
    finally:
        await lite.close()
        await pg.close()
    lite_load, pg_load = loaded  # the load has no order of its own: the engine keys by id
    assert lite_load.outages and lite_load.mutes
    for part, key in (
        ("onts", "id"),
        ("states", "ont_id"),
        ("mutes", "target"),
        ("outages", "area"),
    ):
        by = attrgetter(key)
        assert sorted(getattr(lite_load, part), key=by) == sorted(getattr(pg_load, part), key=by)
    assert listed[0] and listed[0] == listed[1]
    assert users[0] == users[1] and agents[0] == agents[1]


def test_tables_beyond_the_schema(
    installation: Path, target: str, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A table of the file this ontwatch does not know would be lost: refused. A table of the
    target's own is left alone."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE other_app (x int)")
        conn.execute("INSERT INTO other_app VALUES (7)")
    with sqlite3.connect(installation) as lite:
        lite.execute("CREATE TABLE local_notes (x int)")
    code, _, err = migrate(capsys, str(installation), target)
    assert code == 1 and "not the ones this ontwatch copies: ['local_notes']" in err
    with sqlite3.connect(installation) as lite:
        lite.execute("DROP TABLE local_notes")
    code, _, err = migrate(capsys, str(installation), target)
    assert code == 0, err
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT x FROM other_app").fetchall() == [(7,)]
