"""Request checks every answer needs, before any login question: Host, Origin, Content-Type;
and the security headers on every answer.

- Host: only the names the service answers to (DNS rebinding: a hostile name that resolves
  to this machine must not let a browser page read it). IP literals are always fine (no
  rebinding through them), so are localhost and ONTWATCH_PUBLIC_NAMES. Checked in
  web/auth.py, which knows the tokens: a request with a valid bearer token is a script
  (an agent, a router, Prometheus) and may use any name; a rebinding page knows no token.
- Origin: a state-changing request whose Origin (or, without one, Referer) is another
  origin is refused 403 (a page elsewhere cannot make the browser write here).
- Content-Type: a write with a body must declare JSON, a form, CSV or a spreadsheet; the
  "simple" text/plain a foreign page can send without a preflight is refused 415. A body
  without any Content-Type stays accepted (routers' /tool fetch, documented).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from web.access import SAFE_METHODS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
WRITE_TYPES = frozenset(
    {
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "text/csv",
        "application/csv",
        "text/comma-separated-values",
        "application/vnd.ms-excel",  # how Windows browsers label a .csv file
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
)
LOOPBACK_NAMES = ("localhost",)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Refusal(web.HTTPException):
    """A JSON refusal {"error", "detail"} (same shape as the API's errors)."""

    def __init__(
        self, status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        self.status_code = status
        super().__init__(
            text=json.dumps({"error": error, "detail": detail}),
            content_type="application/json",
            headers=headers,
        )


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """The host names (lower case, no port) this service answers to, besides IP literals."""

    names: frozenset[str]

    @classmethod
    def for_bind(cls, bind_host: str, public_names: Iterable[str] = ()) -> HostPolicy:
        """localhost, the bind address when it is a name, and the configured public names."""
        names = {p[0].rstrip(".") for n in public_names if (p := split_host(n)) is not None}
        names.update(LOOPBACK_NAMES)  # a port given with a name ("noc.example:443") is ignored
        bind = bind_host.strip().lower().strip("[]")
        if bind and not _is_ip(bind):
            names.add(bind)
        return cls(frozenset(names))

    def allows(self, host_header: str | None) -> bool:
        """Whether a Host header names this service (a missing one is an old client: fine)."""
        if host_header is None:
            return True
        parsed = split_host(host_header)
        if parsed is None:
            return False
        name, _ = parsed
        return _is_ip(name) or name.rstrip(".") in self.names


def split_host(value: str) -> tuple[str, int | None] | None:
    """'Name:port' or '[v6]:port' as (lower-case name, port); None when malformed."""
    value = value.strip()
    if not value or any(c in value for c in "/\\@ \t?#"):
        return None
    try:
        parts = urlsplit("//" + value)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), port


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def same_origin(origin: str, host_header: str | None) -> bool:
    """Whether an Origin (or Referer) URL names the host and port this request was sent to.

    The scheme is not compared: behind a TLS proxy the browser says https while the service
    sees http; a Host without a port means the default port of the origin's scheme.
    """
    try:
        url = urlsplit(origin.strip())
        origin_port = url.port
    except ValueError:
        return False
    if url.scheme not in _DEFAULT_PORTS or not url.hostname or host_header is None:
        return False
    target = split_host(host_header)
    if target is None:
        return False
    default = _DEFAULT_PORTS[url.scheme]
    name, port = target
    return url.hostname.lower() == name and (origin_port or default) == (port or default)


def check_host(request: web.Request, hosts: HostPolicy) -> None:
    """Raise a Refusal (421) when the Host header names another service."""
    if not hosts.allows(request.headers.get("Host")):
        raise Refusal(
            421,
            "unknown host name",
            {"header": "Host", "hint": "add the name to ONTWATCH_PUBLIC_NAMES"},
        )


def check_request(request: web.Request) -> None:
    """Raise a Refusal for a cross-origin write or a write of the wrong type."""
    if request.method in SAFE_METHODS:
        return
    host = request.headers.get("Host")
    origin = request.headers.get("Origin")
    source, header = (origin, "Origin") if origin is not None else (None, "")
    if source is None and request.headers.get("Referer"):
        source, header = request.headers["Referer"], "Referer"
    if source is not None and not same_origin(source, host):
        raise Refusal(403, "cross-origin write refused", {"header": header})
    declared = request.headers.get("Content-Type")
    if request.body_exists and declared is not None and not _write_type(request.content_type):
        raise Refusal(
            415,
            "unsupported content type",
            {"header": "Content-Type", "accepted": "JSON, a form, CSV or a spreadsheet"},
        )


def _write_type(mimetype: str) -> bool:
    return mimetype in WRITE_TYPES or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


@web.middleware
async def security_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The Origin and Content-Type checks, before anything else runs."""
    check_request(request)
    return await handler(request)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """CSP, Referrer-Policy and nosniff on every answer (pages, JSON, files, errors, streams)."""
    response.headers.update(HEADERS)
