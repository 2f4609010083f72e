"""The OpenAPI 3.1 document, built from the route table and the pydantic request models."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import TypeAdapter

from api.agents import ReportBody
from api.records import AreaRename, BulkStatusPush, OntRecord, StatusPush
from api.spreadsheet import XLSX_TYPE

# Every reason: text in the service language, its code (monitor.model.ReasonCode), parameters.
_REASON_PROPS: dict[str, Any] = {
    "reason": {"type": "string"},
    "reason_code": {"type": "string"},
    "reason_params": {"type": "object"},
}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "detail": {},
        "leader": {"type": ["string", "null"], "description": "a standby's 503: who leads"},
    },
}
_STATE_PROPS: dict[str, Any] = {
    "status": {"type": "string", "enum": ["ON", "OFF", "UNKNOWN"]},
    "rto_count": {"type": "integer", "minimum": 0},
    "severity": {"type": "string", "enum": ["ok", "warning", "critical"]},
    "status_since": {"type": ["string", "null"], "format": "date-time"},
    "last_seen": {"type": ["string", "null"], "format": "date-time"},
    "last_on": {"type": ["string", "null"], "format": "date-time"},
    "flapping": {"type": "boolean"},
    "incident": {"type": ["object", "null"]},
}
_STATE = {"type": "object", "required": list(_STATE_PROPS), "properties": _STATE_PROPS}
_ONT = {
    "type": "object",
    "required": ["id", "name", "area", "ip", "status", "rto_count", "severity"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "customer_id": {"type": "string"},
        "location": {"type": "string"},
        "lat": {"type": ["number", "null"]},
        "lon": {"type": ["number", "null"]},
        "ip": {"type": "string"},
        "ip_valid": {"type": "boolean"},
        "area": {"type": "string"},
        **_STATE_PROPS,
    },
}
_NOTIFICATION = {
    "type": "object",
    "required": ["id", "created_at", "kind", "severity", "message", "read"],
    "properties": {
        "id": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"},
        "kind": {"type": "string"},
        "severity": {"type": "string", "enum": ["ok", "warning", "critical"]},
        "ont_id": {"type": ["string", "null"]},
        "area": {"type": ["string", "null"]},
        "message": {"type": "string"},
        **_REASON_PROPS,
        "read": {"type": "boolean"},
        "duration_s": {"type": ["number", "null"]},
        "members": {"type": "array", "items": {"type": "string"}},
        "agent": {"type": ["string", "null"]},
    },
}
_HISTORY = {
    "type": "object",
    "required": ["id", "ont_id", "at", "source", "status", "rto_count", "severity"],
    "properties": {
        "id": {"type": "integer"},
        "ont_id": {"type": "string"},
        "at": {"type": "string", "format": "date-time"},
        "source": {"type": "string"},
        "status": {"type": "string"},
        "rto_count": {"type": "integer"},
        "severity": {"type": "string"},
        **_REASON_PROPS,
    },
}
_STATS = {
    "type": "object",
    "required": ["total", "online", "offline", "unknown", "unread", "by_severity", "by_area"],
    "properties": {
        k: {"type": "integer", "minimum": 0}
        for k in ("total", "online", "offline", "unknown", "unread")
    }
    | {"by_severity": {"type": "object"}, "by_area": {"type": "object"}},
}


def _schema(model: Any) -> dict[str, Any]:
    return TypeAdapter(model).json_schema(
        by_alias=False, ref_template="#/components/schemas/{model}"
    )


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "event": {
            "type": "string",
            "enum": ["hello", "reload", "onts", "notifications", "read", "stats", "agents"],
        },
        "data": {"type": "string", "contentMediaType": "application/json"},
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "retry": {"type": "integer", "minimum": 0},
    },
}


# Probe agents (docs/agents.md; api/agents.py).
_AGENT_ASSIGNMENT = {
    "type": "object",
    "required": ["agent", "version", "refresh_s", "down_after", "critical_rto", "targets"],
    "properties": {
        "agent": {"type": "string"},
        "version": {"type": "string"},
        "refresh_s": {"type": "integer", "minimum": 1},
        "down_after": {"type": "integer", "minimum": 1},
        "critical_rto": {"type": "integer", "minimum": 1},
        "targets": {
            "type": "array",
            "items": {
                "type": "array",
                "prefixItems": [{"type": "string"}, {"type": "string"}],
                "minItems": 2,
                "maxItems": 2,
            },
        },
    },
}
_AGENT_ANSWER = {
    "type": "object",
    "required": ["accepted", "stale", "refused", "duplicate", "want_full", "assignment"],
    "properties": {
        "accepted": {"type": "integer", "minimum": 0},
        "stale": {"type": "integer", "minimum": 0},
        "refused": {"type": "integer", "minimum": 0},
        "duplicate": {"type": "boolean"},
        "want_full": {"type": "boolean"},
        "assignment": {"type": "string"},
    },
}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_COUNT = {"type": "integer", "minimum": 0}
_AGENT_STATUS = {
    "type": "object",
    "required": ["name", "onts", "revoked", "last_contact", "lost", "state", "queue_depth"],
    "properties": {
        "name": {"type": "string"},
        "onts": _COUNT,
        "revoked": {"type": "boolean"},
        "last_contact": _TIME,
        "interval": {"type": ["number", "null"]},
        "lost": {"type": "boolean"},
        "state": {"type": "string", "enum": ["ok", "waiting", "blind", "lost", "revoked"]},
        "lost_since": _TIME,
        "sweep": {"type": ["object", "null"]},
        "queue_depth": _COUNT,
        "queue_oldest": _TIME,
        "dropped": _COUNT,
        "skew_s": {"type": "number"},
        "accepted": _COUNT,
        "stale": _COUNT,
        "refused": _COUNT,
        "reports": _COUNT,
        "areas": {"type": "array", "items": {"type": "string"}},
        "prefixes": {"type": "array", "items": {"type": "string"}},
    },
}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any], *, form: bool = False) -> dict[str, Any]:
    content = {"application/json": {"schema": schema}}
    if form:
        content["application/x-www-form-urlencoded"] = {"schema": schema}
    return {"required": True, "content": content}


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_LIMIT = {
    "name": "limit",
    "in": "query",
    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
}
_ERRORS = {
    code: _json(_ref("Error"), text)
    for code, text in {
        "400": "malformed request",
        "401": "missing or wrong bearer token",
        "404": "not found",
        "413": "body too large",
        "422": "invalid field",
        "503": "storage unavailable",
    }.items()
}

# A write on a standby (PostgreSQL, docs/postgresql.md) is refused the same way as one the
# storage cannot take: 503 with Retry-After; retry here or at the leader the body names.
_WRITE_503 = {
    **_json(_ref("Error"), "storage unavailable, or this instance is a standby ('leader')"),
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
}
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/api/onts"): {
        "summary": "List ONTs with their state",
        "parameters": [
            {
                "name": "status",
                "in": "query",
                "schema": {"type": "string", "enum": ["ON", "OFF", "UNKNOWN"]},
            },
            {"name": "area", "in": "query", "schema": {"type": "string"}},
        ],
        "responses": {"200": _json({"type": "array", "items": _ref("Ont")})},
    },
    ("POST", "/api/onts"): {
        "summary": "Create or update one ONT or a list of ONTs (older field names accepted)",
        "requestBody": _body(
            {"oneOf": [_ref("OntRecord"), {"type": "array", "items": _ref("OntRecord")}]}
        ),
        "responses": {"200": _json({}, "updated"), "201": _json({}, "created")},
    },
    ("GET", "/api/onts/{id}"): {
        "summary": "One ONT with state and recent history",
        "parameters": [_ID],
        "responses": {"200": _json(_ref("Ont"))},
    },
    ("DELETE", "/api/onts/{id}"): {
        "summary": "Remove an ONT",
        "parameters": [_ID],
        "responses": {"200": _json({"type": "object"})},
    },
    ("GET", "/api/onts/{id}/history"): {
        "summary": "History of one ONT, newest first",
        "parameters": [_ID, _LIMIT],
        "responses": {"200": _json({"type": "array", "items": _ref("History")})},
    },
    ("POST", "/api/onts/import"): {
        "summary": "Import the older system's onts.json list, CSV or an .xlsx; per-row report",
        "parameters": [
            {"name": "sheet", "in": "query", "schema": {"type": "string"}},
            {"name": "dry_run", "in": "query", "schema": {"type": "string", "enum": ["0", "1"]}},
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                "text/csv": {"schema": {"type": "string"}},
                XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}},
            },
        },
        "responses": {
            "200": _json({"type": "object", "required": ["imported", "refused", "rows"]})
        },
    },
    ("POST", "/api/areas/rename"): {
        "summary": "Merge one area into another (every ONT of the old name moves)",
        "requestBody": _body(_ref("AreaRename")),
        "responses": {
            "200": _json(
                {
                    "type": "object",
                    "required": ["old", "new", "moved"],
                    "properties": {
                        "old": {"type": "string"},
                        "new": {"type": "string"},
                        "moved": {"type": "integer", "minimum": 0},
                    },
                }
            )
        },
    },
    ("POST", "/api/ont-status/{id}"): {
        "summary": "Push the status of one ONT (JSON or form-encoded)",
        "parameters": [_ID],
        "requestBody": _body(_ref("StatusPush"), form=True),
        "responses": {
            "200": _json(_STATE | {"properties": {"id": {"type": "string"}, **_STATE_PROPS}})
        },
    },
    ("POST", "/api/ont-status"): {
        "summary": "Push the status of many ONTs at once",
        "requestBody": _body({"type": "array", "items": _ref("BulkStatusPush")}),
        "responses": {"200": _json({"type": "object", "required": ["applied", "unknown"]})},
    },
    ("GET", "/api/notifications"): {
        "summary": "Notifications, newest first",
        "parameters": [
            {"name": "unread", "in": "query", "schema": {"type": "string", "enum": ["0", "1"]}},
            _LIMIT,
            {"name": "ont_id", "in": "query", "schema": {"type": "string"}},
            {
                "name": "severity",
                "in": "query",
                "schema": {"type": "string", "enum": ["ok", "warning", "critical"]},
            },
            {"name": "area", "in": "query", "schema": {"type": "string"}},
            {"name": "kind", "in": "query", "schema": {"type": "string"}},
            {
                "name": "before",
                "in": "query",
                "description": "keyset cursor: only notifications with a smaller id",
                "schema": {"type": "integer", "minimum": 1},
            },
        ],
        "responses": {"200": _json({"type": "array", "items": _ref("Notification")})},
    },
    ("POST", "/api/notifications/mark-read/{id}"): {
        "summary": "Mark one notification read",
        "parameters": [_ID | {"schema": {"type": "integer", "minimum": 1}}],
        "responses": {"200": _json({"type": "object"})},
    },
    ("POST", "/api/notifications/mark-read"): {
        "summary": "Mark all notifications read",
        "responses": {"200": _json({"type": "object"})},
    },
    ("POST", "/api/onts/{id}/ack"): {
        "summary": "Acknowledge the ONT's open incident (operator; stops reminders)",
        "parameters": [_ID],
        "responses": {"200": _json({"type": "object"})},
    },
    ("POST", "/api/onts/{id}/mute"): {
        "summary": "Silence the ONT's alerts for {minutes} (operator; 1 to 10080)",
        "parameters": [_ID],
        "requestBody": _body(
            {
                "type": "object",
                "required": ["minutes"],
                "properties": {"minutes": {"type": "integer", "minimum": 1, "maximum": 10080}},
            }
        ),
        "responses": {"200": _json({"type": "object"})},
    },
    ("POST", "/api/onts/{id}/unmute"): {
        "summary": "Lift the ONT's silence (operator)",
        "parameters": [_ID],
        "responses": {"200": _json({"type": "object"})},
    },
    ("POST", "/api/areas/{area}/ack"): {
        "summary": "Acknowledge the area's open mass outage (operator)",
        "parameters": [
            {"name": "area", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        "responses": {"200": _json({"type": "object"})},
    },
    ("GET", "/api/events"): {
        "summary": "Live event stream (server-sent events): onts, notifications, read, stats, "
        "agents",
        "parameters": [
            {"name": "lang", "in": "query", "schema": {"type": "string", "enum": ["id", "en"]}},
            {
                "name": "last_id",
                "in": "query",
                "description": "resume after this frame id (as the Last-Event-ID header does)",
                "schema": {"type": "integer", "minimum": 0},
            },
            {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
        ],
        "responses": {
            "200": {
                "description": "frames: hello first, then reload | onts | notifications | "
                "read | stats | agents (the probe agents, as GET /api/agents lists them, when "
                "they changed; looked at every 5 s); `: ping` every 15 s",
                # before OpenAPI 3.2, the schema of a text/event-stream describes each event
                "content": {"text/event-stream": {"schema": _SSE_EVENT}},
            }
        },
    },
    ("GET", "/api/stats"): {
        "summary": "Totals by status, unread count, by severity and by area",
        "responses": {"200": _json(_ref("Stats"))},
    },
    ("GET", "/api/history"): {
        "summary": "History of all ONTs, newest first",
        "parameters": [_LIMIT],
        "responses": {"200": _json({"type": "array", "items": _ref("History")})},
    },
    ("GET", "/api/map.png"): {
        "summary": "Map image of the ONTs (view=all|offline, area=, ont=, width=, height=)",
        "parameters": [
            {"name": n, "in": "query", "schema": {"type": t}}
            for n, t in (
                ("view", "string"),
                ("area", "string"),
                ("ont", "string"),
                ("width", "integer"),
                ("height", "integer"),
            )
        ],
        "responses": {
            "200": {
                "description": "PNG image",
                "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    },
    ("GET", "/api/agent/assignment"): {
        "summary": "A probe agent's assignment (agent token; If-None-Match gives 304)",
        "security": [{"bearer": []}],
        "parameters": [{"name": "If-None-Match", "in": "header", "schema": {"type": "string"}}],
        "responses": {
            "200": _json(_AGENT_ASSIGNMENT),
            "304": {"description": "unchanged since the ETag given"},
            "403": _json(_ref("Error"), "not an agent token (the admin or read token)"),
        },
    },
    ("POST", "/api/agent/report"): {
        "summary": "A probe agent's report (agent token; JSON, optionally gzip-encoded)",
        "requestBody": _body(_ref("AgentReport")),
        "responses": {
            "200": _json(_AGENT_ANSWER),
            "403": _json(_ref("Error"), "not an agent token (the admin or read token)"),
        },
    },
    ("GET", "/api/agents"): {
        "summary": "Every configured probe agent: ONTs, last contact, sweep, queue, lost",
        "responses": {"200": _json({"type": "array", "items": _ref("AgentStatus")})},
    },
    ("GET", "/healthz"): {
        "summary": "Health of the service (event loop, database, outbox)",
        "responses": {"200": _json({"type": "object"}), "503": _json({"type": "object"})},
    },
    ("GET", "/metrics"): {
        "summary": "Prometheus metrics",
        "responses": {
            "200": {
                "description": "text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    },
    ("GET", "/api/openapi.json"): {
        "summary": "This document",
        "responses": {"200": _json({"type": "object"})},
    },
}


def is_api_path(path: str) -> bool:
    """A route of the HTTP API (JSON), not a page, /login, a static file or a map tile."""
    return path.startswith("/api/") or path in {"/healthz", "/metrics"}


def app_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every API route the app serves (HEAD aside)."""
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path and route.method not in {"HEAD", "*"} and is_api_path(path):
            out.add((route.method, path))
    return out


def spec(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document for the routes this app serves."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in sorted(app_routes(app), key=lambda mp: (mp[1], mp[0])):
        op = dict(OPERATIONS.get((method, path), {"summary": path, "responses": {}}))
        op["responses"] = {**op["responses"], **_ERRORS}
        if method in WRITE_METHODS:
            op["responses"]["503"] = _WRITE_503
            op["security"] = [{"bearer": []}]
        paths.setdefault(path, {})[method.lower()] = op
    components = {
        "Error": _ERROR,
        "Ont": _ONT,
        "Notification": _NOTIFICATION,
        "History": _HISTORY,
        "Stats": _STATS,
        "OntRecord": _schema(OntRecord),
        "StatusPush": _schema(StatusPush),
        "BulkStatusPush": _schema(BulkStatusPush),
        "AreaRename": _schema(AreaRename),
        "AgentReport": _schema(ReportBody),
        "AgentStatus": _AGENT_STATUS,
    }
    components.update(components["AgentReport"].pop("$defs", {}))  # its sweep and queue
    return {
        "openapi": "3.1.0",
        "info": {"title": "ontwatch API", "version": _version()},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ontwatch")
    except PackageNotFoundError:
        return "0"
