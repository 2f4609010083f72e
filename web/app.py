"""The web pages on the service's aiohttp app: templates, static files, pages, tiles, errors."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
import xstatic.pkg.leaflet as xleaflet
import xstatic.pkg.leaflet_markercluster as xcluster
from aiohttp import web

from maps.render import MapRenderer
from monitor.engine import StoreUnavailable, UnknownOnt
from monitor.ports import ReadModel
from monitor.view import EngineView
from web import texts
from web.tiles import TileRoute

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
LANG_COOKIE = "lang"
# Paths whose errors stay JSON (api/app.py's errors_middleware answers them).
JSON_PREFIXES = ("/api/", "/healthz", "/metrics", "/tiles/")
ROLE_RANK = {"viewer": 0, "operator": 1, "admin": 2}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class WebDeps:
    """What the pages need, wired by ontwatch/."""

    view: EngineView
    reads: ReadModel
    clock: Callable[[], datetime]
    tz: tzinfo
    lang: texts.Lang = "id"
    renderer: MapRenderer | None = None
    tile_wait: float = 2.0  # seconds a browser's tile request may wait for the tile server
    # The event stream's newest frame id when a page is rendered: its stream starts there
    # (?last_id=), so nothing committed between the render and the connect is missed.
    last_event_id: Callable[[], int | None] | None = None


WEB = web.AppKey("web", WebDeps)
TILES = web.AppKey("tiles", TileRoute)


def web_deps(request: web.Request) -> WebDeps:
    """The wired dependencies of the app serving this request."""
    return request.app[WEB]


def request_lang(request: web.Request) -> texts.Lang:
    """The page language: ?lang=, else the lang cookie, else the service's default."""
    default = web_deps(request).lang
    chosen = request.query.get("lang") or request.cookies.get(LANG_COOKIE)
    return texts.lang_of(chosen, default)


def tz_name(tz: tzinfo) -> str:
    """The IANA name of a zone for the browser (UTC when it has none)."""
    return str(getattr(tz, "key", None) or "UTC")


def role_rank(principal: Any) -> int:
    """viewer 0 < operator 1 < admin 2; -1 without a principal (an anonymous caller on a
    public route: the access middleware gives every other request one, "local" on the demo)."""
    if principal is None:
        return -1
    role = getattr(principal, "role", "viewer")
    name = getattr(role, "name", None) if not isinstance(role, str) else role
    return ROLE_RANK.get(str(name or role).lower(), 0)


def logged_in(principal: Any) -> bool:
    """Whether someone logged in (the open loopback demo's "local" admin has no session)."""
    if principal is None:
        return False
    session = getattr(principal, "logged_in", None)
    if session is not None:
        return bool(session)
    return getattr(principal, "name", "local") != "local"


async def page_context(request: web.Request) -> dict[str, Any]:
    """What every template sees: language, labels, zone, who is looking."""
    lang = request_lang(request)
    principal = request.get("principal")
    position = web_deps(request).last_event_id
    return {
        "last_event_id": position() if position is not None else None,
        "lang": lang,
        "other_lang": texts.other(lang),
        "t": texts.labels(lang),
        "js_texts": texts.js_labels(lang),
        "tz_name": tz_name(web_deps(request).tz),
        "page": "plain",
        "kiosk": False,
        "header": None,
        "logged_in": logged_in(principal),
        "principal_name": getattr(principal, "name", ""),
        "can_operate": role_rank(principal) >= ROLE_RANK["operator"],
    }


# -- HTML errors for page routes -----------------------------------------------------------


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    """An HTML error page in the request's language."""
    lang = request_lang(request)
    title = texts.label(lang, "error_title", status=status)
    response = aiohttp_jinja2.render_template(
        "error.html", request, {"status": status, "title": title, "message": message}
    )
    response.set_status(status)
    return response


def _message(lang: texts.Lang, exc: web.HTTPException) -> str:
    status = exc.status_code
    if status == 404:
        return texts.label(lang, "error_404")
    if status == 400:
        return texts.label(lang, "error_400", detail=exc.text or exc.reason)
    if status == 503:
        return texts.label(lang, "error_503")
    return texts.label(lang, "error_other")


@web.middleware
async def html_errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Page routes answer errors with an HTML page; /api/* and friends keep their JSON."""
    if request.path.startswith(JSON_PREFIXES):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status_code < 400 or exc.content_type == "application/json":
            raise  # redirects, and JSON answers of routes outside web/ (e.g. a 401)
        return error_page(request, exc.status_code, _message(request_lang(request), exc))
    except UnknownOnt as exc:
        lang = request_lang(request)
        return error_page(request, 404, texts.label(lang, "error_unknown_ont", id=exc.ont_id))
    except StoreUnavailable:
        return error_page(request, 503, texts.label(request_lang(request), "error_503"))
    except Exception:
        log.exception("unhandled error on page %s %s", request.method, request.path)
        return error_page(request, 500, texts.label(request_lang(request), "error_500"))


async def _static_cache_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Vendor files change only with a package upgrade; ours are revalidated on each load."""
    if not request.path.startswith("/static/") or "Cache-Control" in response.headers:
        return
    vendor = request.path.startswith("/static/vendor/")
    response.headers["Cache-Control"] = "public, max-age=86400" if vendor else "no-cache"


# -- setup ---------------------------------------------------------------------------------


def setup(app: web.Application, deps: WebDeps) -> None:
    """Add the pages, static files (ours and Leaflet's), the tiles route and HTML errors."""
    from web.pages import routes as page_routes

    app[WEB] = deps
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        context_processors=[page_context],
    )
    app.middlewares.append(html_errors_middleware)
    app.on_response_prepare.append(_static_cache_headers)
    # Vendor prefixes first: /static would otherwise claim them.
    app.router.add_static("/static/vendor/leaflet", Path(xleaflet.BASE_DIR), name="leaflet")
    app.router.add_static("/static/vendor/markercluster", Path(xcluster.BASE_DIR), name="cluster")
    app.router.add_static("/static", STATIC, name="static")
    app.add_routes(page_routes)
    if deps.renderer is not None:
        tiles = TileRoute(deps.renderer.fetcher, wait=deps.tile_wait)
        app[TILES] = tiles
        app.router.add_get("/tiles/{z}/{x}/{y}.png", tiles.handle, name="tiles")
