"""How values look on the pages: times in the service's zone, durations, labels, rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from urllib.parse import quote

from i18n.durations import format_duration
from i18n.notices import render as render_notice
from i18n.reasons import render as render_reason
from i18n.words import kind_label, severity_label
from maps.style import category_of
from monitor.model import OntState
from monitor.ports import Notification
from web.texts import Lang

TIME_FORMAT = "%d-%m-%Y %H:%M:%S"


def when(at: datetime | None, tz: tzinfo) -> str:
    """A time in the service's zone, e.g. '27-11-2026 08:00:05 WIB'; '-' when unknown."""
    if at is None:
        return "-"
    local = at.astimezone(tz)
    return f"{local.strftime(TIME_FORMAT)} {local.tzname() or ''}".strip()


def duration(value: float | timedelta | None, lang: Lang) -> str:
    """A short duration in the bot's words, e.g. '2 jam 15 mnt' / '2 h 15 min'; '-' if unknown."""
    return "-" if value is None else format_duration(value, lang)


def reason_text(reason: str, lang: Lang) -> str:
    """A rule's reason (code or stored text) in words."""
    return render_reason(reason, lang) if reason else ""


def notice_text(n: Notification, lang: Lang) -> str:
    """One notification as a line of plain text in the page's language (as the bot says it)."""
    payload = {**n.payload, "ont_id": n.ont_id or n.payload.get("ont_id"), "area": n.area}
    try:
        return render_notice(n.kind, n.severity, payload, lang)
    except (KeyError, ValueError, TypeError):
        return n.message  # a row from an older version that the renderer does not know


def category_name(state: OntState) -> str:
    """The map legend class of a state: offline, warning, online or unknown (as the PNG maps)."""
    return category_of(state).name.lower()


def ont_href(ont_id: str) -> str:
    """The page of one ONT (the id quoted: ids are free text)."""
    return "/onts/" + quote(ont_id, safe="")


@dataclass(frozen=True, slots=True)
class NoticeRow:
    """A notification ready for a template."""

    id: int
    when: str
    at: str
    kind: str
    kind_label: str
    severity: str
    severity_label: str
    ont_id: str
    area: str
    text: str
    read: bool
    href: str


def notice_row(n: Notification, lang: Lang, tz: tzinfo) -> NoticeRow:
    """A stored notification as a row of text."""
    return NoticeRow(
        id=n.id,
        when=when(n.created_at, tz),
        at=n.created_at.isoformat(),
        kind=n.kind,
        kind_label=kind_label(n.kind, lang) if n.kind else "",
        severity=n.severity,
        severity_label=severity_label(n.severity, lang) if n.severity else "",
        ont_id=n.ont_id,
        area=n.area,
        text=notice_text(n, lang),
        read=n.read,
        href=ont_href(n.ont_id) if n.ont_id else "/notifications",
    )
