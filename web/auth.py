"""Who is asking: the principal of each request, from a session cookie, a bearer token, or
the open loopback demo; and the access check against web/access.py's table.

Modes (AccessConfig):
- open (loopback, login not required, no admin token): a request without credentials is
  the admin "local" — the demo.
- open reads (loopback, login not required, ONTWATCH_API_TOKEN set): reads are open (a
  viewer "local"), every write needs credentials, as before pages existed.
- login required (beyond loopback, or ONTWATCH_LOGIN_REQUIRED): everything but the public
  routes needs a session or a token; pages redirect to /login?next=..., the rest answers
  401 JSON. A role too low answers 403 JSON naming the role needed.
Credentials always win: a logged-in viewer is a viewer, even on the open demo.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from aiohttp import web

from storage.users import SessionPolicy, Users
from web.access import PUBLIC, SAFE_METHODS, Role, required_role
from web.security import (
    HostPolicy,
    Refusal,
    check_host,
    security_headers,
    security_middleware,
)

__all__ = ["ACCESS", "LOCAL", "AccessConfig", "Principal", "Role", "install"]

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SESSION_COOKIE = "ontwatch_session"
# Paths answered with JSON (401) rather than a redirect to the login page.
JSON_PREFIXES = ("/api/", "/healthz", "/metrics", "/tiles/", "/static/")
DEFAULT_POLICY = SessionPolicy(idle=timedelta(hours=12), absolute=timedelta(days=7))


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: a user (via a session), a token, or the open demo's "local"."""

    name: str
    role: Role
    via: str = "session"  # "session" | "token" | "open"

    @property
    def logged_in(self) -> bool:
        """Whether this is a user with a session (who can log out)."""
        return self.via == "session"


LOCAL = Principal("local", Role.ADMIN, "open")
_LOCAL_READER = Principal("local", Role.VIEWER, "open")
_ADMIN_TOKEN = Principal("api-token", Role.ADMIN, "token")
_READ_TOKEN = Principal("read-token", Role.VIEWER, "token")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class AccessConfig:
    """The access settings, wired by ontwatch/ (see Service._start_http)."""

    login_required: bool = False  # already True when bound beyond loopback
    admin_token: str | None = None
    read_token: str | None = None
    users: Users | None = None
    policy: SessionPolicy = DEFAULT_POLICY
    clock: Callable[[], datetime] = _utcnow
    hosts: HostPolicy = field(default_factory=lambda: HostPolicy.for_bind("127.0.0.1"))
    trust_proxy: bool = False  # X-Forwarded-Proto / X-Forwarded-For from a reverse proxy
    lang: str = "id"

    def anonymous(self, method: str) -> Principal | None:
        """Who a request without credentials is: the open demo's local admin, a local
        reader when a token guards writes, or nobody when login is required."""
        if self.login_required:
            return None
        if self.admin_token is None:
            return LOCAL
        return _LOCAL_READER if method in SAFE_METHODS else None


ACCESS = web.AppKey("access", AccessConfig)


def is_https(request: web.Request) -> bool:
    """The request reached us over TLS (or a trusted proxy says it did)."""
    if request.secure:
        return True
    cfg = request.app[ACCESS]
    forwarded = request.headers.get("X-Forwarded-Proto", "")
    return cfg.trust_proxy and forwarded.split(",")[0].strip().lower() == "https"


def client_address(request: web.Request) -> str:
    """The client's address (the proxy's X-Forwarded-For last hop only when trusted)."""
    cfg = request.app[ACCESS]
    forwarded = request.headers.get("X-Forwarded-For", "")
    if cfg.trust_proxy and forwarded.strip():
        return forwarded.split(",")[-1].strip()[:64]
    return request.remote or "unknown"


def _bearer(request: web.Request) -> str | None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" and given.strip() else None


def _token_principal(cfg: AccessConfig, given: str) -> Principal | None:
    raw = given.encode()
    if cfg.admin_token and hmac.compare_digest(raw, cfg.admin_token.encode()):
        return _ADMIN_TOKEN
    if cfg.read_token and hmac.compare_digest(raw, cfg.read_token.encode()):
        return _READ_TOKEN
    return None


async def session_principal(request: web.Request) -> Principal | None:
    """The user of the request's session cookie, if it is live."""
    cfg = request.app[ACCESS]
    token = request.cookies.get(SESSION_COOKIE)
    if not token or cfg.users is None or len(token) > 128:
        return None
    user = await cfg.users.session_user(token, cfg.clock(), cfg.policy)
    return Principal(user.name, Role.parse(user.role), "session") if user else None


async def identify(request: web.Request) -> Principal | None:
    """The principal from credentials (bearer first, then the session), or None."""
    cfg = request.app[ACCESS]
    given = _bearer(request)
    if given is not None:
        found = _token_principal(cfg, given)
        if found is not None:
            return found
    return await session_principal(request)


def _agent_call(request: web.Request) -> bool:
    """A probe agent's call (a bearer token on /api/agent/**), which may come by IP.

    Those routes answer only to a valid agent token (api/agents.py) and 401 to anything
    else, so a DNS-rebinding page gains nothing from skipping the Host check there.
    """
    return request.rel_url.raw_path.startswith("/api/agent/") and _bearer(request) is not None


def _wants_page(request: web.Request) -> bool:
    return request.method in ("GET", "HEAD") and not request.path.startswith(JSON_PREFIXES)


def safe_next(value: str | None) -> str:
    """A local path to go to after login; anything else (other sites, //host, /\\host) is '/'."""
    if not value or len(value) > 2000 or not value.startswith("/"):
        return "/"
    if value.startswith(("//", "/\\")) or "\\" in value or any(ord(c) < 32 for c in value):
        return "/"
    if value == "/login" or value.startswith(("/login?", "/logout")):
        return "/"
    return value


def _unauthenticated(request: web.Request) -> web.HTTPException:
    if _wants_page(request):
        target = safe_next(request.rel_url.raw_path_qs)
        return web.HTTPFound("/login?next=" + quote(target, safe="/"))
    stale = SESSION_COOKIE in request.cookies
    error = "session expired, log in again" if stale else "missing or wrong bearer token"
    return Refusal(
        401,
        error,
        {"header": "Authorization", "login": "/login"},
        headers={"WWW-Authenticate": 'Bearer realm="ontwatch"'},
    )


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Check the Host, set request["principal"], enforce the least role of the access table."""
    cfg = request.app[ACCESS]
    known = await identify(request)
    if (known is None or known.via != "token") and not _agent_call(request):
        check_host(request, cfg.hosts)  # DNS rebinding; a valid token is no rebinding page
    principal = known or cfg.anonymous(request.method)
    request["principal"] = principal
    need = required_role(request.method, request.rel_url.raw_path)
    if need is PUBLIC:
        return await handler(request)
    if principal is None:
        raise _unauthenticated(request)
    if principal.role < need:
        raise Refusal(
            403,
            f"role {need.label} needed",
            {"role": need.label, "principal": principal.name, "has": principal.role.label},
        )
    return await handler(request)


def install(app: web.Application, cfg: AccessConfig) -> None:
    """Add the checks (outermost, before every other middleware), headers and login routes."""
    from web.login import routes as login_routes  # login.py imports this module

    app[ACCESS] = cfg
    app.middlewares.insert(0, auth_middleware)
    app.middlewares.insert(0, security_middleware)
    app.on_response_prepare.append(security_headers)
    app.add_routes(login_routes)
