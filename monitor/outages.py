"""Mass outages: many ONTs of one area going OFF together become one area incident (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.model import Event, EventKind, Ont, OntState, Severity, Status, Thresholds


@dataclass(frozen=True, slots=True)
class MassOutage:
    """An open area incident and the ONTs folded into it."""

    area: str
    started_at: datetime
    members: frozenset[str]


@dataclass(frozen=True, slots=True)
class AreaDecision:
    """What the mass-outage rule decided for one area."""

    outage: MassOutage | None
    events: tuple[Event, ...] = ()
    fold: frozenset[str] = frozenset()  # ONTs whose own messages are folded into the outage
    release: frozenset[str] = frozenset()  # members still OFF when the outage ended
    reason: str = ""


# Two ONTs going OFF together happens by chance; three in a small area is a pattern.
MIN_SHARE_ONTS = 3


def qualifies(off: int, area_size: int, th: Thresholds) -> bool:
    """At least N ONTs, or the configured share of the area (and at least three), are OFF."""
    if off >= th.mass_min_onts:
        return True
    return off >= MIN_SHARE_ONTS and area_size > 0 and off / area_size >= th.mass_area_share


def assess_area(
    area: str,
    items: Sequence[tuple[Ont, OntState]],
    active: MassOutage | None,
    now: datetime,
    th: Thresholds,
) -> AreaDecision:
    """Open, extend or resolve the mass outage of one area."""
    if not area:
        return AreaDecision(active, reason="no area")
    # Down: an open incident and no sign of life (OFF, or probes lost). The incident's opening
    # time is when it went down: the first lost probe, not only the later OFF.
    off = {o.id: s.incident.opened_at for o, s in items if _down(s)}
    if active is None:
        since = now - th.mass_window
        recent = sorted((i for i, opened in off.items() if opened >= since), key=_id_key)
        if not qualifies(len(recent), len(items), th):
            return AreaDecision(None, reason=f"{len(recent)} recent OFF: below threshold")
        reason = f"{len(recent)} of {len(items)} ONTs OFF within {_minutes(th)}"
        outage = MassOutage(area=area, started_at=now, members=frozenset(recent))
        event = Event(
            kind=EventKind.MASS_OUTAGE,
            severity=Severity.CRITICAL,
            at=now,
            reason=reason,
            area=area,
            status=Status.OFF,
            members=tuple(recent),
        )
        return AreaDecision(outage, (event,), fold=outage.members, reason=reason)

    # Active: ONTs that go OFF during the outage join it; the outage ends when it no longer
    # qualifies, with the members still OFF handed back to their own incidents.
    joiners = {
        i
        for i, opened in off.items()
        if i not in active.members and opened >= active.started_at - th.mass_window
    }
    members = active.members | joiners
    still_off = {i for i in members if i in off}
    if qualifies(len(still_off), len(items), th):
        outage = MassOutage(active.area, active.started_at, frozenset(members))
        return AreaDecision(outage, fold=frozenset(members), reason=f"{len(still_off)} still OFF")
    recovered = sorted(members - still_off, key=_id_key)
    reason = f"{len(recovered)} of {len(members)} ONTs back"
    if still_off:
        reason += f", {len(still_off)} still OFF"
    event = Event(
        kind=EventKind.MASS_OUTAGE_RESOLVED,
        severity=Severity.CRITICAL,
        at=now,
        reason=reason,
        area=area,
        status=Status.ON,
        members=tuple(recovered),
        duration=now - active.started_at,
    )
    return AreaDecision(
        None, (event,), fold=frozenset(members), release=frozenset(still_off), reason=reason
    )


def _down(state: OntState) -> bool:
    return state.incident is not None and (state.status is Status.OFF or state.rto_count > 0)


def _minutes(th: Thresholds) -> str:
    return f"{int(th.mass_window.total_seconds() // 60)} min"


def _id_key(ont_id: str) -> tuple[int, int | str]:
    return (0, int(ont_id)) if ont_id.isdigit() else (1, ont_id)
