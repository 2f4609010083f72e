"""An API client on aiohttp's test server, wired to a real engine and SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import ApiDeps, create_app
from monitor.engine import Engine
from storage.queries import Queries
from tests.conftest import ManualClock, sample_onts
from web.auth import AccessConfig, install


def make_deps(
    engine: Engine, reads: Queries, clock: ManualClock, token: str | None = None
) -> ApiDeps:
    """The API's dependencies; a token is access control's (web.auth), see token_client."""
    return ApiDeps(engine=engine, reads=reads, clock=clock, tz=ZoneInfo("Asia/Jakarta"))


@pytest.fixture
async def client(engine: Engine, reads: Queries, clock: ManualClock) -> AsyncIterator[TestClient]:
    await engine.upsert(sample_onts(3))
    async with TestClient(TestServer(create_app(make_deps(engine, reads, clock, None)))) as c:
        yield c


@pytest.fixture
async def token_client(
    engine: Engine, reads: Queries, clock: ManualClock
) -> AsyncIterator[TestClient]:
    await engine.upsert(sample_onts(3))
    app = create_app(make_deps(engine, reads, clock))
    install(app, AccessConfig(admin_token="s3cret-token", clock=clock))
    async with TestClient(TestServer(app)) as c:
        yield c
