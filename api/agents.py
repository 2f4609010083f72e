"""The probe agents' HTTP API (docs/agents.md): their assignment, their reports, their list.

`/api/agent/**` is PUBLIC in web/access.py's table: these routes demand an agent's own
bearer token themselves (401 without one, 403 for the admin or read token, which are no
agent's), so an agent token opens nothing else and nothing else opens these. The desk
(monitor.agents.AgentDesk, wired as engine.agents) decides everything; this module only
checks what arrives and shapes what leaves.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.app import OFF_LOOP_BYTES, ApiError, deps, json_answer, read_limited
from api.records import MAX_ID_LEN, field_errors
from monitor.agents import AgentDesk, AgentReport, SweepStats
from monitor.engine import LATEST, MAX_RTO
from monitor.records import agent_json

MAX_REPORT_BODY = 32 * 2**20  # decompressed: a full report of 100,000 ONTs is about 4 MB
MAX_OBS = 200_000
MAX_TEXT = 128
MAX_COUNT = 10_000_000
MAX_SEQ = 2**63 - 1
_LATEST_TS = LATEST.timestamp()

# Unix seconds, finite; 0 is allowed (an agent whose clock is still at 1970 before NTP:
# its skew is corrected from sent_at).
Timestamp = Annotated[float, Field(ge=0, le=_LATEST_TS, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
OntId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LEN)]
Lost = Annotated[int, Field(ge=0, le=MAX_RTO)]


class SweepBody(BaseModel):
    """The agent's latest sweep."""

    model_config = ConfigDict(strict=True, extra="ignore")

    at: Timestamp
    duration: float = Field(ge=0, le=86_400, allow_inf_nan=False)
    targets: Count
    replied: Count
    silent: Count
    retried: Count = 0
    held: bool = False


class QueueBody(BaseModel):
    """The agent's store-and-forward queue."""

    model_config = ConfigDict(strict=True, extra="ignore")

    depth: Count = 0
    oldest: Timestamp | None = None
    dropped: Count = 0


class ReportBody(BaseModel):
    """Body of POST /api/agent/report (docs/agents.md "Reports")."""

    model_config = ConfigDict(strict=True, extra="ignore")

    # printable ASCII: it is stored (the agents table) and must always be storable
    epoch: str = Field(min_length=1, max_length=MAX_TEXT, pattern=r"^[!-~]+$")
    seq: int = Field(ge=0, le=MAX_SEQ)
    sent_at: Timestamp
    interval: float = Field(gt=0, le=3600, allow_inf_nan=False)
    assignment: str = Field("", max_length=MAX_TEXT)
    full: bool = False
    sweep: SweepBody | None = None
    queue: QueueBody = Field(default_factory=QueueBody)
    obs: list[tuple[OntId, Timestamp, Lost]] = Field(default_factory=list, max_length=MAX_OBS)

    def to_report(self) -> AgentReport:
        """The desk's record: times as datetimes (on a thread for a large report)."""
        sweep = None
        if self.sweep is not None:
            s = self.sweep
            sweep = SweepStats(
                _time(s.at), s.duration, s.targets, s.replied, s.silent, s.retried, s.held
            )
        q = self.queue
        return AgentReport(
            epoch=self.epoch,
            seq=self.seq,
            sent_at=_time(self.sent_at),
            interval=self.interval,
            assignment=self.assignment,
            full=self.full,
            sweep=sweep,
            queue_depth=q.depth,
            queue_oldest=_time(q.oldest) if q.oldest is not None else None,
            dropped=q.dropped,
            obs=[(ont_id, _time(at), lost) for ont_id, at, lost in self.obs],
        )


def _time(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def parse_report(raw: bytes) -> AgentReport:
    """Validate a report body (JSON bytes); 400 when it is no JSON, 422 naming each field."""
    try:
        body = ReportBody.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise ApiError(400, "malformed JSON", "expected a JSON object") from None
        errors = field_errors(exc)
        fields = ", ".join(sorted({e["field"] for e in errors}))
        raise ApiError(422, f"invalid {fields}", errors[:50]) from None
    return body.to_report()


# -- who is asking -------------------------------------------------------------------------


def _desk(request: web.Request) -> AgentDesk:
    board = deps(request).engine.agents
    if not isinstance(board, AgentDesk):
        raise ApiError(503, "probe agents are not enabled on this service")
    return board


def _bearer(request: web.Request) -> str | None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" and given.strip() else None


async def _agent(request: web.Request) -> tuple[AgentDesk, str]:
    """The desk and the name of the agent whose token came with the request."""
    desk = _desk(request)
    token = _bearer(request)
    name = await desk.authenticate(token) if token is not None else None
    if name is not None:
        return desk, name
    principal = request.get("principal")
    if token is not None and getattr(principal, "via", "") == "token":
        raise ApiError(403, "an agent token is needed", {"header": "Authorization"})
    refusal = ApiError(401, "missing or wrong agent token", {"header": "Authorization"})
    refusal.headers["WWW-Authenticate"] = 'Bearer realm="ontwatch-agent"'
    raise refusal


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match: a list of (possibly weak) tags, or *."""
    for part in header.split(","):
        tag = part.strip().removeprefix("W/")
        if tag in ("*", etag):
            return True
    return False


# -- routes ----------------------------------------------------------------------------------

routes = web.RouteTableDef()


@routes.get("/api/agent/assignment")
async def agent_assignment(request: web.Request) -> web.StreamResponse:
    """The ONTs this agent sweeps and its parameters; 304 when If-None-Match names them."""
    desk, name = await _agent(request)
    assignment = await desk.assignment(name)
    etag = f'"{assignment.version}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if _etag_matches(request.headers.get("If-None-Match", ""), etag):
        return web.Response(status=304, headers=headers)
    return await json_answer(assignment.record, headers=headers)


@routes.post("/api/agent/report")
async def agent_report(request: web.Request) -> web.Response:
    """One report of the agent's queue: applied once, in time order, only its own ONTs."""
    desk, name = await _agent(request)
    with desk.receiving(name):
        raw = await read_limited(request, MAX_REPORT_BODY)  # aiohttp undid a gzip encoding
        if not raw.strip():
            raise ApiError(400, "empty body", "expected a JSON object")
        if len(raw) > OFF_LOOP_BYTES:
            report = await asyncio.to_thread(parse_report, raw)
        else:
            report = parse_report(raw)
        answer = await desk.report(name, report)
    return web.json_response(answer.record())


@routes.get("/api/agents")
async def list_agents(request: web.Request) -> web.Response:
    """Every configured probe agent: ONTs, last contact, sweep, queue, lost or not."""
    d = deps(request)
    return web.json_response([agent_json(s) for s in d.view.agents()])
