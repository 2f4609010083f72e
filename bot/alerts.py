"""Alert messages: one chat's pending events turned into as few messages as read well."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from telegram import InlineKeyboardMarkup

from bot import keyboards
from bot.limits import MAX_TEXT, pack, trim
from bot.texts import Html, duration, esc, lang_of, reason, t, when
from i18n.words import kind_label, status_label
from monitor.model import Event, EventKind, Ont, Severity
from monitor.ports import OutboxRow

MASS_LIST = 15  # members named in a mass-outage message; the rest are counted
COMPACT_AFTER = 12  # more events than this in one message: one line each
ICONS = {Severity.WARNING: "⚠️", Severity.CRITICAL: "🔴", Severity.OK: "✅"}

OntLookup = Callable[[str], Ont | None]


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """One message to send and the outbox rows it delivers."""

    chat_id: int
    text: str
    row_ids: tuple[int, ...]
    markup: InlineKeyboardMarkup | None = None


@dataclass(frozen=True, slots=True)
class _Item:
    row: OutboxRow
    event: Event
    ont: dict[str, Any]


def _label(item: _Item) -> tuple[str, str, str]:
    ont = item.ont
    ont_id = ont.get("id") or item.event.ont_id
    return (ont.get("name") or ont_id or "-", ont_id or "-", ont.get("area") or item.event.area)


def _area(area: str, lang: str) -> Html:
    return esc(area) if area else t(lang, "no_area")


def _members(event: Event, lang: str, lookup: OntLookup) -> list[Html]:
    lines = []
    for ont_id in event.members[:MASS_LIST]:
        ont = lookup(ont_id)
        name = ont.label if ont else ont_id
        lines.append(Html(f"• {esc(name)} (id {esc(ont_id)})"))
    extra = len(event.members) - MASS_LIST
    if extra > 0:
        lines.append(t(lang, "mass_more", count=extra))
    return lines


def block(item: _Item, lang: str, tz: tzinfo, lookup: OntLookup) -> Html:
    """The full text of one event."""
    e = item.event
    name, ont_id, area = _label(item)
    at = when(e.at, tz)
    common: dict[str, object] = {"name": name, "id": ont_id, "area": _area(area, lang), "at": at}
    match e.kind:
        case EventKind.OPENED | EventKind.ESCALATED:
            severity = t(lang, f"sev_{e.severity.value}")
            if e.kind is EventKind.ESCALATED:
                severity = Html(f"{t(lang, 'alert_escalated')} {severity}")
            return t(
                lang,
                "alert_problem",
                icon=ICONS.get(e.severity, "⚠️"),
                severity=severity,
                status=status_label(e.status.value, lang_of(lang, "en")) if e.status else "-",
                rto=e.rto_count if e.rto_count is not None else "-",
                reason=reason(e.reason, lang),
                **common,
            )
        case EventKind.RESOLVED:
            dur = duration(e.duration, lang) if e.duration is not None else "?"
            return t(lang, "alert_resolved", dur=dur, **common)
        case EventKind.REMINDER if not e.ont_id and e.area:
            head = t(
                lang,
                "alert_mass_reminder",
                area=esc(e.area),
                count=len(e.members),
                dur=duration(e.duration, lang) if e.duration is not None else "?",
                at=at,
            )
            return Html("\n".join([head, *_members(e, lang, lookup)]))
        case EventKind.REMINDER:
            return t(
                lang,
                "alert_reminder",
                severity=t(lang, f"sev_{e.severity.value}"),
                reason=reason(e.reason, lang),
                **common,
            )
        case EventKind.FLAPPING:
            return t(lang, "alert_flapping", reason=reason(e.reason, lang), **common)
        case EventKind.FLAPPING_ENDED:
            return t(lang, "alert_flapping_ended", **common)
        case EventKind.INVALID_IP:
            return t(lang, "alert_invalid_ip", reason=reason(e.reason, lang), **common)
        case EventKind.MASS_OUTAGE:
            head = t(
                lang,
                "alert_mass",
                area=esc(e.area) if e.area else t(lang, "network"),
                count=len(e.members),
                reason=reason(e.reason, lang),
                at=at,
            )
            return Html("\n".join([head, *_members(e, lang, lookup)]))
        case EventKind.MASS_OUTAGE_RESOLVED:
            dur = duration(e.duration, lang) if e.duration is not None else "?"
            return t(
                lang,
                "alert_mass_resolved",
                area=esc(e.area) if e.area else t(lang, "network"),
                count=len(e.members),
                dur=dur,
                at=at,
            )
        case (
            EventKind.MONITOR_OFFLINE
            | EventKind.MONITOR_ONLINE
            | EventKind.AGENT_LOST
            | EventKind.AGENT_BACK
        ):
            return t(lang, _monitor_text(e), reason=reason(e.reason, lang), at=at)
        case _:
            kind = kind_label(e.kind.value, lang_of(lang, "en"))
            why = reason(e.reason, lang)
            return t(lang, "alert_other", kind=kind, name=name, reason=why, at=at)


# A probe agent's blind/sees events reuse the monitor's kinds (EventKind.MONITOR_OFFLINE /
# MONITOR_ONLINE with Event.agent set): they read as the agent's, whose name is in the reason.
_AGENT_MONITOR_TEXTS = {
    EventKind.MONITOR_OFFLINE: "alert_agent_blind",
    EventKind.MONITOR_ONLINE: "alert_agent_sees",
}


def _monitor_text(e: Event) -> str:
    """The text key of a monitor or probe-agent event."""
    if e.agent and e.kind in _AGENT_MONITOR_TEXTS:
        return _AGENT_MONITOR_TEXTS[e.kind]
    return f"alert_{e.kind.value}"


def line(item: _Item, lang: str, tz: tzinfo) -> Html:
    """One short line for an event in a big batch."""
    e = item.event
    name, ont_id, area = _label(item)
    if e.kind is EventKind.RESOLVED:
        icon = "✅"
        what = duration(e.duration, lang) if e.duration is not None else "ON"
    else:
        icon = ICONS.get(e.severity, "ℹ️")
        shown = lang_of(lang, "en")
        status = status_label(e.status.value, shown) if e.status else kind_label(e.kind, shown)
        what = f"{status} rto {e.rto_count}" if e.rto_count is not None else status
    clock = e.at.astimezone(tz).strftime("%H:%M")
    return Html(f"{icon} {esc(name)} ({esc(ont_id)}) · {_area(area, lang)} · {esc(what)} · {clock}")


def _markup(items: Sequence[_Item], lang: str) -> InlineKeyboardMarkup | None:
    ont_ids = {i.event.ont_id for i in items}
    if len(ont_ids) == 1 and "" not in ont_ids:
        ont = items[-1].ont
        has_location = ont.get("lat") is not None and ont.get("lon") is not None
        return keyboards.ont_buttons(items[-1].event.ont_id, lang, has_location=has_location)
    if len(items) == 1 and _is_area_alarm(items[0].event):
        return keyboards.area_buttons(items[0].event.area, lang)
    return None


def _is_area_alarm(event: Event) -> bool:
    """A mass outage, or its reminder: the area's buttons go with it."""
    if not event.area or event.ont_id:
        return False
    return event.kind in (EventKind.MASS_OUTAGE, EventKind.REMINDER)


# Events about no ONT that a compact message still gives in full: they are few, and their
# reason is the news (an agent lost with 1,240 ONTs, the monitor blind).
_FULL_KINDS = frozenset(
    {
        EventKind.MASS_OUTAGE_RESOLVED,
        EventKind.MONITOR_OFFLINE,
        EventKind.MONITOR_ONLINE,
        EventKind.AGENT_LOST,
        EventKind.AGENT_BACK,
    }
)


def _in_full(event: Event) -> bool:
    """Whether a compact message shows this event as its whole block, not one line."""
    return _is_area_alarm(event) or (event.kind in _FULL_KINDS and not event.ont_id)


def _summary(items: Sequence[_Item], lang: str) -> Html:
    counts: Counter[str] = Counter()
    for item in items:
        e = item.event
        if e.kind in (EventKind.RESOLVED, EventKind.MASS_OUTAGE_RESOLVED):
            counts["✅"] += 1
        else:
            counts[ICONS.get(e.severity, "ℹ️")] += 1
    summary = " · ".join(f"{icon} {n}" for icon, n in counts.items())
    return t(lang, "compact_head", count=len(items), summary=Html(summary))


def compose(
    chat_id: int, rows: Sequence[OutboxRow], lang: str, tz: tzinfo, lookup: OntLookup
) -> list[AlertMessage]:
    """Messages for one chat's rows, in their order; every row is in exactly one message."""
    items = [_Item(r, r.event, r.payload.get("ont") or {}) for r in rows]
    if not items:
        return []
    blocks = [trim(block(i, lang, tz, lookup)) for i in items]
    total = sum(len(b) + 2 for b in blocks)
    if len(items) > COMPACT_AFTER and total > MAX_TEXT:
        return [_compact(chat_id, items, lang, tz, lookup)]
    messages = []
    for group in pack(blocks):
        chosen = [items[i] for i in group]
        messages.append(
            AlertMessage(
                chat_id,
                "\n\n".join(blocks[i] for i in group),
                tuple(i.row.id for i in chosen),
                _markup(chosen, lang),
            )
        )
    return messages


def _compact(
    chat_id: int, items: Sequence[_Item], lang: str, tz: tzinfo, lookup: OntLookup
) -> AlertMessage:
    """Many events as one message: mass outages in full, the rest one line each, then a count."""
    parts = [_summary(items, lang)]
    budget = MAX_TEXT - len(parts[0]) - 80  # room for the "… and N more" line
    shown = 0
    for item in items:
        if _in_full(item.event):
            text = "\n" + block(item, lang, tz, lookup) + "\n"
        else:
            text = line(item, lang, tz)
        if len(text) + 1 > budget:
            break
        parts.append(text)
        budget -= len(text) + 1
        shown += 1
    if shown < len(items):
        parts.append(t(lang, "compact_more", count=len(items) - shown))
    return AlertMessage(
        chat_id, trim("\n".join(parts)), tuple(i.row.id for i in items), _markup(items, lang)
    )
