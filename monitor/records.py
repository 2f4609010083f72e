"""Plain JSON records of domain objects, for the API, the pages and the event stream.

Pure functions (no I/O): the same ONT or notification has the same shape wherever it is
shown. Precedent: `Ont.record()` in monitor/model.py for the inventory fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitor.model import Decision, Ont, OntState
from monitor.ports import HistoryRow, Notification


def iso(value: datetime | None) -> str | None:
    """ISO-8601 text of a timestamp, or None."""
    return value.isoformat() if value is not None else None


def state_json(state: OntState) -> dict[str, Any]:
    """Live state of an ONT."""
    inc = state.incident
    return {
        "status": state.status.value,
        "rto_count": state.rto_count,
        "severity": state.severity.value,
        "status_since": iso(state.status_since),
        "last_seen": iso(state.last_seen),
        "last_on": iso(state.last_on),
        "flapping": state.flapping,
        "incident": None
        if inc is None
        else {
            "severity": inc.severity.value,
            "opened_at": iso(inc.opened_at),
            "reason": inc.reason,
            "acked_at": iso(inc.acked_at),
            "acked_by": inc.acked_by or None,
        },
    }


def ont_json(ont: Ont, state: OntState) -> dict[str, Any]:
    """An ONT with its state."""
    return {**ont.record(), "ip_valid": ont.ip_valid, **state_json(state)}


def notification_json(n: Notification) -> dict[str, Any]:
    """A stored notification."""
    payload = n.payload
    return {
        "id": n.id,
        "created_at": iso(n.created_at),
        "kind": n.kind,
        "severity": n.severity,
        "ont_id": n.ont_id or None,
        "area": n.area or None,
        "message": n.message,
        "read": n.read,
        "duration_s": payload.get("duration_s"),
        "members": payload.get("members") or [],
    }


def history_json(h: HistoryRow) -> dict[str, Any]:
    """One history line."""
    return {
        "id": h.id,
        "ont_id": h.ont_id,
        "at": iso(h.at),
        "source": h.source,
        "status": h.status,
        "rto_count": h.rto_count,
        "severity": h.severity,
        "reason": h.reason,
    }


def decision_json(decision: Decision) -> dict[str, Any]:
    """The new state after a push, with the events it caused and why."""
    return {
        **state_json(decision.state),
        "reason": decision.reason,
        "events": [
            {
                "kind": e.kind.value,
                "severity": e.severity.value,
                "reason": e.reason,
                "duration_s": e.duration.total_seconds() if e.duration is not None else None,
            }
            for e in decision.events
        ],
    }
