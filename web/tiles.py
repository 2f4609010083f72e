"""GET /tiles/{z}/{x}/{y}.png: map tiles for the browsers through the service's polite cache.

Twenty screens share one on-disk cache and one fetcher (one request per missing tile, few
connections, backing off when the tile server struggles). A dead or hanging tile server
gives a grey grid tile within a bounded wait, never a broken map.
"""

from __future__ import annotations

import asyncio
import logging
from functools import cache
from io import BytesIO

from aiohttp import web
from PIL import Image, ImageDraw

from maps.style import FALLBACK_BG, GRID_LINE
from maps.tile_cache import TileKey
from maps.tile_fetch import TileFetcher

log = logging.getLogger(__name__)

MAX_ZOOM = 19
TILE_PX = 256
CACHED_FOR = "public, max-age=86400"  # real tiles: a day in the browser
FALLBACK_FOR = "public, max-age=30"  # grey tiles: asked again soon
_MAGIC = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif"}


@cache
def grey_tile() -> bytes:
    """A 256 px plain tile with a coordinate grid: what shows when no tile can be had."""
    img = Image.new("RGB", (TILE_PX, TILE_PX), FALLBACK_BG)
    draw = ImageDraw.Draw(img)
    for off in range(0, TILE_PX, 64):
        draw.line((off, 0, off, TILE_PX), fill=GRID_LINE, width=1)
        draw.line((0, off, TILE_PX, off), fill=GRID_LINE, width=1)
    buf = BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _bad(name: str, message: str) -> web.Response:
    return web.json_response({"error": f"invalid {name}", "detail": message}, status=400)


def parse_key(match: dict[str, str]) -> TileKey | web.Response:
    """The (z, x, y) of a tile path, or a 400 naming the bad field."""
    values: dict[str, int] = {}
    for name in ("z", "x", "y"):
        raw = match.get(name, "")
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 7:
            return _bad(name, f"{name} must be a non-negative integer")
        values[name] = int(raw)
    z = values["z"]
    if z > MAX_ZOOM:
        return _bad("z", f"z must be between 0 and {MAX_ZOOM}")
    side = 2**z
    for name in ("x", "y"):
        if values[name] >= side:
            return _bad(name, f"{name} must be between 0 and {side - 1} at zoom {z}")
    return z, values["x"], values["y"]


def _content_type(data: bytes) -> str:
    for magic, ctype in _MAGIC.items():
        if data.startswith(magic):
            return ctype
    return "image/webp" if data[:4] == b"RIFF" else "application/octet-stream"


class TileRoute:
    """Serves tiles from the renderer's fetcher; one fetch per tile however many ask at once."""

    def __init__(self, fetcher: TileFetcher, *, wait: float = 2.0) -> None:
        if wait <= 0:
            raise ValueError("wait: must be positive")
        self.fetcher = fetcher
        self.wait = wait
        self._inflight: dict[TileKey, asyncio.Task[bytes | None]] = {}
        self.fallbacks = 0  # grey tiles served (tests, metrics)

    async def handle(self, request: web.Request) -> web.Response:
        """The tile, or a grey grid tile when the tile server cannot give it in time."""
        key = parse_key(dict(request.match_info))
        if isinstance(key, web.Response):
            return key
        data = await self.tile(key)
        if data is None:
            self.fallbacks += 1
            return web.Response(
                body=grey_tile(),
                content_type="image/png",
                headers={"Cache-Control": FALLBACK_FOR, "X-Tile-Source": "fallback"},
            )
        return web.Response(
            body=data,
            content_type=_content_type(data),
            headers={"Cache-Control": CACHED_FOR, "X-Tile-Source": "cache"},
        )

    async def tile(self, key: TileKey) -> bytes | None:
        """The tile's bytes (fresh, fetched or stale), or None within the wait."""
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._get(key))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        try:
            # shield: a browser giving up on a tile must not cancel it for the others.
            return await asyncio.wait_for(asyncio.shield(task), self.wait + 0.5)
        except TimeoutError:
            return None

    async def _get(self, key: TileKey) -> bytes | None:
        try:
            tiles = await self.fetcher.get_many([key], self.wait)
        except Exception:  # a broken tile source must never break the map
            log.exception("map tiles: fetching %s failed", key)
            return None
        return tiles.get(key)
