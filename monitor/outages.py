"""Mass outages: many ONTs of one area going OFF together become one area incident (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from monitor.model import (
    Event,
    EventKind,
    OntState,
    Reason,
    ReasonCode,
    Severity,
    Status,
    Thresholds,
    id_sort_key,
)


@dataclass(frozen=True, slots=True)
class MassOutage:
    """An open area incident and the ONTs folded into it."""

    area: str
    started_at: datetime
    members: frozenset[str]
    last_notified_at: datetime | None = None
    acked_at: datetime | None = None
    acked_by: str = ""


NOTHING_DUE = Reason(ReasonCode.NOTHING_DUE)


@dataclass(frozen=True, slots=True)
class AreaDecision:
    """What the mass-outage rule decided for one area."""

    outage: MassOutage | None
    events: tuple[Event, ...] = ()
    joined: frozenset[str] = frozenset()  # new members: their incidents become part of it
    release: frozenset[str] = frozenset()  # members still down when the outage ended
    reason: Reason = NOTHING_DUE

    @property
    def fold(self) -> frozenset[str]:
        """ONTs whose own messages are folded into the outage's."""
        members = self.outage.members if self.outage else frozenset()
        ended = self.events[0].members if self.outage is None and self.events else ()
        return members | frozenset(ended) | self.release


# Two ONTs going OFF together happens by chance; three in a small area is a pattern.
MIN_SHARE_ONTS = 3


def qualifies(off: int, area_size: int, th: Thresholds) -> bool:
    """At least N ONTs, or the configured share of the area (and at least three), are OFF."""
    if off >= th.mass_min_onts:
        return True
    return off >= MIN_SHARE_ONTS and area_size > 0 and off / area_size >= th.mass_area_share


def is_down(state: OntState) -> bool:
    """Down for mass-outage purposes: an open incident and no sign of life (OFF or lost probes)."""
    return state.incident is not None and (state.status is Status.OFF or state.rto_count > 0)


def assess_area(
    area: str,
    down: Mapping[str, datetime],
    area_size: int,
    active: MassOutage | None,
    now: datetime,
    th: Thresholds,
    unobserved: frozenset[str] = frozenset(),
) -> AreaDecision:
    """Open, extend or resolve the mass outage of one area.

    `down` maps the area's down ONTs to when their incident opened (the first lost probe or
    the OFF push): that is when they went down. `unobserved` are members of the active
    outage whose status is UNKNOWN (their probe agent is lost): neither down nor back, they
    keep the outage open as it was — it is not announced resolved because nobody can see
    them — and open none.
    """
    if not area:
        return AreaDecision(active, reason=Reason(ReasonCode.NO_AREA))
    if active is None:
        since = now - th.mass_window
        recent = sorted((i for i, opened in down.items() if opened >= since), key=id_sort_key)
        if not qualifies(len(recent), area_size, th):
            why = Reason.of(ReasonCode.BELOW_THRESHOLD, count=len(recent))
            return AreaDecision(None, reason=why)
        reason = Reason.of(
            ReasonCode.MASS_OUTAGE,
            count=len(recent),
            size=area_size,
            window_s=_seconds(th.mass_window),
        )
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
        return AreaDecision(outage, (event,), joined=outage.members, reason=reason)

    # Active: ONTs that go down during the outage join it; the outage ends when it no longer
    # qualifies, with the members still down handed back to their own incidents.
    joiners = frozenset(
        i
        for i, opened in down.items()
        if i not in active.members and opened >= active.started_at - th.mass_window
    )
    members = active.members | joiners
    still_down = frozenset(i for i in members if i in down)
    unseen = (unobserved & members) - still_down
    if qualifies(len(still_down | unseen), area_size, th):
        outage = replace(active, members=members)
        reminder = due_area_reminder(outage, still_down, area_size, now, th)
        if reminder is None or not still_down:  # no reminder of ONTs nobody can see
            why = Reason.of(ReasonCode.AREA_STILL_DOWN, down=len(still_down))
            return AreaDecision(outage, joined=joiners, reason=why)
        outage = replace(outage, last_notified_at=now)
        return AreaDecision(outage, (reminder,), joined=joiners, reason=reminder.reason)
    recovered = sorted(members - still_down - unseen, key=id_sort_key)
    reason = Reason.of(
        ReasonCode.MASS_OUTAGE_ENDED,
        back=len(recovered),
        members=len(members),
        still_off=len(still_down),
    )
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
    # The unseen are handed back to their own incidents, like those still down.
    return AreaDecision(None, (event,), release=still_down | unseen, reason=reason)


def due_area_reminder(
    outage: MassOutage,
    still_down: frozenset[str],
    area_size: int,
    now: datetime,
    th: Thresholds,
) -> Event | None:
    """A reminder when the area incident is unacknowledged for a whole repeat interval."""
    if outage.acked_at is not None:
        return None
    if now - (outage.last_notified_at or outage.started_at) < th.reminder_every:
        return None
    open_for = now - outage.started_at
    return Event(
        kind=EventKind.REMINDER,
        severity=Severity.CRITICAL,
        at=now,
        reason=Reason.of(
            ReasonCode.AREA_REMINDER,
            down=len(still_down),
            size=area_size,
            open_s=_seconds(open_for),
        ),
        area=outage.area,
        status=Status.OFF,
        members=tuple(sorted(still_down, key=id_sort_key)),
        duration=open_for,
    )


def acknowledge(outage: MassOutage, by: str, at: datetime) -> tuple[MassOutage, str]:
    """Mark the area incident acknowledged (its reminders stop); the reason says what happened."""
    if outage.acked_at is not None:
        return outage, f"already acknowledged by {outage.acked_by or 'someone'}"
    return replace(outage, acked_at=at, acked_by=by), "acknowledged"


def _seconds(td: timedelta) -> int:
    return int(td.total_seconds())
