"""The page routes: /, /map, /notifications and /onts/{id}, rendered with the data on first paint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from i18n.words import severity_label, status_label
from monitor.agents import AgentStatus
from monitor.engine import UnknownOnt
from monitor.model import Incident, Ont, OntState, Severity, Status
from monitor.ports import HistoryRow
from monitor.records import agent_state, ont_json
from web import texts
from web.app import WebDeps, request_lang, tz_name, web_deps
from web.display import (
    NoticeRow,
    category_name,
    duration,
    notice_row,
    ont_href,
    reason_text,
    when,
)

routes = web.RouteTableDef()

HEADER_ITEMS = 8
LATEST_ITEMS = 20
OFFLINE_ROWS = 500
WORST_AREAS = 10
PAGE_SIZE = 50
MAX_TRAIL = 100  # pages back that the "newer" link can retrace
HISTORY_ROWS = 100
SQLITE_MAX_INT = 2**63 - 1


async def header(d: WebDeps, lang: texts.Lang, latest: list[NoticeRow] | None = None) -> dict:
    """The header's unread badge and notification dropdown."""
    if latest is None:
        latest = [
            notice_row(n, lang, d.tz) for n in await d.reads.notifications(limit=HEADER_ITEMS)
        ]
    return {"unread": await d.reads.unread_count(), "latest": latest[:HEADER_ITEMS]}


def render(request: web.Request, template: str, page: str, context: dict[str, Any]) -> web.Response:
    """A page with the common context and no caching (it shows live data)."""
    response = aiohttp_jinja2.render_template(template, request, {"page": page, **context})
    response.headers["Cache-Control"] = "no-store"
    return response


# -- dashboard -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfflineRow:
    """One OFF ONT in the dashboard's list."""

    id: str
    name: str
    area: str
    rto: int
    since: str
    since_iso: str
    duration: str
    severity: str
    href: str


def offline_row(ont: Ont, state: OntState, d: WebDeps, lang: texts.Lang) -> OfflineRow:
    """An OFF ONT with how long it has been down."""
    since = state.status_since or state.last_seen
    down = (d.clock() - since) if since is not None else None
    return OfflineRow(
        id=ont.id,
        name=ont.name,
        area=ont.area,
        rto=state.rto_count,
        since=when(since, d.tz),
        since_iso=since.isoformat() if since else "",
        duration=duration(down, lang),
        severity=state.severity.value,
        href=ont_href(ont.id),
    )


@dataclass(frozen=True, slots=True)
class AgentRow:
    """One probe agent in the dashboard's panel (dashboard.js builds the same from the
    event stream's `agents` frame)."""

    name: str
    state: str  # ok, waiting, blind, lost, revoked (monitor.records.agent_state)
    state_label: str
    onts: int
    contact: str  # '4 dtk lalu' / 'never'
    contact_iso: str
    sweep: str
    queue: int


def seconds(value: float | None, lang: texts.Lang) -> str:
    """A short span such as a sweep's: '0,84 dtk' / '0.84 s' below a minute, else a duration."""
    if value is None:
        return "-"
    if value >= 60:
        return duration(value, lang)
    text = f"{max(0.0, value):.2f}"
    unit = texts.labels(lang)["unit_s"]
    return f"{text.replace('.', ',') if lang == 'id' else text} {unit}"


def agent_row(status: AgentStatus, d: WebDeps, lang: texts.Lang) -> AgentRow:
    """An agent with its state in words and how long ago it last reported."""
    state = agent_state(status)
    since = when(status.lost_since, d.tz)
    contact = status.last_contact
    return AgentRow(
        name=status.name,
        state=state,
        state_label=texts.label(lang, f"agent_{state}", since=since),
        onts=status.onts,
        contact=texts.label(lang, "ago", dur=duration(d.clock() - contact, lang))
        if contact is not None
        else texts.label(lang, "never"),
        contact_iso=contact.isoformat() if contact is not None else "",
        sweep=seconds(status.sweep.duration, lang) if status.sweep is not None else "-",
        queue=status.queue_depth,
    )


@routes.get("/")
async def dashboard(request: web.Request) -> web.Response:
    """Counts, incidents by severity, mass outages, worst areas, probe agents, offline list,
    latest alerts."""
    d, lang = web_deps(request), request_lang(request)
    counts = d.view.counts()
    latest = [notice_row(n, lang, d.tz) for n in await d.reads.notifications(limit=LATEST_ITEMS)]
    head = await header(d, lang, latest)
    outages = [
        {
            "area": o.area,
            "count": len(o.members),
            "since": when(o.started_at, d.tz),
            "since_iso": o.started_at.isoformat(),
            "acked": o.acked_at is not None,
        }
        for o in d.view.outages()
    ]
    worst = sorted(
        (a for a in counts.by_area if a.offline or a.critical),
        key=lambda a: (-a.offline, -a.critical, a.area),
    )[:WORST_AREAS]
    offline = d.view.offline()
    rows = [offline_row(o, s, d, lang) for o, s in offline[:OFFLINE_ROWS]]
    context = {
        "counts": counts,
        "unread": head["unread"],
        "outages": outages,
        "worst": worst,
        "offline": rows,
        "offline_more": max(0, len(offline) - OFFLINE_ROWS),
        "agents": [agent_row(a, d, lang) for a in d.view.agents()],
        "latest": latest,
        "header": head,
    }
    return render(request, "dashboard.html", "dashboard", context)


# -- map -------------------------------------------------------------------------------------


def map_record(ont: Ont, state: OntState) -> dict[str, Any]:
    """What map.js draws of one ONT: the fields of GET /api/onts items that markers, tooltips
    and popups use (10,000 of them are in the page, so nothing more)."""
    since = state.status_since
    return {
        **ont.record(),
        "status": state.status.value,
        "rto_count": state.rto_count,
        "severity": state.severity.value,
        "status_since": since.isoformat() if since is not None else None,
        "flapping": state.flapping,
        "category": category_name(state),
    }


@routes.get("/map")
async def map_page(request: web.Request) -> web.Response:
    """The interactive map; every ONT is in the page as JSON, drawn by map.js."""
    d, lang = web_deps(request), request_lang(request)
    items = d.view.items()
    onts = [map_record(o, s) for o, s in items]
    status = request.query.get("status", "").upper()
    context = {
        "onts": onts,
        "areas": d.view.areas(),
        "statuses": [s.value for s in Status],
        "status_filter": status if status in {s.value for s in Status} else "",
        "area_filter": request.query.get("area", ""),
        "search": request.query.get("q", ""),
        "kiosk": request.query.get("kiosk") in {"1", "true", "yes"},
        "cluster": request.query.get("cluster") not in {"0", "false", "no"},
        "focus": request.query.get("ont", ""),
        "no_location": sum(1 for o, _ in items if o.lat is None or o.lon is None),
        "header": await header(d, lang),
    }
    response = render(request, "map.html", "map", context)
    response.enable_compression()  # 10,000 ONTs are ~3 MB of JSON: ~10x smaller gzipped
    return response


# -- notifications ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoticeFilter:
    """The filters of the notifications page, as given in the query."""

    severity: str | None = None
    area: str | None = None
    ont: str | None = None
    unread: bool = False

    def query(self) -> dict[str, str]:
        """The filters as query parameters (only those set)."""
        q = {"severity": self.severity, "area": self.area, "ont": self.ont}
        out = {k: v for k, v in q.items() if v}
        if self.unread:
            out["unread"] = "1"
        return out


def bad_request(field: str, message: str) -> web.HTTPBadRequest:
    """A 400 naming the field (an HTML page on page routes)."""
    return web.HTTPBadRequest(text=f"{field}: {message}", content_type="text/plain")


def parse_filter(request: web.Request) -> NoticeFilter:
    """The page's filters; 400 naming the field when one is not valid."""
    q = request.query
    severity = q.get("severity") or None
    if severity is not None and severity not in {s.value for s in Severity}:
        raise bad_request("severity", "must be ok, warning or critical")
    unread = q.get("unread", "")
    if unread not in {"", "0", "1", "on", "true"}:
        raise bad_request("unread", "must be 1 or 0")
    return NoticeFilter(
        severity=severity,
        area=q.get("area") or None,
        ont=(q.get("ont") or "").strip() or None,
        unread=unread in {"1", "on", "true"},
    )


def parse_cursor(request: web.Request) -> tuple[int | None, list[int]]:
    """The page's cursor (show ids below it) and the cursors of the newer pages before it."""
    raw = request.query.get("before", "")
    before = None
    if raw:
        if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) <= SQLITE_MAX_INT:
            raise bad_request("before", "must be a positive integer")
        before = int(raw)
    trail_raw = request.query.get("trail", "")
    trail = []
    for part in filter(None, trail_raw.split(".")):
        if not (part.isascii() and part.isdigit()) or int(part) > SQLITE_MAX_INT:
            raise bad_request("trail", "must be integers separated by dots")
        trail.append(int(part))
    return before, trail[-MAX_TRAIL:]


def page_href(f: NoticeFilter, before: int | None, trail: list[int]) -> str:
    """The link to one page of the list (0 in the trail stands for the first page)."""
    q = f.query()
    if before:
        q["before"] = str(before)
    if trail:
        q["trail"] = ".".join(str(t) for t in trail[-MAX_TRAIL:])
    return "/notifications" + ("?" + urlencode(q) if q else "")


@routes.get("/notifications")
async def notifications_page(request: web.Request) -> web.Response:
    """The notification history, newest first, a page at a time, filtered."""
    d, lang = web_deps(request), request_lang(request)
    f = parse_filter(request)
    before, trail = parse_cursor(request)
    found = await d.reads.notifications(
        unread=f.unread,
        limit=PAGE_SIZE + 1,
        ont_id=f.ont,
        severity=f.severity,
        area=f.area,
        before=before,
    )
    rows = [notice_row(n, lang, d.tz) for n in found[:PAGE_SIZE]]
    next_href = prev_href = None
    if len(found) > PAGE_SIZE:
        next_href = page_href(f, rows[-1].id, [*trail, before or 0])
    if before is not None:
        back = trail[-1] if trail else 0
        prev_href = page_href(f, back or None, trail[:-1])
    total = await d.reads.notification_count(
        unread=f.unread, ont_id=f.ont, severity=f.severity, area=f.area
    )
    context = {
        "rows": rows,
        "filter": f,
        "severities": [s.value for s in Severity],
        "severity_labels": {s.value: severity_label(s.value, lang) for s in Severity},
        "areas": d.view.areas(),
        "next_href": next_href,
        "prev_href": prev_href,
        "first_page": before is None,
        "total": total,
        "tz_label": tz_name(d.tz),
        "header": await header(d, lang),
    }
    return render(request, "notifications.html", "notifications", context)


# -- one ONT ---------------------------------------------------------------------------------


def navigation_url(lat: float, lon: float) -> str:
    """Google Maps directions to a point (a link only; the service never fetches it)."""
    return f"https://www.google.com/maps/dir/?api=1&destination={lat:.6f},{lon:.6f}"


def history_row(h: HistoryRow, d: WebDeps, lang: texts.Lang) -> dict[str, Any]:
    """One line of an ONT's history, in words."""
    return {
        "id": h.id,
        "when": when(h.at, d.tz),
        "status": h.status,
        "status_label": status_label(h.status, lang),
        "rto": h.rto_count,
        "severity": h.severity,
        "severity_label": severity_label(h.severity, lang),
        "source": h.source,
        "reason": reason_text(h.reason, lang),
    }


def incident_view(
    inc: Incident | None, now: datetime, d: WebDeps, lang: texts.Lang
) -> dict[str, Any] | None:
    """The open incident in words, or None."""
    if inc is None:
        return None
    return {
        "severity": inc.severity.value,
        "severity_label": severity_label(inc.severity.value, lang),
        "opened": when(inc.opened_at, d.tz),
        "open_for": duration(now - inc.opened_at, lang),
        "reason": reason_text(inc.reason, lang),
        "acked": when(inc.acked_at, d.tz) if inc.acked_at else None,
        "acked_by": inc.acked_by,
    }


@routes.get("/onts/{id}")
async def ont_page(request: web.Request) -> web.Response:
    """One ONT: state, incident, mute, location and history."""
    d, lang = web_deps(request), request_lang(request)
    ont_id = request.match_info["id"]
    pair = d.view.get(ont_id)
    if pair is None:
        raise UnknownOnt(ont_id)
    ont, state = pair
    now = d.clock()
    since = state.status_since
    mute = d.view.mute(f"ont:{ont.id}") or (d.view.mute(f"area:{ont.area}") if ont.area else None)
    history = [history_row(h, d, lang) for h in await d.reads.history(ont.id, HISTORY_ROWS)]
    notes = await d.reads.notifications(limit=10, ont_id=ont.id)
    has_pos = ont.lat is not None and ont.lon is not None
    context = {
        "ont": ont,
        "state": state,
        "ont_json": ont_json(ont, state, lang),
        "status_label": status_label(state.status.value, lang),
        "severity_label": severity_label(state.severity.value, lang),
        "category": category_name(state),
        "since": when(since, d.tz),
        "since_for": duration(now - since, lang) if since else "-",
        "last_seen": when(state.last_seen, d.tz),
        "last_on": when(state.last_on, d.tz),
        "incident": incident_view(state.incident, now, d, lang),
        "muted_until": when(mute.until, d.tz) if mute and mute.until > now else None,
        "muted_here": d.view.mute(f"ont:{ont.id}") is not None,
        "history": history,
        "notes": [notice_row(n, lang, d.tz) for n in notes],
        "nav_url": navigation_url(ont.lat, ont.lon) if has_pos else None,  # type: ignore[arg-type]
        "map_href": "/map?" + urlencode({"ont": ont.id}),
        "action_base": "/api/onts/" + ont_href(ont.id).removeprefix("/onts/"),
        "header": await header(d, lang),
    }
    return render(request, "ont.html", "ont", context)
