"""Fetching map tiles politely: one shared aiohttp session, timeouts, few connections, a cache.

OpenStreetMap's tile usage policy asks for a User-Agent naming the application, local
caching, no bulk prefetching and backing off when the server struggles; this module does
those things so staticmap never touches the network itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from email.utils import formatdate, parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version

import aiohttp

from maps.tile_cache import CachedTile, TileCache, TileKey

log = logging.getLogger(__name__)

PROJECT_URL = "https://github.com/ontwatch/ontwatch"
MAX_TILE_BYTES = 2 * 2**20  # a 256 px tile is tens of kB; anything huge is not a tile
BACKOFF_FIRST_S = 30.0
BACKOFF_MAX_S = 600.0
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF", b"GIF8")


def default_user_agent() -> str:
    """'ontwatch/<version> (+<project url>)', as OSM's policy asks."""
    try:
        ver = version("ontwatch")
    except PackageNotFoundError:
        ver = "0.0.0"
    return f"ontwatch/{ver} (+{PROJECT_URL})"


class _Trouble(Exception):
    """The server is down, overloaded or slow: a reason to back off."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class TileFetcher:
    """Gets tiles for one render: fresh from the cache, else from the server, else stale."""

    def __init__(
        self,
        tile_url: str,
        cache: TileCache,
        *,
        user_agent: str,
        tile_timeout: float,
        concurrency: int,
    ) -> None:
        if not all(k in tile_url for k in ("{z}", "{x}", "{y}")):
            raise ValueError("tile_url: must contain {z}, {x} and {y}")
        if not user_agent.strip() or user_agent.startswith(("StaticMap", "python-requests")):
            raise ValueError("user_agent: must name the application, e.g. ontwatch/0.1.0")
        if not 1 <= concurrency <= 16:
            raise ValueError("concurrency: must be 1..16")
        if tile_timeout <= 0:
            raise ValueError("tile_timeout: must be positive")
        self.tile_url = tile_url
        self.cache = cache
        self.user_agent = user_agent
        self.tile_timeout = tile_timeout
        self.concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None
        self._sem = asyncio.Semaphore(concurrency)
        self._down_until = 0.0  # monotonic; while in the future, the server is left alone
        self._backoff = BACKOFF_FIRST_S
        self.requests_made = 0  # for tests and metrics

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(
                total=self.tile_timeout, sock_connect=min(self.tile_timeout, 2.0)
            )
            connector = aiohttp.TCPConnector(limit=self.concurrency, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": self.user_agent}, timeout=timeout, connector=connector
            )
        return self._session

    @property
    def backing_off(self) -> bool:
        """True while a recent failure keeps us from asking the server again."""
        return time.monotonic() < self._down_until

    async def get_many(self, keys: Sequence[TileKey], deadline: float) -> dict[TileKey, bytes]:
        """Tiles by key, within deadline seconds; missing keys could not be had."""
        cached = await asyncio.to_thread(self._read_all, keys)
        now = time.time()
        out = {k: t.data for k, t in cached.items() if self.cache.is_fresh(t, now)}
        missing = [k for k in keys if k not in out]
        if missing and not self.backing_off and deadline > 0:
            fetched = await self._fetch_all(missing, cached, deadline)
            out.update(fetched)
        for k in missing:  # a stale tile beats a blank square
            if k not in out and k in cached:
                out[k] = cached[k].data
        return out

    def _read_all(self, keys: Sequence[TileKey]) -> dict[TileKey, CachedTile]:
        found = {}
        for k in keys:
            tile = self.cache.get(k)
            if tile is not None:
                found[k] = tile
        return found

    async def _fetch_all(
        self, keys: list[TileKey], stale: dict[TileKey, CachedTile], deadline: float
    ) -> dict[TileKey, bytes]:
        results: dict[TileKey, bytes] = {}
        answered = 0
        troubles: list[_Trouble] = []

        async def one(key: TileKey) -> None:
            nonlocal answered
            try:
                data = await self._fetch(key, stale.get(key))
            except _Trouble as exc:
                troubles.append(exc)
                return
            answered += 1
            if data is not None:
                results[key] = data

        tasks = [asyncio.create_task(one(k)) for k in keys]
        _, pending = await asyncio.wait(tasks, timeout=deadline)
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            troubles.append(_Trouble(f"{len(pending)} tiles not done within {deadline:.1f}s"))
        self._note_outcome(answered, troubles)
        return results

    def _note_outcome(self, answered: int, troubles: list[_Trouble]) -> None:
        if answered and not troubles:
            if self._down_until:
                log.info("map tiles: server answering again")
            self._down_until = 0.0
            self._backoff = BACKOFF_FIRST_S
            return
        if troubles and not answered:
            wait = max([self._backoff] + [t.retry_after or 0.0 for t in troubles])
            wait = min(wait, BACKOFF_MAX_S)
            self._down_until = time.monotonic() + wait
            self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)
            log.warning(
                "map tiles unavailable (%s); not asking the tile server for %.0fs",
                troubles[0],
                wait,
            )

    async def _fetch(self, key: TileKey, stale: CachedTile | None) -> bytes | None:
        z, x, y = key
        url = self.tile_url.format(z=z, x=x, y=y)
        headers = {}
        if stale is not None:  # revalidate instead of downloading the same bytes again
            headers["If-Modified-Since"] = formatdate(stale.fetched_at, usegmt=True)
        async with self._sem:
            self.requests_made += 1
            try:
                async with self._get_session().get(url, headers=headers) as resp:
                    if resp.status == 200:
                        data = await resp.content.read(MAX_TILE_BYTES + 1)
                        if len(data) > MAX_TILE_BYTES or not data.startswith(_IMAGE_MAGIC):
                            log.warning("map tiles: %s is not an image tile", url)
                            return None
                        await asyncio.to_thread(self.cache.put, key, data)
                        return data
                    if resp.status == 304 and stale is not None:
                        await asyncio.to_thread(self.cache.touch, key)
                        return stale.data
                    if resp.status == 429 or resp.status >= 500:
                        raise _Trouble(
                            f"HTTP {resp.status}", _retry_after(resp.headers.get("Retry-After"))
                        )
                    log.debug("map tiles: HTTP %s for %s", resp.status, url)
                    return None  # 404 and friends: the server works, this tile does not exist
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise _Trouble(f"{type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
