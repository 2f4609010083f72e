"""A small fake centre for the agent's unit tests: docs/agents.md's two routes on 127.0.0.1.

It keeps what it was sent and answers as told (an HTTP status, Retry-After, want_full), and
it can be stopped and started again on the same port to make "the centre is down" real:
the agent's connection is refused, as it would be. The lead's end-to-end test uses the real
centre; this one exists so the agent's own rules are testable in isolation.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.process import free_port


@dataclass
class FakeCentre:
    """State and behaviour of the fake; `await start()`, `await stop()`."""

    token: str = "agent-token-for-tests"
    agent: str = "POP-T"
    targets: list[tuple[str, str]] = field(default_factory=list)
    refresh_s: int = 300
    down_after: int = 2
    critical_rto: int = 3
    status: int | None = None  # answer reports with this status instead of applying them
    retry_after: str | None = None
    want_full: bool = False
    bad_seqs: set[int] = field(default_factory=set)  # reports answered 400 (a bad field)
    delay: float = 0.0  # seconds each report answer takes (a slow centre)
    reports: list[dict[str, Any]] = field(default_factory=list)  # applied, in arrival order
    received: list[dict[str, Any]] = field(default_factory=list)  # every body, as received
    encodings: list[str] = field(default_factory=list)
    assignment_gets: list[str | None] = field(default_factory=list)  # If-None-Match seen
    unauthorised: int = 0
    port: int = field(default_factory=free_port)
    _seen: set[tuple[str, int]] = field(default_factory=set)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def version(self) -> str:
        text = json.dumps([self.targets, self.refresh_s, self.down_after, self.critical_rto])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def obs(self) -> list[tuple[str, float, int]]:
        """Every applied observation, in the order the reports were applied."""
        return [tuple(o) for r in self.reports for o in r["obs"]]  # type: ignore[misc]

    async def start(self) -> FakeCentre:
        app = web.Application()
        app.router.add_get("/api/agent/assignment", self._assignment)
        app.router.add_post("/api/agent/report", self._report)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _authorised(self, request: web.Request) -> bool:
        ok = request.headers.get("Authorization") == f"Bearer {self.token}"
        self.unauthorised += not ok
        return ok

    async def _assignment(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        tag = f'"{self.version}"'
        self.assignment_gets.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == tag:
            return web.Response(status=304, headers={"ETag": tag})
        body = {
            "agent": self.agent,
            "version": self.version,
            "refresh_s": self.refresh_s,
            "down_after": self.down_after,
            "critical_rto": self.critical_rto,
            "targets": [list(t) for t in self.targets],
        }
        return web.json_response(body, headers={"ETag": tag})

    async def _report(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        self.encodings.append(request.headers.get("Content-Encoding", ""))
        if self.delay:
            await asyncio.sleep(self.delay)
        body = await request.json()  # aiohttp undoes Content-Encoding: gzip
        self.received.append(body)
        if self.status is not None:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return web.json_response(
                {"error": "told to", "detail": "obs"}, status=self.status, headers=headers
            )
        if body["seq"] in self.bad_seqs:
            return web.json_response({"error": "invalid", "detail": "obs[0][1]"}, status=400)
        key = (body["epoch"], body["seq"])
        duplicate = key in self._seen
        if not duplicate:
            self._seen.add(key)
            self.reports.append(body)
        want, self.want_full = self.want_full, False
        return web.json_response(
            {
                "accepted": 0 if duplicate else len(body["obs"]),
                "stale": 0,
                "refused": 0,
                "duplicate": duplicate,
                "want_full": want,
                "assignment": self.version,
            }
        )
