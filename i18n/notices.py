"""One plain-text line for a stored notification, in Indonesian or English.

`payload` is the stored event payload (storage.codec.event_payload): "reason" ({"code",
"params"} or an old English string), "ont_id", "area", "status", "rto_count", "duration_s",
"members", "agent" (a probe agent's name, agent events only), and "ont" (the ONT's record)
when the event is about one ONT.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from i18n import Lang
from i18n.durations import format_duration
from i18n.reasons import render as render_reason
from i18n.words import kind_label, severity_label, status_label
from monitor.model import Event, Ont, Reason

LINES: dict[str, dict[Lang, str]] = {
    "opened": {
        "id": "{SEV} · {who}: {reason} (status {status}, rto {rto})",
        "en": "{SEV} · {who}: {reason} (status {status}, rto {rto})",
    },
    "escalated": {
        "id": "NAIK KE {SEV} · {who}: {reason} (status {status}, rto {rto})",
        "en": "ESCALATED TO {SEV} · {who}: {reason} (status {status}, rto {rto})",
    },
    "resolved": {
        "id": "PULIH · {who}: ON lagi setelah mati {dur}",
        "en": "RECOVERED · {who}: ON again after {dur} down",
    },
    "reminder": {
        "id": "PENGINGAT {SEV} · {who}: {reason}",
        "en": "REMINDER {SEV} · {who}: {reason}",
    },
    "area_reminder": {
        "id": "PENGINGAT GANGGUAN MASSAL · {where}: {reason}",
        "en": "REMINDER MASS OUTAGE · {where}: {reason}",
    },
    "mass_outage": {
        "id": "GANGGUAN MASSAL · {where}: {count} ONT OFF · {reason}",
        "en": "MASS OUTAGE · {where}: {count} ONTs OFF · {reason}",
    },
    "mass_outage_resolved": {
        "id": "GANGGUAN MASSAL PULIH · {where}: {count} ONT kembali setelah {dur}",
        "en": "MASS OUTAGE RESOLVED · {where}: {count} ONTs back after {dur}",
    },
    "flapping": {"id": "NAIK-TURUN · {who}: {reason}", "en": "FLAPPING · {who}: {reason}"},
    "flapping_ended": {
        "id": "STABIL LAGI · {who}: {reason}",
        "en": "STABLE AGAIN · {who}: {reason}",
    },
    "invalid_ip": {"id": "IP TIDAK VALID · {who}: {reason}", "en": "INVALID IP · {who}: {reason}"},
    "monitor_offline": {
        "id": "PEMANTAU TIDAK MELIHAT JARINGAN · {reason}",
        "en": "MONITOR CANNOT SEE THE NETWORK · {reason}",
    },
    "monitor_online": {
        "id": "PEMANTAU MELIHAT JARINGAN LAGI · {reason}",
        "en": "MONITOR SEES THE NETWORK AGAIN · {reason}",
    },
    "agent_lost": {"id": "AGEN PROBE HILANG · {reason}", "en": "PROBE AGENT LOST · {reason}"},
    "agent_back": {
        "id": "AGEN PROBE KEMBALI · {reason}",
        "en": "PROBE AGENT BACK · {reason}",
    },
    # monitor_offline / monitor_online of a probe agent (its own uplink to its ONTs)
    "agent_blind": {
        "id": "AGEN PROBE TIDAK MELIHAT ONT-NYA · {reason}",
        "en": "PROBE AGENT CANNOT SEE ITS ONTS · {reason}",
    },
    "agent_sees": {
        "id": "AGEN PROBE MELIHAT ONT-NYA LAGI · {reason}",
        "en": "PROBE AGENT SEES ITS ONTS AGAIN · {reason}",
    },
    "other": {"id": "{KIND} · {who}: {reason}", "en": "{KIND} · {who}: {reason}"},
}

# A monitor event of a probe agent reads as the agent's, not as the central monitor's.
AGENT_LINES = {"monitor_offline": "agent_blind", "monitor_online": "agent_sees"}

WORDS: dict[str, dict[Lang, str]] = {
    "network": {"id": "seluruh jaringan", "en": "the whole network"},
    "area": {"id": "area {area}", "en": "area {area}"},
}


def render(kind: str, severity: str, payload: Mapping[str, Any], lang: Lang) -> str:
    """The notification as one line, e.g. 'PULIH · Baciro RT 9 (id 2): ON lagi setelah mati 4 dtk'."""
    key = _line_key(kind, payload)
    texts = LINES[key]
    template = texts.get(lang) or texts["en"]
    return template.format_map(_values(kind, severity, payload, lang)).rstrip(" :·")


def render_event(event: Event, ont: Ont | None, lang: Lang) -> str:
    """The same line for an Event not yet stored (log lines, the stored message)."""
    payload: dict[str, Any] = {
        "reason": event.reason,
        "ont_id": event.ont_id,
        "area": event.area,
        "status": event.status.value if event.status else None,
        "rto_count": event.rto_count,
        "duration_s": event.duration.total_seconds() if event.duration is not None else None,
        "members": list(event.members),
        "agent": event.agent,
    }
    if ont is not None:
        payload["ont"] = ont.record()
    return render(event.kind.value, event.severity.value, payload, lang)


def _line_key(kind: str, payload: Mapping[str, Any]) -> str:
    if kind == "reminder" and not payload.get("ont_id") and payload.get("area") is not None:
        return "area_reminder"
    if kind in AGENT_LINES and _agent(payload):
        return AGENT_LINES[kind]
    return kind if kind in LINES else "other"


def _agent(payload: Mapping[str, Any]) -> str:
    """The probe agent an event is about: the payload's "agent", else its reason's."""
    agent = payload.get("agent") or Reason.from_record(payload.get("reason")).param("agent")
    return agent if isinstance(agent, str) else ""


def _values(kind: str, severity: str, payload: Mapping[str, Any], lang: Lang) -> dict[str, str]:
    duration = payload.get("duration_s")
    status = payload.get("status")
    rto = payload.get("rto_count")
    members = payload.get("members")
    return {
        "SEV": severity_label(severity, lang).upper(),
        "KIND": kind_label(kind, lang).upper(),
        "who": _who(payload, lang),
        "where": _where(payload, lang),
        "reason": render_reason(payload.get("reason"), lang),
        "status": status_label(str(status), lang) if status else "-",
        "rto": str(rto) if rto is not None else "-",
        "dur": format_duration(duration, lang) if _is_number(duration) else "?",
        "count": str(len(members)) if isinstance(members, list | tuple) else "?",
    }


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _who(payload: Mapping[str, Any], lang: Lang) -> str:
    ont = payload.get("ont")
    ont = ont if isinstance(ont, Mapping) else {}
    ont_id = str(ont.get("id") or payload.get("ont_id") or "")
    name = str(ont.get("name") or "")
    if ont_id:
        return f"{name} (id {ont_id})" if name and name != ont_id else f"id {ont_id}"
    return _where(payload, lang)


def _where(payload: Mapping[str, Any], lang: Lang) -> str:
    area = str(payload.get("area") or "")
    words = WORDS["area"] if area else WORDS["network"]
    return (words.get(lang) or words["en"]).format(area=area)
