"""GET /tiles/{z}/{x}/{y}.png through the service's tile cache, against a local tile server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from api.app import create_app
from maps.render import MapRenderer
from monitor.engine import Engine
from monitor.view import EngineView
from storage.queries import Queries
from tests.api.conftest import make_deps
from tests.conftest import ManualClock
from tests.fakes.tile_server import SilentServer, TileServer, closed_port, make_tile
from web.app import TILES, WebDeps, setup
from web.tiles import grey_tile

WAIT = 0.5  # the route's bounded wait for the tile server, short for the tests
Serve = Callable[[str], Awaitable[TestClient]]


@pytest.fixture
async def serve(
    engine: Engine, reads: Queries, clock: ManualClock, tmp_path: Path
) -> AsyncIterator[Serve]:
    """Start the app with a renderer whose tiles come from the given URL template."""
    opened: list[tuple[TestClient, MapRenderer]] = []

    async def start(url: str) -> TestClient:
        renderer = MapRenderer(
            url, tmp_path / "tiles", user_agent="ontwatch-test/1", tile_timeout=2
        )
        app = create_app(make_deps(engine, reads, clock, None))
        deps = WebDeps(
            view=EngineView(engine),
            reads=reads,
            clock=clock,
            tz=ZoneInfo("Asia/Jakarta"),
            renderer=renderer,
            tile_wait=WAIT,
        )
        setup(app, deps)
        client = TestClient(TestServer(app))
        await client.start_server()
        opened.append((client, renderer))
        return client

    yield start
    for client, renderer in opened:
        await client.close()
        await renderer.close()


async def test_tiles_come_from_the_tile_server_then_from_the_cache(serve: Serve) -> None:
    async with TileServer() as tiles:
        client = await serve(tiles.url_template)
        r = await client.get("/tiles/3/2/1.png")
        assert r.status == 200 and r.content_type == "image/png"
        assert await r.read() == make_tile(3, 2, 1)
        assert "max-age" in r.headers["Cache-Control"]
        assert r.headers["X-Tile-Source"] == "cache"
        assert tiles.count == 1 and tiles.requests[0].user_agent == "ontwatch-test/1"
        for _ in range(3):  # twenty screens asking again: the cache answers
            r = await client.get("/tiles/3/2/1.png")
            assert await r.read() == make_tile(3, 2, 1)
        assert tiles.count == 1


async def test_concurrent_requests_for_one_tile_fetch_it_once(serve: Serve) -> None:
    async with TileServer() as tiles:
        client = await serve(tiles.url_template)
        answers = await asyncio.gather(*(client.get("/tiles/5/10/12.png") for _ in range(10)))
        bodies = {await r.read() for r in answers}
        assert bodies == {make_tile(5, 10, 12)}
        assert tiles.count == 1


async def test_the_cache_outlives_the_tile_server(serve: Serve) -> None:
    async with TileServer() as tiles:
        client = await serve(tiles.url_template)
        assert (await (await client.get("/tiles/4/3/2.png")).read()) == make_tile(4, 3, 2)
    # The server is gone; the tile is still fresh in the cache, another one is not there.
    r = await client.get("/tiles/4/3/2.png")
    assert await r.read() == make_tile(4, 3, 2)


def is_grey(data: bytes) -> bool:
    image = Image.open(BytesIO(data))
    return image.size == (256, 256) and data == grey_tile()


@pytest.mark.parametrize("kind", ["dead", "hanging", "overloaded"])
async def test_a_failing_tile_server_gives_grey_tiles_quickly(serve: Serve, kind: str) -> None:
    silent = SilentServer()
    broken = TileServer(mode="error")
    if kind == "hanging":
        await silent.__aenter__()
        url = silent.url_template
    elif kind == "overloaded":
        await broken.start()
        url = broken.url_template
    else:
        url = f"http://127.0.0.1:{closed_port()}/{{z}}/{{x}}/{{y}}.png"
    try:
        client = await serve(url)
        started = time.monotonic()
        r = await client.get("/tiles/6/50/30.png")
        first = time.monotonic() - started
        assert r.status == 200 and r.content_type == "image/png"
        assert r.headers["X-Tile-Source"] == "fallback"
        assert is_grey(await r.read())
        assert first < WAIT + 2.0  # bounded: never the tile server's pace
        # The fetcher now backs off: the next tiles are grey at once, without asking.
        asked = broken.count if kind == "overloaded" else silent.connections
        started = time.monotonic()
        r = await client.get("/tiles/6/51/30.png")
        assert is_grey(await r.read())
        assert time.monotonic() - started < WAIT
        assert (broken.count if kind == "overloaded" else silent.connections) == asked
        assert client.app[TILES].fallbacks == 2
    finally:
        await broken.stop()
        if kind == "hanging":
            await silent.__aexit__(None, None, None)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/tiles/x/1/1.png", "z"),
        ("/tiles/20/1/1.png", "z"),
        ("/tiles/3/8/1.png", "x"),
        ("/tiles/3/-1/1.png", "x"),
        ("/tiles/3/1/8.png", "y"),
        ("/tiles/3/1/1e2.png", "y"),
        ("/tiles/3/1/99999999999999999999.png", "y"),
    ],
)
async def test_bad_tile_coordinates_are_a_400_naming_the_field(
    serve: Serve, path: str, field: str
) -> None:
    async with TileServer() as tiles:
        client = await serve(tiles.url_template)
        r = await client.get(path)
        assert r.status == 400, path
        body = await r.json()
        assert body["error"] == f"invalid {field}"
        assert tiles.count == 0
