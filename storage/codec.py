"""Conversions between domain objects and SQLite rows (times as ISO-8601 UTC text)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.model import Event, EventKind, Incident, Ont, OntState, Reason, Severity, Status


def ts(value: datetime | None) -> str | None:
    """A timestamp as sortable ISO text in UTC."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_ts(value: str | None) -> datetime | None:
    """ISO text back to an aware datetime."""
    return datetime.fromisoformat(value) if value else None


def ont_row(ont: Ont, now: datetime) -> tuple[Any, ...]:
    """Values for the onts table."""
    return (
        ont.id,
        ont.name,
        ont.customer_id,
        ont.location,
        ont.lat,
        ont.lon,
        ont.ip,
        ont.area,
        ts(now),
    )


def ont_from_row(row: Any) -> Ont:
    """An Ont from (id, name, customer_id, location, lat, lon, ip, area)."""
    return Ont(
        id=row[0],
        name=row[1],
        customer_id=row[2],
        location=row[3],
        lat=row[4],
        lon=row[5],
        ip=row[6],
        area=row[7],
    )


def reason_json(reason: Reason) -> str:
    """A reason as JSON text {"code", "params"}, for the history table."""
    return json.dumps(reason_record(reason), ensure_ascii=False)


def reason_record(reason: Reason | str) -> dict[str, Any]:
    """A reason as a JSON-able dict (a bare string is kept as a legacy reason)."""
    return Reason.from_record(reason).record()


def reason_from_stored(value: Any) -> Reason:
    """A stored reason: a {"code", "params"} dict or its JSON text; old English text (from
    before reasons were codes) reads back as a legacy reason carrying that text."""
    if isinstance(value, str) and value.startswith("{"):
        return Reason.from_record(_json_or_text(value))
    return Reason.from_record(value)


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def incident_json(inc: Incident | None) -> str | None:
    """An incident as JSON text."""
    if inc is None:
        return None
    return json.dumps(
        {
            "severity": inc.severity.value,
            "opened_at": ts(inc.opened_at),
            "reason": reason_record(inc.reason),
            "escalated_at": ts(inc.escalated_at),
            "acked_at": ts(inc.acked_at),
            "acked_by": inc.acked_by,
            "last_notified_at": ts(inc.last_notified_at),
            "mass_outage": inc.mass_outage,
        }
    )


def incident_from_json(text: str | None) -> Incident | None:
    """JSON text back to an Incident."""
    if not text:
        return None
    d = json.loads(text)
    return Incident(
        severity=Severity(d["severity"]),
        opened_at=parse_ts(d["opened_at"]),  # type: ignore[arg-type]
        reason=reason_from_stored(d.get("reason", "")),
        escalated_at=parse_ts(d.get("escalated_at")),
        acked_at=parse_ts(d.get("acked_at")),
        acked_by=d.get("acked_by", ""),
        last_notified_at=parse_ts(d.get("last_notified_at")),
        mass_outage=d.get("mass_outage", ""),
    )


def state_row(s: OntState) -> tuple[Any, ...]:
    """Values for the ont_state table."""
    return (
        s.ont_id,
        s.status.value,
        s.rto_count,
        ts(s.status_since),
        ts(s.last_seen),
        ts(s.last_on),
        s.severity.value,
        incident_json(s.incident),
        int(s.flapping),
        json.dumps([ts(t) for t in s.transitions]),
    )


STATE_COLUMNS = (
    "ont_id, status, rto_count, status_since, last_seen, last_on, severity, incident, "
    "flapping, transitions"
)


def state_from_row(row: Any) -> OntState:
    """An OntState from the STATE_COLUMNS."""
    return OntState(
        ont_id=row[0],
        status=Status(row[1]),
        rto_count=row[2],
        status_since=parse_ts(row[3]),
        last_seen=parse_ts(row[4]),
        last_on=parse_ts(row[5]),
        incident=incident_from_json(row[7]),
        flapping=bool(row[8]),
        transitions=tuple(parse_ts(t) for t in json.loads(row[9] or "[]")),  # type: ignore[misc]
    )


def event_payload(event: Event, ont: Ont | None) -> dict[str, Any]:
    """An event and what the message needs to know about its ONT, as a JSON-able dict."""
    payload: dict[str, Any] = {
        "kind": event.kind.value,
        "severity": event.severity.value,
        "at": ts(event.at),
        "reason": reason_record(event.reason),
        "ont_id": event.ont_id,
        "area": event.area,
        "status": event.status.value if event.status else None,
        "rto_count": event.rto_count,
        "duration_s": event.duration.total_seconds() if event.duration is not None else None,
        "members": list(event.members),
        "notify": event.notify,
    }
    if event.agent:
        payload["agent"] = event.agent  # agent events only: other payloads keep their shape
    if ont is not None:
        payload["ont"] = ont.record()
    return payload


def event_from_payload(payload: dict[str, Any]) -> Event:
    """The Event inside a stored payload."""
    duration = payload.get("duration_s")
    reason = reason_from_stored(payload.get("reason", ""))
    agent = payload.get("agent") or reason.param("agent")  # the reason names it too
    return Event(
        kind=EventKind(payload["kind"]),
        severity=Severity(payload["severity"]),
        at=parse_ts(payload["at"]),  # type: ignore[arg-type]
        reason=reason,
        ont_id=payload.get("ont_id", ""),
        area=payload.get("area", ""),
        status=Status(payload["status"]) if payload.get("status") else None,
        rto_count=payload.get("rto_count"),
        duration=timedelta(seconds=duration) if duration is not None else None,
        members=tuple(payload.get("members", ())),
        notify=payload.get("notify", True),
        agent=agent if isinstance(agent, str) else "",
    )
