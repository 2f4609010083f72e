"""A real tile server on loopback for tests and benchmarks: generated PNG tiles, counted requests.

Also a server that accepts connections and never answers, and a port nobody listens on,
for the tile-failure tests. Nothing here talks to any host but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import zlib
from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO
from typing import Literal, Self

from aiohttp import web
from PIL import Image, ImageDraw

Mode = Literal["ok", "error", "notfound", "hang"]

LAND = (242, 239, 233)
ROAD = (255, 255, 255)
ROAD_EDGE = (215, 208, 196)
PARK = (205, 235, 192)
WATER = (170, 211, 223)
BUILT = (224, 218, 210)


@lru_cache(maxsize=4096)
def make_tile(z: int, x: int, y: int) -> bytes:
    """A 256 px PNG that looks like a city map; roads line up across tile edges."""
    img = Image.new("RGB", (256, 256), LAND)
    d = ImageDraw.Draw(img)
    gx0, gy0 = x * 256, y * 256  # this tile's origin in world pixels
    block = 64  # world px between minor roads at this zoom
    for bx in range(0, 256, block):
        for by in range(0, 256, block):
            seed = zlib.crc32(f"{z}/{(gx0 + bx) // block}/{(gy0 + by) // block}".encode())
            kind = seed % 11
            fill = PARK if kind == 0 else WATER if kind == 1 else BUILT if kind < 6 else LAND
            d.rectangle((bx + 4, by + 4, bx + block - 5, by + block - 5), fill=fill)
    for off in range(0, 256, block):
        major = ((gx0 + off) // block) % 4 == 0
        d.line((off, 0, off, 255), fill=ROAD_EDGE, width=6 if major else 3)
        d.line((off, 0, off, 255), fill=ROAD, width=4 if major else 1)
        major = ((gy0 + off) // block) % 4 == 0
        d.line((0, off, 255, off), fill=ROAD_EDGE, width=6 if major else 3)
        d.line((0, off, 255, off), fill=ROAD, width=4 if major else 1)
    buf = BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@dataclass(frozen=True, slots=True)
class TileRequest:
    """One request the server received."""

    path: str
    user_agent: str
    if_modified_since: str


class TileServer:
    """aiohttp on 127.0.0.1, a free port, serving /{z}/{x}/{y}.png; mode switches behaviour."""

    def __init__(self, mode: Mode = "ok", *, hang_s: float = 30.0) -> None:
        self.mode: Mode = mode
        self.hang_s = hang_s  # bounded: even a hanging handler ends
        self.requests: list[TileRequest] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url_template(self) -> str:
        """Tile URL template pointing at this server."""
        return f"http://127.0.0.1:{self.port}/{{z}}/{{x}}/{{y}}.png"

    @property
    def count(self) -> int:
        """Tile requests received so far."""
        return len(self.requests)

    async def _tile(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            TileRequest(
                request.path,
                request.headers.get("User-Agent", ""),
                request.headers.get("If-Modified-Since", ""),
            )
        )
        if self.mode == "hang":
            await asyncio.sleep(self.hang_s)
        if self.mode == "error":
            return web.Response(status=503, text="overloaded")
        if self.mode == "notfound":
            raise web.HTTPNotFound()
        try:
            z, x = int(request.match_info["z"]), int(request.match_info["x"])
            y = int(request.match_info["y"])
        except ValueError:
            raise web.HTTPNotFound() from None
        if not (0 <= z <= 19 and 0 <= x < 2**z and 0 <= y < 2**z):
            raise web.HTTPNotFound()
        return web.Response(body=make_tile(z, x, y), content_type="image/png")

    async def start(self) -> Self:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_get("/{z}/{x}/{y}.png", self._tile)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never sends a byte."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def url_template(self) -> str:
        """Tile URL template pointing at this server."""
        return f"http://127.0.0.1:{self.port}/{{z}}/{{x}}/{{y}}.png"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)  # held open, unanswered, until stop()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for w in self._writers:
            w.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)


def closed_port() -> int:
    """A loopback port that was free a moment ago and has no listener."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThreadedTileServer:
    """A TileServer on its own thread and loop, for synchronous callers (staticmap, bench)."""

    def __init__(self) -> None:
        self.server = TileServer()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> TileServer:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self.server.start(), self._loop)
        fut.result(timeout=10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        fut = asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop)
        fut.result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
