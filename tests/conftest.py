"""Shared fixtures: a real SQLite file per test, an engine on it, and a manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.engine import Engine
from monitor.model import Ont, Thresholds
from monitor.ports import StaticRouter
from storage.database import Database
from storage.queries import Queries
from storage.store import SqliteStore
from tests.pg import pg_server, pg_url  # noqa: F401  (fixtures: a real PostgreSQL server)

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


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
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
