"""Plain JSON records of domain objects, for the API, the pages and the event stream.

Pure functions (no I/O): the same ONT or notification has the same shape wherever it is
shown. Precedent: `Ont.record()` in monitor/model.py for the inventory fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from i18n import Lang
from i18n.reasons import render as render_reason
from monitor.agents import AgentStatus
from monitor.model import Decision, Ont, OntState, Reason
from monitor.ports import HistoryRow, Notification


def iso(value: datetime | None) -> str | None:
    """ISO-8601 text of a timestamp, or None."""
    return value.isoformat() if value is not None else None


def reason_json(reason: Reason | Any, lang: Lang) -> dict[str, Any]:
    """A reason as the API gives it: text in the service language, its code and parameters."""
    record = Reason.from_record(reason).record()
    return {
        "reason": render_reason(reason, lang),
        "reason_code": record["code"],
        "reason_params": record["params"],
    }


def state_json(state: OntState, lang: Lang = "id") -> dict[str, Any]:
    """Live state of an ONT (reasons in lang, the service language)."""
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
            **reason_json(inc.reason, lang),
            "acked_at": iso(inc.acked_at),
            "acked_by": inc.acked_by or None,
        },
    }


def ont_json(ont: Ont, state: OntState, lang: Lang = "id") -> dict[str, Any]:
    """An ONT with its state."""
    return {**ont.record(), "ip_valid": ont.ip_valid, **state_json(state, lang)}


def notification_json(n: Notification, lang: Lang = "id") -> dict[str, Any]:
    """A stored notification; message is the stored line (in the service language)."""
    payload = n.payload
    return {
        "id": n.id,
        "created_at": iso(n.created_at),
        "kind": n.kind,
        "severity": n.severity,
        "ont_id": n.ont_id or None,
        "area": n.area or None,
        "message": n.message,
        **reason_json(payload.get("reason"), lang),
        "read": n.read,
        "duration_s": payload.get("duration_s"),
        "members": payload.get("members") or [],
        "agent": payload.get("agent") or None,  # a probe agent's events: its name
    }


def history_json(h: HistoryRow, lang: Lang = "id") -> dict[str, Any]:
    """One history line."""
    return {
        "id": h.id,
        "ont_id": h.ont_id,
        "at": iso(h.at),
        "source": h.source,
        "status": h.status,
        "rto_count": h.rto_count,
        "severity": h.severity,
        **reason_json(h.reason, lang),
    }


def decision_json(decision: Decision, lang: Lang = "id") -> dict[str, Any]:
    """The new state after a push, with the events it caused and why."""
    return {
        **state_json(decision.state, lang),
        **reason_json(decision.reason, lang),
        "events": [
            {
                "kind": e.kind.value,
                "severity": e.severity.value,
                **reason_json(e.reason, lang),
                "duration_s": e.duration.total_seconds() if e.duration is not None else None,
            }
            for e in decision.events
        ],
    }


AGENT_STATES = ("ok", "waiting", "blind", "lost", "revoked")


def agent_state(status: AgentStatus) -> str:
    """One word for an agent, the worst that applies: revoked, lost (silent past its window),
    blind (its self-health gate holds: it cannot reach its ONTs), waiting (configured, never
    heard from yet), else ok. The bot, the pages, /metrics and the CLI all show this word."""
    if status.revoked:
        return "revoked"
    if status.lost:
        return "lost"
    if status.sweep is not None and status.sweep.held:
        return "blind"
    if status.last_contact is None:
        return "waiting"
    return "ok"


def agent_json(status: AgentStatus) -> dict[str, Any]:
    """A probe agent: its record (GET /api/agents: AgentStatus's fields, ISO times) plus its
    state word, which the pages and the CLI show."""
    return {**status.record(), "state": agent_state(status)}
