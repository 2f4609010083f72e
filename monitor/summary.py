"""Plain one-line summaries of events, for logs and the notifications API."""

from __future__ import annotations

from datetime import timedelta

from monitor.model import Event, EventKind, Ont


def format_duration(td: timedelta) -> str:
    """Compact duration such as '2h 15m', '45s' or '3d 4h'."""
    seconds = max(0, int(td.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m {secs}s" if secs and minutes < 10 else f"{minutes}m"
    return f"{secs}s"


def summarize(event: Event, ont: Ont | None) -> str:
    """One line saying what happened, e.g. 'Baciro RT 9 (id 2) went OFF'."""
    who = f"{ont.label} (id {ont.id})" if ont else (event.ont_id or f"area {event.area}")
    match event.kind:
        case EventKind.OPENED | EventKind.ESCALATED:
            verb = "problem" if event.kind is EventKind.OPENED else "escalated"
            return f"{who}: {verb}: {event.reason} (status {event.status}, rto {event.rto_count})"
        case EventKind.RESOLVED:
            down = format_duration(event.duration) if event.duration else "?"
            return f"{who}: recovered, ON again after {down}"
        case EventKind.REMINDER:
            return f"{who}: still unresolved: {event.reason}"
        case EventKind.MASS_OUTAGE:
            return f"Mass outage in {event.area or 'the network'}: {len(event.members)} ONTs OFF"
        case EventKind.MASS_OUTAGE_RESOLVED:
            down = format_duration(event.duration) if event.duration else "?"
            return (
                f"Mass outage in {event.area or 'the network'} resolved: "
                f"{len(event.members)} ONTs back after {down}"
            )
        case _:
            return f"{who}: {event.kind.value.replace('_', ' ')}: {event.reason}"
