"""A standby answers every write with 503, Retry-After and the leader's name (docs/postgresql.md).

Every method the access table treats as a write (anything but GET, HEAD, OPTIONS) — pushes,
imports, agents' reports, acks, logins — is refused before its handler runs, and so are the
probe agents' reads (their assignment: the agents' desk runs on the leader only): a standby runs
no engine writer, and nothing it stored would be seen by the leader's in-memory state. The
answer tells agents and pollers to retry (they do: after Retry-After, at the same address or
another instance), and names the leader for a person or a load balancer.

Installed just inside the access checks, so that a client without credentials still gets
its 401 or 403 rather than learning where the leader is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from web.access import SAFE_METHODS

RETRY_AFTER_SECONDS = 2

# Who leads, as the role manager knows it: None while this instance leads (writes go
# through), else the leader's name ("" when no instance holds the lease right now).
LeaderOf = Callable[[], str | None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def standby_refusal(leader: str) -> web.Response:
    """The 503 a standby gives a write."""
    where = f"the leader is {leader}" if leader else "no instance leads right now"
    body = {
        "error": f"this instance is a standby and does not accept writes; {where}",
        "detail": {"leader": leader or None, "retry_after": RETRY_AFTER_SECONDS},
        "leader": leader or None,
    }
    return web.json_response(body, status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def middleware(
    leader_of: LeaderOf,
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """The aiohttp middleware refusing writes while leader_of() names another instance."""

    @web.middleware
    async def standby_writes(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method.upper() not in SAFE_METHODS or _agents_desk(request.path):
            leader = leader_of()
            if leader is not None:
                return standby_refusal(leader)
        return await handler(request)

    return standby_writes


def _agents_desk(path: str) -> bool:
    """The probe agents' routes, reads too: their desk runs on the leader only."""
    return path.startswith("/api/agent/")


def install(app: web.Application, leader_of: LeaderOf) -> None:
    """Add the refusal right after the access checks (web/auth.py), before any handler."""
    from web.auth import auth_middleware

    mws = app.middlewares
    at = mws.index(auth_middleware) + 1 if auth_middleware in mws else 0
    mws.insert(at, middleware(leader_of))
