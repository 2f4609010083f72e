"""Answers to commands as HTML text: pure functions of the inventory, state and the clock."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from bot.texts import (
    Html,
    distance,
    duration,
    esc,
    href,
    lang_of,
    navigation_url,
    reason,
    seconds,
    t,
    when,
)
from i18n.words import severity_label, status_label
from monitor.agents import AgentStatus
from monitor.model import Ont, OntState, Severity, Status
from monitor.outages import MassOutage
from monitor.ports import HistoryRow, Mute
from monitor.records import agent_state

PAGE_SIZE = 10
AGENT_LINES = 20  # /status lists this many probe agents; the rest are counted
NEAREST = 5
MAX_MUTE = timedelta(days=30)
EARTH_RADIUS_M = 6_371_000.0
STATUS_ICON = {Status.ON: "🟢", Status.OFF: "🔴", Status.UNKNOWN: "⚪"}

_DURATION = re.compile(r"^(\d{1,5})\s*([a-z]+)$")
_UNITS = {
    "m": 60, "min": 60, "mnt": 60, "menit": 60,
    "h": 3600, "j": 3600, "jam": 3600, "hr": 3600,
    "d": 86400, "hari": 86400, "day": 86400, "days": 86400,
}  # fmt: skip


def parse_duration(text: str) -> timedelta | None:
    """'30m', '1h', '2d' (and Indonesian 1j, 2hari) as a timedelta; None if unreadable/too long."""
    m = _DURATION.match(text.strip().lower())
    if not m or m.group(2) not in _UNITS:
        return None
    td = timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
    return td if timedelta(0) < td <= MAX_MUTE else None


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def area_name(area: str, lang: str) -> Html:
    """An area for display (escaped), or '(no area)'."""
    return esc(area) if area else t(lang, "no_area")


def status_text(
    stats: dict[str, Any],
    lang: str,
    tz: tzinfo,
    now: datetime,
    outages: Sequence[MassOutage] = (),
) -> str:
    """/status: totals, incidents by severity, open mass outages and the worst areas."""
    sev = stats.get("by_severity", {})
    lines = [
        t(
            lang,
            "status",
            now=when(now, tz),
            total=stats["total"],
            online=stats["online"],
            offline=stats["offline"],
            unknown=stats["unknown"],
            unread=stats["unread"],
            critical=sev.get("critical", 0),
            warning=sev.get("warning", 0),
        )
    ]
    if outages:
        lines.append(t(lang, "status_outages"))
    for outage in sorted(outages, key=lambda o: o.started_at):
        acked = (
            t(lang, "status_outage_acked", by=outage.acked_by or "?")
            if outage.acked_at is not None
            else t(lang, "status_outage_unacked")
        )
        lines.append(
            t(
                lang,
                "status_outage",
                area=outage.area,
                count=len(outage.members),
                since=when(outage.started_at, tz),
                acked=acked,
            )
        )
    areas = [(a, v) for a, v in stats.get("by_area", {}).items() if v["offline"] or v["critical"]]
    areas.sort(key=lambda av: (-av[1]["offline"] / max(1, av[1]["total"]), -av[1]["offline"]))
    if areas:
        lines.append(t(lang, "status_areas"))
        for area, v in areas[:5]:
            lines.append(
                t(
                    lang,
                    "status_area",
                    area=area_name(area, lang),
                    offline=v["offline"],
                    total=v["total"],
                    critical=v["critical"],
                )
            )
    return "\n".join(lines)


def agents_text(statuses: Sequence[AgentStatus], lang: str, tz: tzinfo, now: datetime) -> str:
    """/status's probe agents: per agent its state, ONTs, last contact, sweep and queue.

    Empty when no agent is configured, so a single-site install sees no new section.
    """
    if not statuses:
        return ""
    lines = [t(lang, "status_agents")]
    for status in statuses[:AGENT_LINES]:
        lines.append(agent_line(status, lang, tz, now))
    if len(statuses) > AGENT_LINES:
        lines.append(t(lang, "mass_more", count=len(statuses) - AGENT_LINES))
    return "\n".join(lines)


def agent_line(status: AgentStatus, lang: str, tz: tzinfo, now: datetime) -> Html:
    """One agent of /status (its name escaped like every name the bot shows)."""
    contact = status.last_contact
    return t(
        lang,
        "status_agent",
        name=status.name,
        state=agent_state_text(status, lang, tz),
        onts=status.onts,
        contact=t(lang, "agent_ago", dur=duration(now - contact, lang))
        if contact is not None
        else t(lang, "agent_never"),
        sweep=seconds(status.sweep.duration, lang) if status.sweep is not None else "-",
        queue=status.queue_depth,
    )


def agent_state_text(status: AgentStatus, lang: str, tz: tzinfo) -> Html:
    """The agent's state word in lang; a lost agent says since when."""
    state = agent_state(status)
    if state == "lost":
        return t(lang, "agent_lost", since=when(status.lost_since, tz))
    return t(lang, f"agent_{state}")


def offline_sorted(items: Sequence[tuple[Ont, OntState]]) -> list[tuple[Ont, OntState]]:
    """Offline ONTs, the longest offline first."""
    off = [(o, s) for o, s in items if s.status is Status.OFF]
    epoch = datetime.min.replace(tzinfo=UTC)
    off.sort(key=lambda p: (p[1].status_since is None, p[1].status_since or epoch, p[0].id))
    return off


def offline_page(
    items: Sequence[tuple[Ont, OntState]], page: int, lang: str, tz: tzinfo, now: datetime
) -> tuple[str, int, int]:
    """/offline: one page of offline ONTs; returns (text, page, pages) with page clamped."""
    off = offline_sorted(items)
    if not off:
        return t(lang, "offline_none"), 1, 1
    pages = max(1, math.ceil(len(off) / PAGE_SIZE))
    page = min(max(1, page), pages)
    lines = [t(lang, "offline_head", count=len(off), page=page, pages=pages)]
    for ont, state in off[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]:
        since = state.status_since
        lines.append(
            t(
                lang,
                "offline_line",
                name=ont.label,
                id=ont.id,
                area=area_name(ont.area, lang),
                since=when(since, tz),
                dur=duration(now - since, lang) if since else "?",
                rto=state.rto_count,
            )
        )
    return "\n".join(lines), page, pages


def ont_text(
    ont: Ont,
    state: OntState,
    history: Sequence[HistoryRow],
    mute: Mute | None,
    lang: str,
    tz: tzinfo,
    now: datetime,
) -> str:
    """/ont: details, the open incident and recent history."""
    since = state.status_since
    lines = [
        t(
            lang,
            "ont_head",
            icon=STATUS_ICON.get(state.status, "⚪"),
            name=ont.label,
            id=ont.id,
            area=area_name(ont.area, lang),
            location=ont.location or "-",
            customer=ont.customer_id or "-",
            ip=ont.ip or "-",
            status=status_label(state.status.value, lang_of(lang, "en")),
            since=when(since, tz),
            dur=duration(now - since, lang) if since else "?",
            rto=state.rto_count,
            seen=when(state.last_seen, tz),
        )
    ]
    inc = state.incident
    if inc is not None:
        acked = t(lang, "ont_acked", by=inc.acked_by or "?") if inc.acked_at else Html("")
        lines.append(
            t(
                lang,
                "ont_incident",
                severity=t(lang, f"sev_{inc.severity.value}"),
                opened=when(inc.opened_at, tz),
                reason=reason(inc.reason, lang),
                acked=acked,
            )
        )
    if mute is not None and mute.until > now:
        lines.append(t(lang, "ont_muted", until=when(mute.until, tz)))
    if state.flapping:
        lines.append(t(lang, "ont_flapping"))
    if history:
        lines.append("")
        lines.append(history_text(history, lang, tz, one_ont=True))
    return "\n".join(lines)


def history_text(
    rows: Sequence[HistoryRow], lang: str, tz: tzinfo, *, one_ont: bool, title: str = ""
) -> str:
    """/history: newest first."""
    who = Html(f" · {esc(title)}") if title else Html("")
    lines = [t(lang, "history_head", who=who)]
    if not rows:
        lines.append(t(lang, "history_none"))
    for r in rows:
        lines.append(
            t(
                lang,
                "history_line",
                at=when(r.at, tz),
                who=Html("") if one_ont else Html(f"{esc(r.ont_id)}: "),
                status=status_label(r.status, lang_of(lang, "en")),
                rto=r.rto_count,
                severity=severity_label(r.severity, lang_of(lang, "en")),
                reason=reason(r.reason, lang),
            )
        )
    return "\n".join(lines)


def nearest_text(
    items: Sequence[tuple[Ont, OntState]], lat: float, lon: float, lang: str, now: datetime
) -> str:
    """Shared location: the nearest offline ONTs with distance and a navigation link."""
    found = []
    for ont, state in items:
        if state.status is Status.OFF and ont.lat is not None and ont.lon is not None:
            found.append((haversine_m(lat, lon, ont.lat, ont.lon), ont, state))
    if not found:
        return t(lang, "near_none")
    found.sort(key=lambda f: f[0])
    lines = [t(lang, "near_head")]
    for meters, ont, state in found[:NEAREST]:
        since = state.status_since
        lines.append(
            t(
                lang,
                "near_line",
                name=ont.label,
                id=ont.id,
                dist=distance(meters),
                area=area_name(ont.area, lang),
                dur=duration(now - since, lang) if since else "?",
                url=href(navigation_url(ont.lat, ont.lon)),  # type: ignore[arg-type]
            )
        )
    return "\n".join(lines)


def mutes_text(
    mutes: Sequence[Mute], onts: dict[str, Ont], lang: str, tz: tzinfo, now: datetime
) -> str:
    """/unmute without argument: the active silences."""
    active = sorted((m for m in mutes if m.until > now), key=lambda m: m.until)
    if not active:
        return t(lang, "mutes_none")
    lines = [t(lang, "mutes_head")]
    for m in active:
        lines.append(
            t(
                lang,
                "mute_line",
                what=target_label(m.target, onts, lang),
                until=when(m.until, tz),
                by=m.by or "?",
            )
        )
    return "\n".join(lines)


def target_label(target: str, onts: dict[str, Ont], lang: str) -> Html:
    """'ONT name (id x)' or 'Area name' for a mute target."""
    kind, _, name = target.partition(":")
    if kind == "ont":
        ont = onts.get(name)
        return t(lang, "what_ont", name=ont.label if ont else name, id=name)
    return t(lang, "what_area", area=name)


def severity_word(value: str) -> Severity | None:
    """warning/critical (also Indonesian peringatan/kritis)."""
    word = value.strip().lower()
    if word in ("warning", "warn", "peringatan"):
        return Severity.WARNING
    if word in ("critical", "crit", "kritis"):
        return Severity.CRITICAL
    return None
