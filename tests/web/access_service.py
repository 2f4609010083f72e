"""The real service in this process, on a free loopback port, for the access tests.

Tiles and map images point at a closed local port: nothing leaves the machine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from monitor.model import Ont
from ontwatch.service import Service
from ontwatch.settings import load_settings
from storage.users import Users
from tests.process import free_port

PASSWORD = "s3cret-passw0rd"
ADMIN_TOKEN = "admin-token-for-tests"
READ_TOKEN = "read-token-for-tests"
DEAD_TILES = "http://127.0.0.1:9/{z}/{x}/{y}.png"  # the discard port: nothing answers


def inventory() -> list[Ont]:
    return [
        Ont(
            id=str(i),
            name=f"Baciro RT {i}",
            area="Baciro",
            ip=f"127.0.1.{i}",
            lat=-7.79,
            lon=110.38,
        )
        for i in range(1, 4)
    ]


@asynccontextmanager
async def running(tmp_path: Path, clock: Any = None, **settings: Any) -> AsyncIterator[Service]:
    """A started Service with three ONTs and users viewer, operator and admin."""
    config = {
        "db": tmp_path / "access.db",
        "http_port": free_port(),
        "probe": False,
        "tile_url": DEAD_TILES,
        **settings,
    }
    svc = Service(load_settings(**config), **({"clock": clock} if clock else {}))
    await svc.start()
    try:
        assert svc.engine is not None and svc.db is not None
        await svc.engine.upsert(inventory())
        users = Users(svc.db)
        for role in ("viewer", "operator", "admin"):
            await users.add(role, role, PASSWORD, svc.clock())
        yield svc
    finally:
        await svc.stop()


def base(svc: Service) -> str:
    return f"http://127.0.0.1:{svc.port}"


def session(**kw: Any) -> aiohttp.ClientSession:
    """A client with its own cookie jar (unsafe=True: keep cookies of an IP address)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), **kw)


async def login(
    http: aiohttp.ClientSession, svc: Service, name: str, password: str = PASSWORD
) -> int:
    async with http.post(base(svc) + "/login", json={"username": name, "password": password}) as r:
        await r.read()
        return r.status
