"""The test PostgreSQL server (tests/pg.py) really runs, isolates tests and keeps fsync on."""

from __future__ import annotations

import os

import psycopg
import pytest

from tests.pg import PgServer


def test_fresh_database_is_empty_and_writable(pg_url: str) -> None:
    """Each test gets its own empty database on the loopback server, as the ontwatch user."""
    assert pg_url.startswith("postgresql://ontwatch@127.0.0.1:")
    with psycopg.connect(pg_url, connect_timeout=10) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE probe (x int)")
        conn.execute("INSERT INTO probe VALUES (1)")
        assert conn.execute("SELECT x FROM probe").fetchall() == [(1,)]


def test_server_settings(pg_server: PgServer) -> None:
    """fsync follows the setting (on by default); the server listens on loopback only."""
    fsync = pg_server.execute("SHOW fsync")[0][0]
    wanted = os.environ.get("ONTWATCH_TEST_PG_FSYNC", "on").lower() not in {"off", "0", "no"}
    assert fsync == ("on" if wanted else "off")
    assert pg_server.execute("SHOW listen_addresses")[0][0] == "127.0.0.1"


def test_dropped_database_is_gone(pg_server: PgServer) -> None:
    """drop_database ends a connection left open and removes the database."""
    name = pg_server.create_database()
    left_open = psycopg.connect(pg_server.url(name), connect_timeout=10)
    try:
        pg_server.drop_database(name)
        rows = pg_server.execute(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        assert rows == []
    finally:
        left_open.close()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_server.url(name), connect_timeout=10).close()
