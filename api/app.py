"""The aiohttp application: routes, validation and JSON errors (who may call what: web/auth.py)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from api.records import (
    MAX_ID_LEN,
    AreaRename,
    BulkStatusPush,
    ImportFormatError,
    ImportPlan,
    OntRecord,
    StatusPush,
    field_errors,
    parse_import,
)
from i18n import Lang
from maps.render import MapRenderer
from maps.view import parse_query
from monitor import marks
from monitor.engine import (
    Engine,
    InvalidValue,
    StoreUnavailable,
    UnknownOnt,
    UnstorableValue,
    check_observation,
    check_ont,
)
from monitor.model import EventKind, Observation, Ont, OntState, Severity, Source, Status
from monitor.ports import ReadModel
from monitor.records import decision_json, history_json, notification_json, ont_json
from monitor.view import EngineView

log = logging.getLogger(__name__)

MAX_BODY = 16 * 2**20  # a 10,000-row import or bulk push fits with room to spare
MAX_PUSH_BODY = 64 * 2**10
MAX_BULK_ITEMS = 50_000
MAX_IMPORT_ROWS = 20_000  # rows of one import file (JSON list or CSV), MAX_BODY bytes at most
# An import is checked whole before anything is written, then written in slices of this many
# rows, each one transaction (about 50 ms of engine work on the event loop), so pushes and
# health checks are answered between slices. A crash part-way leaves whole slices stored;
# re-running the same file finishes it (rows already stored are updated, not duplicated).
IMPORT_SLICE = 200
MAX_INT_DIGITS = 64  # longer JSON integers are kept as text (Python's int() has a limit)
BODY_TIMEOUT = 30.0  # seconds a client may take to send its request body
PAGE_DEFAULT = 5_000  # GET /api/onts without ?limit= answers at most this many (Link: next)
PAGE_MAX = 10_000
OFF_LOOP_BYTES = 256 * 2**10  # bodies larger than this are parsed on a thread
OFF_LOOP_ITEMS = 500  # lists longer than this are validated on a thread
SQLITE_MAX_INT = 2**63 - 1  # larger ids cannot exist (and would overflow the driver)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_BULK = TypeAdapter(list[BulkStatusPush])
_ONT_LIST = TypeAdapter(list[OntRecord])


@dataclass(slots=True)
class ApiDeps:
    """What the routes need, wired by ontwatch/."""

    engine: Engine
    reads: ReadModel
    clock: Callable[[], datetime]
    tz: tzinfo
    health: Callable[[], Awaitable[tuple[bool, dict[str, Any]]]] | None = None
    metrics: Callable[[], Awaitable[tuple[bytes, str]]] | None = None
    renderer: MapRenderer | None = None
    extra_routes: list[web.RouteDef] = field(default_factory=list)
    lang: Lang = "id"  # the service language: of reason texts in the JSON
    view: EngineView = field(init=False)  # reads of live state; writes go to the engine

    def __post_init__(self) -> None:
        self.view = EngineView(self.engine)


class ApiError(web.HTTPException):
    """A 4xx/5xx with the JSON error body {"error", "detail"}."""

    def __init__(self, status: int, error: str, detail: Any = None) -> None:
        self.status_code = status
        super().__init__(
            text=json.dumps({"error": error, "detail": detail}),
            content_type="application/json",
        )


DEPS = web.AppKey("deps", ApiDeps)


def deps(request: web.Request) -> ApiDeps:
    """The wired dependencies of the app serving this request."""
    return request.app[DEPS]


# -- middlewares -------------------------------------------------------------------------


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as JSON {"error", "detail"}; nothing escapes as an HTML page."""
    try:
        return await handler(request)
    except ApiError:
        raise
    except web.HTTPRequestEntityTooLarge:
        # aiohttp's error does not carry the limit; the app's client_max_size is MAX_BODY
        raise ApiError(413, "request body too large", {"max_bytes": MAX_BODY}) from None
    except web.HTTPException as exc:
        if exc.status_code < 400:
            raise
        if exc.content_type == "text/html" and not request.path.startswith("/api/"):
            raise  # an HTML error page of a page route (web/app.py)
        raise ApiError(exc.status_code, exc.reason) from None
    except UnknownOnt as exc:
        raise ApiError(404, "unknown ONT", {"id": exc.ont_id}) from None
    except InvalidValue as exc:  # refused by the engine before it changed anything
        detail = [{"field": exc.field, "message": exc.message}]
        raise ApiError(422, f"invalid {exc.field}", detail) from None
    except UnstorableValue as exc:  # this request's data only; the rest of its batch is stored
        raise ApiError(422, "invalid value", str(exc)) from None
    except StoreUnavailable as exc:
        raise ApiError(503, "storage unavailable, nothing was changed", str(exc)) from None
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        raise ApiError(500, "internal error") from None


# -- request parsing ---------------------------------------------------------------------


async def read_limited(request: web.Request, limit: int = MAX_BODY) -> bytes:
    """The raw body, refused with 413 as soon as it passes `limit` (chunked bodies too).

    A client that takes longer than BODY_TIMEOUT to send its body gets 408, so a slow
    sender cannot hold a connection and a handler forever.
    """
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "request body too large", {"max_bytes": limit})
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            async for chunk in request.content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, "request body too large", {"max_bytes": limit})
                parts.append(chunk)
    except TimeoutError:
        raise ApiError(408, "request body too slow", {"timeout_s": BODY_TIMEOUT}) from None
    except web.RequestPayloadError:  # e.g. Content-Encoding: gzip over bytes that are not
        detail = "the body could not be read (is its Content-Encoding right?)"
        raise ApiError(400, "malformed body", detail) from None
    return b"".join(parts)


def _int_or_text(digits: str) -> int | str:
    """JSON integers longer than MAX_INT_DIGITS stay text, so the model names the field."""
    return int(digits) if len(digits) <= MAX_INT_DIGITS else digits


def parse_json(raw: bytes) -> Any:
    """JSON with bounded integers; nesting past the parser's depth is a 400, not a 500."""
    try:
        return json.loads(raw, parse_int=_int_or_text)
    except RecursionError:
        raise ApiError(400, "malformed JSON", "nested too deeply") from None


async def read_body(request: web.Request, limit: int = MAX_BODY) -> Any:
    """The body as JSON, or as a form when form-encoded (e.g. Mikrotik /tool fetch)."""
    ctype = request.content_type
    if ctype == "multipart/form-data":
        if request.content_length is not None and request.content_length > limit:
            raise ApiError(413, "request body too large", {"max_bytes": limit})
        form = await request.post()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    raw = await read_limited(request, limit)
    if ctype == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode(request.charset or "utf-8", errors="replace")))
    if not raw.strip():
        raise ApiError(400, "empty body", "expected a JSON object")
    try:
        if len(raw) > OFF_LOOP_BYTES:
            return await asyncio.to_thread(parse_json, raw)
        return parse_json(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        if ctype in {"application/json", ""} or "=" not in raw.decode("latin-1"):
            raise ApiError(400, "malformed JSON", str(exc)) from None
    # Content-Type missing or text/plain but the body is form-like: some routers send that.
    return dict(parse_qsl(raw.decode("utf-8", errors="replace")))


def validated(model: type[BaseModel] | TypeAdapter[Any], body: Any) -> Any:
    """Validate a body; 422 naming each bad field."""
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(body)
        if not isinstance(body, dict):
            raise ApiError(422, "invalid body", [{"field": "body", "message": "must be an object"}])
        return model.model_validate(body)
    except ValidationError as exc:
        errors = field_errors(exc)
        fields = ", ".join(sorted({e["field"] for e in errors}))
        raise ApiError(422, f"invalid {fields}", errors) from None


async def validated_off_loop(model: TypeAdapter[Any], body: list[Any]) -> Any:
    """validated() for a list; on a thread when it is long, so the loop stays free."""
    if len(body) > OFF_LOOP_ITEMS:
        return await asyncio.to_thread(validated, model, body)
    return validated(model, body)


def _query_int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"invalid {name}", f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise ApiError(400, f"invalid {name}", f"{name} must be between {lo} and {hi}")
    return value


def _query_bool(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "").lower()
    if raw in {"", "0", "false", "no"}:
        return False
    if raw in {"1", "true", "yes"}:
        return True
    raise ApiError(400, f"invalid {name}", f"{name} must be 1 or 0")


def _query_choice(request: web.Request, name: str, choices: list[str]) -> str | None:
    raw = request.query.get(name)
    if not raw:
        return None
    if raw.lower() not in choices:
        raise ApiError(400, f"invalid {name}", f"{name} must be one of {', '.join(choices)}")
    return raw.lower()


def _query_text(request: web.Request, name: str, max_len: int) -> str | None:
    raw = request.query.get(name)
    if not raw:
        return None
    if len(raw) > max_len:
        raise ApiError(400, f"invalid {name}", f"{name} must be at most {max_len} characters")
    return raw


async def json_answer(
    build: Callable[[], Any], *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """Build and serialise an answer on a thread, so a large one never holds the loop."""
    text = await asyncio.to_thread(lambda: json.dumps(build()))
    return web.Response(text=text, status=status, content_type="application/json", headers=headers)


async def json_page(
    request: web.Request, build: Callable[[], list[Any]], cursor: str | None
) -> web.Response:
    """A page of a list; `cursor` (when more may follow) goes in Link rel=next and X-Next-After."""
    headers: dict[str, str] = {}
    if cursor is not None:
        url = request.rel_url.update_query(after=cursor)
        headers = {"Link": f'<{url}>; rel="next"', "X-Next-After": cursor}
    return await json_answer(build, headers=headers)


def _status_filter(request: web.Request) -> Status | None:
    raw = request.query.get("status")
    if not raw:
        return None
    try:
        return Status(raw.upper())
    except ValueError:
        raise ApiError(400, "invalid status", "status must be ON, OFF or UNKNOWN") from None


def fresh_state(d: ApiDeps, stored: OntState) -> OntState:
    """The stored state with the last_seen the engine holds in memory: steady probes' freshness
    is written coarsely (disk wear), so the stored one may be minutes old."""
    live = d.engine.states.get(stored.ont_id)
    seen = live.last_seen if live is not None else None
    if seen is None or (stored.last_seen is not None and stored.last_seen >= seen):
        return stored
    return stored.evolve(last_seen=seen)


# -- routes ------------------------------------------------------------------------------

routes = web.RouteTableDef()


@routes.get("/api/onts")
async def list_onts(request: web.Request) -> web.Response:
    """ONTs with state in id order; ?status=ON|OFF|UNKNOWN&area=&limit=&after=.

    Paged: at most `limit` (default PAGE_DEFAULT) items; when there are more, the answer has
    `Link: <...>; rel="next"` and `X-Next-After` (the cursor for `after=`). An inventory under
    PAGE_DEFAULT gets the whole list, as before.
    """
    d = deps(request)
    limit = _query_int(request, "limit", PAGE_DEFAULT, 1, PAGE_MAX)
    after = _query_text(request, "after", MAX_ID_LEN)
    pairs = await d.reads.onts(
        status=_status_filter(request), area=request.query.get("area"), after=after, limit=limit
    )
    cursor = pairs[-1][0].id if len(pairs) == limit else None
    pairs = [(o, fresh_state(d, s)) for o, s in pairs]
    lang = d.lang
    return await json_page(request, lambda: [ont_json(o, s, lang) for o, s in pairs], cursor)


@routes.get("/api/onts/{id}")
async def get_ont(request: web.Request) -> web.Response:
    """One ONT with its state and recent history."""
    d = deps(request)
    ont_id = request.match_info["id"]
    pair = await d.reads.ont(ont_id)
    if pair is None:
        raise UnknownOnt(ont_id)
    history = await d.reads.history(ont_id, limit=20)
    ont, state = pair[0], fresh_state(d, pair[1])
    return web.json_response(
        {**ont_json(ont, state, d.lang), "history": [history_json(h, d.lang) for h in history]}
    )


@routes.get("/api/onts/{id}/history")
async def ont_history(request: web.Request) -> web.Response:
    """History of one ONT, newest first (?limit=)."""
    d = deps(request)
    ont_id = request.match_info["id"]
    if await d.reads.ont(ont_id) is None:
        raise UnknownOnt(ont_id)
    limit = _query_int(request, "limit", 50, 1, 1000)
    before = _query_int(request, "after", 0, 1, SQLITE_MAX_INT) or None
    rows = await d.reads.history(ont_id, limit, before=before)
    cursor = str(rows[-1].id) if len(rows) == limit else None
    lang = d.lang
    return await json_page(request, lambda: [history_json(h, lang) for h in rows], cursor)


@routes.post("/api/onts")
async def upsert_onts(request: web.Request) -> web.Response:
    """Create or update one ONT (an object) or several (a list); all or nothing."""
    d = deps(request)
    body = await read_body(request)
    many = isinstance(body, list)
    if many and len(body) > MAX_IMPORT_ROWS:  # one transaction: bigger lists go through import
        raise ApiError(413, "too many ONTs", {"max_items": MAX_IMPORT_ROWS})
    records: list[OntRecord] = (
        await validated_off_loop(_ONT_LIST, body) if many else [validated(OntRecord, body)]
    )
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        raise ApiError(422, "invalid id", [{"field": "id", "message": "duplicate ids in request"}])
    now = d.clock()
    baseline = [b for r in records for b in r.baselines(d.tz, now)]
    created = await d.engine.upsert([r.to_ont() for r in records], baseline)
    out = [ont_json(*d.view.get(i), d.lang) for i in ids]  # type: ignore[misc]
    status = 201 if all(created) else 200
    return web.json_response(out if many else out[0], status=status)


@routes.delete("/api/onts/{id}")
async def delete_ont(request: web.Request) -> web.Response:
    """Remove an ONT (its history is kept)."""
    await deps(request).engine.delete(request.match_info["id"])
    return web.json_response({"deleted": request.match_info["id"]})


@routes.post("/api/onts/import")
async def import_onts(request: web.Request) -> web.Response:
    """Import an onts.json list or CSV; per-row report; the good rows are imported together.

    Limits: MAX_BODY bytes and MAX_IMPORT_ROWS rows (413 beyond). The file is parsed and
    checked on a thread and the report serialised on one, so a maximum-size import does
    not hold up pushes or health checks.
    """
    d = deps(request)
    raw = await read_limited(request, MAX_BODY)
    if not raw.strip():
        raise ApiError(400, "empty body", "expected a JSON list or CSV text")
    try:
        sheet = request.query.get("sheet") or None  # .xlsx: the first sheet unless named
        plan = await asyncio.to_thread(parse_import, raw, request.content_type, sheet)
    except UnicodeDecodeError:
        raise ApiError(400, "invalid encoding", "the file must be UTF-8") from None
    except (ImportFormatError, ValueError, RecursionError) as exc:
        detail = str(exc) if not isinstance(exc, RecursionError) else "nested too deeply"
        raise ApiError(400, "invalid import file", detail) from None
    if len(plan.rows) > MAX_IMPORT_ROWS:
        raise ApiError(413, "too many rows", {"max_rows": MAX_IMPORT_ROWS, "rows": len(plan.rows)})
    dry_run = _query_bool(request, "dry_run")  # the report only; nothing is written
    report = await apply_import(d.engine, plan, d.tz, d.clock(), dry_run=dry_run)
    return await json_answer(lambda: report)


async def apply_import(
    engine: Engine, plan: ImportPlan, tz: tzinfo, now: datetime, *, dry_run: bool = False
) -> dict[str, Any]:
    """Write an import plan through the engine (unless a dry run) and build its report."""
    if dry_run:
        known = set(EngineView(engine).ont_ids())
        created = [r.id not in known for r in plan.records]
        return await asyncio.to_thread(plan.report, created, dry_run=True)

    items = await asyncio.to_thread(_prepare_import, plan, tz, now)  # refusals: nothing written
    created: list[bool] = []
    for start in range(0, len(items), IMPORT_SLICE):  # the loop is free between slices
        part = items[start : start + IMPORT_SLICE]
        try:
            created += await engine.upsert([o for o, _ in part], [b for _, bs in part for b in bs])
        except (StoreUnavailable, UnstorableValue) as exc:
            if not created:
                raise
            detail = {"stored_rows": len(created), "rows": len(items), "reason": str(exc)}
            error = "the import stopped part-way; re-run it to finish"
            raise ApiError(503, error, detail) from None
    return await asyncio.to_thread(plan.report, created)


def _prepare_import(
    plan: ImportPlan, tz: tzinfo, now: datetime
) -> list[tuple[Ont, list[Observation]]]:
    """Each good row as an ONT and its baseline, checked as the engine will (on a thread)."""
    items = []
    for record in plan.records:
        ont, baseline = record.to_ont(), list(record.baselines(tz, now))
        check_ont(ont)
        for obs in baseline:
            check_observation(obs)
        items.append((ont, baseline))
    return items


@routes.post("/api/ont-status/{id}")
async def push_status(request: web.Request) -> web.Response:
    """A status push for one ONT; answered after it is durably stored."""
    d = deps(request)
    ont_id = request.match_info["id"]
    push: StatusPush = validated(StatusPush, await read_body(request, MAX_PUSH_BODY))
    source = Source.SIMULATE if request.query.get("source") == "simulate" else Source.PUSH
    obs = Observation.push(ont_id, push.status, push.rto_count, d.clock(), source=source)
    decision = await d.engine.ingest(obs)
    return web.json_response({"id": ont_id, **decision_json(decision, d.lang)})


@routes.post("/api/ont-status")
async def push_status_bulk(request: web.Request) -> web.Response:
    """Many pushes in one request (pollers); unknown ids are reported, the rest applied."""
    d = deps(request)
    body = await read_body(request)
    if isinstance(body, dict) and isinstance(body.get("updates"), list):
        body = body["updates"]
    if not isinstance(body, list):
        raise ApiError(422, "invalid body", [{"field": "body", "message": "must be a list"}])
    if len(body) > MAX_BULK_ITEMS:
        raise ApiError(413, "too many updates", {"max_items": MAX_BULK_ITEMS})
    pushes: list[BulkStatusPush] = await validated_off_loop(_BULK, body)
    now = d.clock()
    results = await d.engine.ingest_many(
        [Observation.push(p.id, p.status, p.rto_count, now) for p in pushes]
    )
    applied, unknown = [], []
    for push, result in zip(pushes, results, strict=True):
        if isinstance(result, UnknownOnt):
            unknown.append(push.id)
        else:
            s = result.state
            applied.append(
                {
                    "id": push.id,
                    "status": s.status.value,
                    "rto_count": s.rto_count,
                    "severity": s.severity.value,
                }
            )
    return web.json_response({"applied": len(applied), "unknown": unknown, "results": applied})


@routes.get("/api/notifications")
async def list_notifications(request: web.Request) -> web.Response:
    """Notifications, newest first (?unread=1&limit=&ont_id=&severity=&area=&kind=&before=)."""
    d = deps(request)
    items = await d.reads.notifications(
        unread=_query_bool(request, "unread"),
        limit=_query_int(request, "limit", 100, 1, 1000),
        ont_id=request.query.get("ont_id") or None,
        severity=_query_choice(request, "severity", [s.value for s in Severity]),
        area=request.query.get("area") or None,
        kind=_query_choice(request, "kind", [k.value for k in EventKind]),
        before=_query_int(request, "before", 0, 1, SQLITE_MAX_INT) or None,
    )
    return web.json_response([notification_json(n, d.lang) for n in items])


@routes.post("/api/notifications/mark-read/{id}")
async def mark_read(request: web.Request) -> web.Response:
    """Mark one notification read."""
    d = deps(request)
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()):
        raise ApiError(400, "invalid id", "notification id must be an integer")
    if len(raw) > len(str(SQLITE_MAX_INT)):  # before int(): it refuses 4,300+ digits
        raise ApiError(400, "invalid id", "notification id must be below 2**63")
    if int(raw) > SQLITE_MAX_INT or not await d.reads.notification_exists(int(raw)):
        raise ApiError(404, "unknown notification", {"id": int(raw)})
    changed = await marks.mark_read(d.reads, d.engine.feed, d.clock(), int(raw))
    return web.json_response({"marked": changed})


@routes.post("/api/notifications/mark-read")
async def mark_all_read(request: web.Request) -> web.Response:
    """Mark every notification read."""
    d = deps(request)
    return web.json_response({"marked": await marks.mark_read(d.reads, d.engine.feed, d.clock())})


# -- operator actions (the ONT page's buttons) --------------------------------------------

ROLE_RANK = {"viewer": 0, "operator": 1, "admin": 2}
MAX_MUTE_MINUTES = 7 * 24 * 60


def _actor(request: web.Request) -> str:
    """Who acts: the logged-in principal (operator or admin), else the API client."""
    principal = request.get("principal")
    if principal is None:
        return "web"
    role = getattr(principal, "role", "viewer")
    role = role if isinstance(role, str) else getattr(role, "name", str(role))
    if ROLE_RANK.get(str(role).lower(), 0) < ROLE_RANK["operator"]:
        raise ApiError(403, "operator role required", {"role": str(role).lower()})
    return str(getattr(principal, "name", "") or "web")


def _mute_minutes(body: Any) -> int:
    raw = body.get("minutes") if isinstance(body, dict) else None
    if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():  # not '²'
        raw = int(raw.strip()[:12])
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_MUTE_MINUTES:
        message = f"minutes must be an integer from 1 to {MAX_MUTE_MINUTES}"
        raise ApiError(422, "invalid minutes", [{"field": "minutes", "message": message}])
    return raw


@routes.post("/api/onts/{id}/ack")
async def ack_ont(request: web.Request) -> web.Response:
    """Acknowledge the ONT's open incident (stops reminders)."""
    d = deps(request)
    ont_id = request.match_info["id"]
    state, reason = await d.engine.ack(ont_id, _actor(request))
    inc = state.incident
    acked = inc is not None and inc.acked_at is not None
    return web.json_response({"id": ont_id, "acked": acked, "reason": reason})


@routes.post("/api/onts/{id}/mute")
async def mute_ont(request: web.Request) -> web.Response:
    """Silence the ONT's alerts for {"minutes": n}."""
    d = deps(request)
    ont_id = request.match_info["id"]
    by = _actor(request)
    minutes = _mute_minutes(await read_body(request, MAX_PUSH_BODY))
    until = d.clock() + timedelta(minutes=minutes)
    mute = await d.engine.mute(f"ont:{ont_id}", until, by)
    return web.json_response({"id": ont_id, "muted_until": mute.until.isoformat(), "by": by})


@routes.post("/api/onts/{id}/unmute")
async def unmute_ont(request: web.Request) -> web.Response:
    """Lift the ONT's silence."""
    d = deps(request)
    ont_id = request.match_info["id"]
    _actor(request)
    if d.view.get(ont_id) is None:
        raise UnknownOnt(ont_id)
    return web.json_response({"id": ont_id, "unmuted": await d.engine.unmute(f"ont:{ont_id}")})


@routes.post("/api/areas/{area}/ack")
async def ack_area(request: web.Request) -> web.Response:
    """Acknowledge the area's open mass outage."""
    d = deps(request)
    area = request.match_info["area"]
    outage, reason = await d.engine.ack_area(area, _actor(request))
    if outage is None:
        raise ApiError(404, "no open mass outage", {"area": area})
    return web.json_response({"area": area, "acked": outage.acked_at is not None, "reason": reason})


@routes.post("/api/areas/rename")
async def rename_area(request: web.Request) -> web.Response:
    """Merge one area into another: {"old": AREA, "new": AREA}; every ONT of old moves."""
    d = deps(request)
    body: AreaRename = validated(AreaRename, await read_body(request, MAX_PUSH_BODY))
    if not any(o.area == body.old for o in d.view.onts().values()):
        raise ApiError(404, "unknown area", {"area": body.old})
    moved = await d.engine.rename_area(body.old, body.new)
    return web.json_response({"old": body.old, "new": body.new, "moved": moved})


@routes.get("/api/stats")
async def stats(request: web.Request) -> web.Response:
    """Totals by status, unread, by severity and by area."""
    return web.json_response(await deps(request).reads.stats())


@routes.get("/api/history")
async def history(request: web.Request) -> web.Response:
    """History of all ONTs, newest first (?limit=&after=, paged like /api/onts)."""
    d = deps(request)
    limit = _query_int(request, "limit", 100, 1, 1000)
    before = _query_int(request, "after", 0, 1, SQLITE_MAX_INT) or None
    rows = await d.reads.history(None, limit, before=before)
    cursor = str(rows[-1].id) if len(rows) == limit else None
    lang = d.lang
    return await json_page(request, lambda: [history_json(h, lang) for h in rows], cursor)


@routes.get("/api/map.png")
async def map_png(request: web.Request) -> web.Response:
    """The map image: ?view=all|offline, or area=, or ont=; width/height 200..2000."""
    d = deps(request)
    if d.renderer is None:
        raise ApiError(404, "maps are not enabled")
    try:
        view, width, height = parse_query(request.query)
    except ValueError as exc:
        field = str(exc).split(":", 1)[0]
        raise ApiError(400, f"invalid {field}", str(exc)) from None
    try:
        png = await d.renderer.render(
            view, d.view.items(), width=width, height=height, now=d.clock(), tz=d.tz
        )
    except LookupError as exc:
        raise ApiError(404, str(exc).split(":", 1)[-1].strip(), str(exc)) from None
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "no-store"})


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 when the service is healthy, 503 with the failing checks otherwise."""
    d = deps(request)
    if d.health is None:
        return web.json_response({"ok": True})
    ok, detail = await d.health()
    return web.json_response({"ok": ok, **detail}, status=200 if ok else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics."""
    d = deps(request)
    if d.metrics is None:
        raise ApiError(404, "metrics are not enabled")
    body, ctype = await d.metrics()
    return web.Response(body=body, headers={"Content-Type": ctype})


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of this API."""
    from api.openapi import spec

    return web.json_response(spec(request.app))


def create_app(d: ApiDeps) -> web.Application:
    """The API application; ontwatch/ adds access control (web.auth.install) in front."""
    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_BODY)
    app[DEPS] = d
    from api.agents import routes as agent_routes  # api/agents.py imports this module

    app.add_routes(routes)
    app.add_routes(agent_routes)
    app.add_routes(d.extra_routes)
    return app
