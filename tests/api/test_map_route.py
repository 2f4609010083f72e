"""GET /api/map.png through the API, with a real renderer and a local tile server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from io import BytesIO
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from api.app import create_app
from maps.render import MapRenderer
from monitor.engine import Engine
from storage.queries import Queries
from tests.api.conftest import make_deps
from tests.conftest import ManualClock, sample_onts
from tests.fakes.tile_server import TileServer


@pytest.fixture
async def map_client(
    engine: Engine, reads: Queries, clock: ManualClock, tmp_path: Path
) -> AsyncIterator[tuple[TestClient, TileServer]]:
    await engine.upsert(sample_onts(3))
    async with TileServer() as tiles:
        renderer = MapRenderer(tiles.url_template, tmp_path / "tiles", user_agent="ontwatch-test")
        deps = make_deps(engine, reads, clock, None)
        deps.renderer = renderer
        async with TestClient(TestServer(create_app(deps))) as client:
            yield client, tiles
        await renderer.close()


async def test_map_png(map_client: tuple[TestClient, TileServer]) -> None:
    client, tiles = map_client
    r = await client.get("/api/map.png?view=offline&width=400&height=300")
    assert r.status == 200 and r.content_type == "image/png"
    image = Image.open(BytesIO(await r.read()))
    assert image.size == (400, 300)
    r = await client.get("/api/map.png?area=Baciro")
    assert r.status == 200
    assert tiles.count > 0


@pytest.mark.parametrize(
    ("query", "status", "names"),
    [
        ("width=5000", 400, "width"),
        ("height=abc", 400, "height"),
        ("view=sideways", 400, "view"),
        ("area=Nowhere", 404, "Nowhere"),
        ("ont=999", 404, "999"),
    ],
)
async def test_bad_map_queries(
    map_client: tuple[TestClient, TileServer], query: str, status: int, names: str
) -> None:
    client, _ = map_client
    r = await client.get(f"/api/map.png?{query}")
    assert r.status == status
    body = await r.json()
    assert names in body["error"] + str(body["detail"])
