"""The HTTP listener's limits: idle and header timeouts, and a connection cap below the fd limit.

An idle socket costs a file descriptor. Without limits, 2,000 sockets that never send a
request exhausted the 1,024 open-file limit: accept() failed in a loop (96 MB of log in
40 s) and every real request timed out. Here:
- aiohttp's keep-alive timer (armed at connection start since aiohttp 3.10) closes a
  connection that has not sent a complete request head within IDLE_TIMEOUT, and an idle
  keep-alive connection IDLE_TIMEOUT after its last answer; request bodies have their own
  deadline (api.app.BODY_TIMEOUT);
- beyond the cap, new connections get an immediate 503 and are closed, so the process
  never runs out of descriptors for its database, its bot client or its probes;
- refusals are logged once, then at most once a minute with a count.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import socket
import time
from dataclasses import dataclass, field

from aiohttp import web

log = logging.getLogger("ontwatch.http")

IDLE_TIMEOUT = 10.0  # seconds: no complete request head yet, or idle between requests
FD_RESERVE_SHARE = 4  # a quarter of the descriptors stays for the database, bot, probes, logs
MIN_CAP = 16
REFUSAL_LOG_EVERY = 60.0


def connection_cap(soft_limit: int | None = None) -> int:
    """How many HTTP connections to hold at most, below the open-file limit."""
    if soft_limit is None:
        soft_limit, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft_limit == resource.RLIM_INFINITY or soft_limit <= 0:
        soft_limit = 65536
    return max(MIN_CAP, soft_limit - soft_limit // FD_RESERVE_SHARE)


_BODY = json.dumps(
    {"error": "too many connections", "detail": "the connection limit is reached; retry later"}
).encode()
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Retry-After: 5\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_BODY), _BODY)
)


class Refused(asyncio.Protocol):
    """A connection over the cap: answered 503 at once and closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Write the 503 and close (the transport flushes before closing)."""
        assert isinstance(transport, asyncio.Transport)
        transport.write(REFUSAL)
        transport.close()


@dataclass
class RefusalLog:
    """Counts refusals; logs the first, then a summary at most every REFUSAL_LOG_EVERY s."""

    cap: int
    every: float = REFUSAL_LOG_EVERY
    total: int = 0
    _unlogged: int = 0
    _last: float | None = field(default=None, repr=False)

    def refused(self) -> None:
        """One more connection refused."""
        self.total += 1
        self._unlogged += 1
        now = time.monotonic()
        if self._last is None or now - self._last >= self.every:
            log.warning(
                "HTTP connection limit of %d reached: %d connection(s) refused with 503 "
                "(%d in all)",
                self.cap,
                self._unlogged,
                self.total,
            )
            self._last, self._unlogged = now, 0


class CappedSite(web.BaseSite):
    """A TCP site that holds at most `cap` connections; the rest are refused with 503."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, cap: int) -> None:
        super().__init__(runner)
        self.host, self.port, self.cap = host, port, cap
        self.refusals = RefusalLog(cap)
        self._pending = 0  # accepted, connection_made not yet run

    @property
    def name(self) -> str:
        """The URL this site serves."""
        return f"http://{self.host}:{self.port}"

    @property
    def sockets(self) -> list[socket.socket]:
        """The listening sockets (to read the bound port)."""
        return [sock for sock in self._server.sockets] if self._server is not None else []

    async def start(self) -> None:
        """Listen; every accepted connection passes the cap first."""
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, self.host, self.port, reuse_address=True
        )

    def open_connections(self) -> int:
        """HTTP connections held now."""
        server = self._runner.server
        return (len(server.connections) if server is not None else 0) + self._pending

    def _protocol(self) -> asyncio.BaseProtocol:
        server = self._runner.server
        assert server is not None
        if self.open_connections() >= self.cap:
            self.refusals.refused()
            return Refused()
        self._pending += 1
        asyncio.get_running_loop().call_soon(self._made)
        return server()

    def _made(self) -> None:
        self._pending -= 1
