"""Shared fixtures: a real database per test (SQLite file or PostgreSQL), an engine on it, a clock.

The storage, engine and API suites (tests/storage, tests/monitor, tests/api) run every test
that uses the `db` fixture (directly or through `engine`, `reads`, `client`…) once per
backend, ids `[sqlite]` and `[postgresql]`: the same assertions on both. A test that is about
SQLite by nature (its file, WAL, PRAGMA, file backups) carries `@pytest.mark.sqlite_only`
and runs on SQLite alone. `ONTWATCH_TEST_BACKENDS=sqlite` (or `postgresql`, or both,
comma-separated) picks the backends; the default is BACKENDS.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.engine import Engine
from monitor.model import Ont, Thresholds
from monitor.ports import StaticRouter
from storage.database import Database
from storage.queries import Queries
from storage.store import SqliteStore

# fixtures of a real PostgreSQL server (tests/pg.py), for every test folder
from tests.pg import pg_migrated_url, pg_server, pg_url  # noqa: F401

# The tests own their data: a copy of the older system's 417-ONT export (nothing outside
# the repository is read, so a fresh clone passes on its own).
DATA = Path(__file__).resolve().parent / "data"
HOTSPOT = DATA / "hotspot_onts.json"


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 27, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


# The backends the fixture-based storage, engine and API tests run on (see the docstring).
BACKENDS = ("sqlite", "postgresql")
# The folders whose `db`-based tests run on every backend; elsewhere `db` is SQLite.
BOTH_BACKENDS_IN = frozenset({"storage", "monitor", "api"})
_TESTS = Path(__file__).resolve().parent


def chosen_backends() -> tuple[str, ...]:
    """BACKENDS, or the ones ONTWATCH_TEST_BACKENDS names."""
    raw = os.environ.get("ONTWATCH_TEST_BACKENDS", "")
    chosen = tuple(b.strip() for b in raw.split(",") if b.strip()) or BACKENDS
    unknown = set(chosen) - {"sqlite", "postgresql"}
    if unknown:
        raise pytest.UsageError(f"ONTWATCH_TEST_BACKENDS: unknown backend(s) {sorted(unknown)}")
    return chosen


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only(reason): about SQLite itself (file, WAL, PRAGMA): one backend"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the suites' `db`-based tests once per backend (sqlite_only ones on SQLite)."""
    if "backend" not in metafunc.fixturenames:
        return
    backends = chosen_backends()
    folder = Path(metafunc.definition.path).resolve().relative_to(_TESTS).parts[0]
    if metafunc.definition.get_closest_marker("sqlite_only") or folder not in BOTH_BACKENDS_IN:
        backends = tuple(b for b in backends if b == "sqlite") or ("sqlite",)
    if backends != ("sqlite",):
        metafunc.parametrize("backend", backends, indirect=True, ids=list(backends))


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The backend this test runs on ('sqlite' unless parametrized)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
async def db(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A migrated, empty database: a SQLite file in tmp_path, or a fresh PostgreSQL database."""
    if backend == "postgresql":
        from storage.pg import PgDatabase

        database = await PgDatabase(request.getfixturevalue("pg_migrated_url")).open()
    else:
        database = await Database(tmp_path / "ontwatch.db").open()
    yield database
    await database.close()


@pytest.fixture
async def engine(db: Database, clock: ManualClock) -> AsyncIterator[Engine]:
    eng = Engine(SqliteStore(db), clock=clock, thresholds=Thresholds(), router=StaticRouter([-100]))
    await eng.start()
    yield eng
    await eng.stop()


@pytest.fixture
def reads(db: Database) -> Queries:
    return Queries(db)


def sample_onts(n: int = 3, area: str = "Baciro") -> list[Ont]:
    """n ONTs with loopback IPs in one area."""
    return [
        Ont(id=str(i), name=f"{area} RT {i}", area=area, ip=f"127.0.1.{i}", lat=-7.79, lon=110.38)
        for i in range(1, n + 1)
    ]
