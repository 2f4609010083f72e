"""Tiles: cached on disk, fetched politely, and never able to break or stall a render."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from maps.render import TILES_UNAVAILABLE
from maps.style import COLOURS, Category
from maps.tile_cache import TileCache
from maps.tile_fetch import default_user_agent
from maps.view import MapView
from monitor.model import Ont, OntState
from tests.fakes.tile_server import SilentServer, TileServer, closed_port, make_tile
from tests.maps.conftest import NOW, TZ, UA, RendererFactory

RED = COLOURS[Category.OFFLINE]
MINUTE = timedelta(minutes=1)


async def test_second_render_of_a_view_fetches_no_tile(
    tile_server: TileServer, make_renderer: RendererFactory, trio: list[tuple[Ont, OntState]]
) -> None:
    first = make_renderer(tile_server.url_template)
    result = await first.render_map(MapView("all"), trio, now=NOW, tz=TZ)
    fetched = tile_server.count
    assert fetched == result.tiles_wanted > 0
    assert len({r.path for r in tile_server.requests}) == fetched  # no tile asked twice
    # Another minute (so not the short-lived result cache) with the same renderer ...
    again = await first.render_map(MapView("all"), trio, now=NOW + MINUTE, tz=TZ)
    assert again.tiles_missing == 0 and again.png != result.png
    # ... and a fresh renderer on the same cache directory: the disk cache answers.
    second = make_renderer(tile_server.url_template)
    await second.render_map(MapView("all"), trio, now=NOW + 2 * MINUTE, tz=TZ)
    assert tile_server.count == fetched


async def test_requests_name_ontwatch_in_the_user_agent(
    tile_server: TileServer, make_renderer: RendererFactory, trio: list[tuple[Ont, OntState]]
) -> None:
    await make_renderer(tile_server.url_template).render(MapView("all"), trio, now=NOW, tz=TZ)
    assert tile_server.requests
    assert {r.user_agent for r in tile_server.requests} == {UA}
    assert default_user_agent().startswith("ontwatch/")


@pytest.mark.parametrize("bad", ["", "  ", "StaticMap", "python-requests/2.31"])
def test_anonymous_user_agents_are_refused(tmp_path: Path, bad: str) -> None:
    from maps.render import MapRenderer

    with pytest.raises(ValueError, match=r"^user_agent: "):
        MapRenderer("http://127.0.0.1:9/{z}/{x}/{y}.png", tmp_path, user_agent=bad)


async def _render_with_broken_tiles(
    make_renderer: RendererFactory, url: str, trio: list[tuple[Ont, OntState]]
) -> None:
    # A per-tile timeout longer than the budget: only the budget can end the wait.
    renderer = make_renderer(url, tile_timeout=30.0, render_budget=1.5)
    started = time.monotonic()
    result = await asyncio.wait_for(
        renderer.render_map(MapView("all"), trio, now=NOW, tz=TZ), timeout=10
    )
    elapsed = time.monotonic() - started
    assert elapsed < 10  # functional bound: the budget, not the tile timeout, ended the wait
    assert result.tiles_missing == result.tiles_wanted > 0
    assert TILES_UNAVAILABLE in result.notes
    img = Image.open(BytesIO(result.png)).convert("RGB")
    off = trio[0][0]
    x, y = result.plan.frame.lonlat_to_px(off.lon, off.lat)  # type: ignore[arg-type]
    assert img.getpixel((x, y)) == RED  # markers are still drawn on the plain background


async def test_a_server_that_never_answers_still_yields_an_image(
    make_renderer: RendererFactory, trio: list[tuple[Ont, OntState]]
) -> None:
    async with SilentServer() as silent:
        await _render_with_broken_tiles(make_renderer, silent.url_template, trio)
        assert silent.connections >= 1


async def test_a_closed_port_still_yields_an_image(
    make_renderer: RendererFactory, trio: list[tuple[Ont, OntState]]
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/{{z}}/{{x}}/{{y}}.png"
    await _render_with_broken_tiles(make_renderer, url, trio)


async def test_an_overloaded_server_is_left_alone_for_a_while(
    tile_server: TileServer, make_renderer: RendererFactory, trio: list[tuple[Ont, OntState]]
) -> None:
    tile_server.mode = "error"
    renderer = make_renderer(tile_server.url_template)
    first = await renderer.render_map(MapView("all"), trio, now=NOW, tz=TZ)
    assert first.tiles_missing == first.tiles_wanted and tile_server.count > 0
    asked = tile_server.count
    tile_server.mode = "ok"
    second = await renderer.render_map(MapView("all"), trio, now=NOW + MINUTE, tz=TZ)
    assert tile_server.count == asked  # backing off: no new requests
    assert TILES_UNAVAILABLE in second.notes


async def test_missing_tiles_are_not_a_server_failure(
    tile_server: TileServer, make_renderer: RendererFactory, trio: list[tuple[Ont, OntState]]
) -> None:
    tile_server.mode = "notfound"
    renderer = make_renderer(tile_server.url_template)
    await renderer.render(MapView("all"), trio, now=NOW, tz=TZ)
    asked = tile_server.count
    await renderer.render(MapView("all"), trio, now=NOW + MINUTE, tz=TZ)
    assert tile_server.count == 2 * asked  # 404s are not cached, and no backoff


async def test_stale_tiles_are_revalidated_and_used_when_the_server_is_gone(
    make_renderer: RendererFactory, trio: list[tuple[Ont, OntState]]
) -> None:
    async with TileServer() as server:
        url = server.url_template
        stale = make_renderer(url, cache_max_age=timedelta(0))
        await stale.render(MapView("all"), trio, now=NOW, tz=TZ)
        first = server.count
        await stale.render(MapView("all"), trio, now=NOW + MINUTE, tz=TZ)
        assert server.count == 2 * first  # expired: asked again ...
        assert all(r.if_modified_since for r in server.requests[first:])  # ... conditionally
    # Server gone; a new renderer (no backoff memory) draws the stale tiles, not a blank map.
    result = await make_renderer(url, cache_max_age=timedelta(0)).render_map(
        MapView("all"), trio, now=NOW + 2 * MINUTE, tz=TZ
    )
    assert result.tiles_missing == 0 and not result.notes


async def test_concurrent_requests_for_one_view_share_one_render(
    tile_server: TileServer, make_renderer: RendererFactory, trio: list[tuple[Ont, OntState]]
) -> None:
    renderer = make_renderer(tile_server.url_template)
    results = await asyncio.gather(
        *(renderer.render(MapView("all"), trio, now=NOW, tz=TZ) for _ in range(5)),
        renderer.render(MapView("offline"), trio, now=NOW, tz=TZ),
    )
    assert renderer.renders == 2
    assert len(set(results[:5])) == 1 and results[5] != results[0]
    assert len({r.path for r in tile_server.requests}) == tile_server.count  # each tile once


async def test_changed_data_is_not_served_from_the_result_cache(
    tile_server: TileServer, make_renderer: RendererFactory, trio: list[tuple[Ont, OntState]]
) -> None:
    renderer = make_renderer(tile_server.url_template)
    before = await renderer.render(MapView("all"), trio, now=NOW, tz=TZ)
    changed = [(trio[1][0], trio[0][1].evolve(ont_id="on1")), trio[0], trio[2]]  # ON -> OFF
    after = await renderer.render(MapView("all"), changed, now=NOW, tz=TZ)
    assert renderer.renders == 2 and before != after


def test_cache_keeps_fresh_tiles_and_expires_old_ones(tmp_path: Path) -> None:
    cache = TileCache(tmp_path, "http://t/{z}/{x}/{y}.png", max_age_s=60, max_bytes=10**6)
    assert cache.get((1, 0, 0)) is None
    cache.put((1, 0, 0), b"tile")
    tile = cache.get((1, 0, 0))
    assert tile is not None and tile.data == b"tile" and cache.is_fresh(tile)
    old = time.time() - 120
    os.utime(cache.path((1, 0, 0)), (old, old))
    tile = cache.get((1, 0, 0))
    assert tile is not None and not cache.is_fresh(tile)
    cache.touch((1, 0, 0))
    tile = cache.get((1, 0, 0))
    assert tile is not None and cache.is_fresh(tile)


def test_cache_stays_within_its_size_bound_dropping_the_oldest(tmp_path: Path) -> None:
    tile = make_tile(10, 1, 1)
    bound = len(tile) * 10
    cache = TileCache(tmp_path, "http://t/{z}/{x}/{y}.png", max_age_s=60, max_bytes=bound)
    for i in range(30):
        cache.put((10, i, 0), tile)
        t = time.time() - 1000 + i  # strictly increasing fetch times
        os.utime(cache.path((10, i, 0)), (t, t))
    assert cache.size() <= bound
    assert cache.get((10, 29, 0)) is not None  # newest kept
    assert cache.get((10, 0, 0)) is None  # oldest evicted


def test_cache_folders_differ_per_tile_source(tmp_path: Path) -> None:
    a = TileCache(tmp_path, "http://a/{z}/{x}/{y}.png", max_age_s=60, max_bytes=10**6)
    b = TileCache(tmp_path, "http://b/{z}/{x}/{y}.png", max_age_s=60, max_bytes=10**6)
    a.put((1, 1, 1), b"a")
    assert b.get((1, 1, 1)) is None
