"""The alert rules: pure functions of (state, observation or tick, now). No I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from monitor.model import (
    Decision,
    Event,
    EventKind,
    Incident,
    Observation,
    Ont,
    OntState,
    Reason,
    ReasonCode,
    Severity,
    Source,
    Status,
    Thresholds,
)


@dataclass(frozen=True, slots=True)
class Context:
    """What the rules need besides state and observation: thresholds and silences."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    muted: bool = False


def classify(state: OntState, now: datetime, th: Thresholds) -> tuple[Severity, Reason]:
    """Severity the ONT's condition calls for, with the reason (DESIGN.md's severity table)."""
    if state.rto_count >= th.critical_rto:
        why = Reason.of(ReasonCode.RTO_AT_THRESHOLD, rto=state.rto_count, threshold=th.critical_rto)
        return Severity.CRITICAL, why
    if (
        state.status is Status.OFF
        and state.status_since is not None
        and now - state.status_since > th.critical_off_after
    ):
        why = Reason.of(ReasonCode.OFF_LONGER_THAN, seconds=_seconds(th.critical_off_after))
        return Severity.CRITICAL, why
    if state.status is Status.OFF and state.incident and state.incident.mass_outage:
        why = Reason.of(ReasonCode.MASS_OUTAGE_MEMBER, area=state.incident.mass_outage)
        return Severity.CRITICAL, why
    if state.status is Status.OFF:
        return Severity.WARNING, Reason.of(ReasonCode.WENT_OFF)
    if state.rto_count > 0:
        return Severity.WARNING, Reason.of(ReasonCode.RTO_ABOVE_ZERO, rto=state.rto_count)
    ok = ReasonCode.RECOVERED if state.status is Status.ON else ReasonCode.NO_PROBLEM
    return Severity.OK, Reason(ok)


def observe(state: OntState, obs: Observation, th: Thresholds) -> tuple[Status, int]:
    """Status and rto_count after an observation: a probe's facts or a push's report."""
    if obs.replied is not None:
        if obs.replied:
            return Status.ON, 0
        # An agent counts its lost echoes itself: the count is absolute, so a report applied
        # twice (a retry after a lost answer) changes nothing. The central prober adds one.
        rto = state.rto_count + 1 if obs.rto_count is None else obs.rto_count
        return (Status.OFF if rto >= th.down_after else state.status), rto
    status = obs.status or state.status
    if obs.rto_count is not None:
        return status, obs.rto_count
    # A push without rto_count: ON clears it, OFF keeps what we knew.
    return status, 0 if status is Status.ON else state.rto_count


# Sources whose observation time is this server's clock when it received them: they arrive in
# order by construction, so an earlier time than the state's last one means the clock stepped
# back (NTP on a box without a real-time clock), not a late fact. Refusing them would blind the
# monitor until the clock caught up; they are applied. Agents' and imports' times were made
# elsewhere, earlier: those can be late, and a late one must not overwrite a newer state.
SERVER_STAMPED = frozenset({Source.PUSH, Source.PROBE, Source.SIMULATE})


def is_stale(state: OntState, obs: Observation) -> bool:
    """An observation made before the state's last one (replayed late by an agent's queue, or
    an older export imported): it is not applied (docs/agents.md, "Time")."""
    return (
        state.last_seen is not None
        and obs.at < state.last_seen
        and obs.source not in SERVER_STAMPED
    )


STALE = Reason(ReasonCode.STALE)


def stale(state: OntState) -> Decision:
    """The decision for a stale observation: nothing changes, nothing is told."""
    return Decision(state=state, events=(), reason=STALE, changed=False)


def unobserved(state: OntState, now: datetime) -> OntState | None:
    """The state of an ONT whose probe agent is lost: UNKNOWN, not OFF, from now on.

    last_seen stays (a late observation older than it is still stale) and so does the open
    incident (an UNKNOWN ONT neither resolves nor re-opens it; its next real observation
    does). None when it is UNKNOWN with no lost echoes already: nothing to change.
    """
    if state.status is Status.UNKNOWN and state.rto_count == 0:
        return None
    since = state.status_since if state.status is Status.UNKNOWN else now
    return state.evolve(status=Status.UNKNOWN, rto_count=0, status_since=since)


def unobserved_reason(agent: str) -> Reason:
    """Why an ONT became UNKNOWN: its agent is lost."""
    return Reason.of(ReasonCode.UNOBSERVED, agent=agent)


def advance_incident(
    state: OntState, target: Severity, reason: Reason, at: datetime
) -> tuple[Incident | None, Event | None]:
    """Open, escalate or resolve the incident; one event per change, none for repeats."""
    inc = state.incident
    if inc is None:
        if target is Severity.OK:
            return None, None
        opened = Incident(severity=target, opened_at=at, reason=reason)
        return opened, _event(EventKind.OPENED, target, at, reason, state)
    if target is Severity.OK:
        if state.status is not Status.ON:
            return inc, None  # resolution needs a positive sign of life, not just "unknown"
        duration = at - inc.opened_at
        return None, _event(EventKind.RESOLVED, inc.severity, at, reason, state, duration)
    if target.rank > inc.severity.rank:
        escalated = replace(inc, severity=target, escalated_at=at, reason=reason)
        return escalated, _event(EventKind.ESCALATED, target, at, reason, state)
    return inc, None


def detect_flapping(
    state: OntState, at: datetime, th: Thresholds
) -> tuple[tuple[datetime, ...], bool, Event | None]:
    """Trim the transition log to the window; flapping is more than N transitions in it."""
    recent = recent_transitions(state.transitions, at, th)
    if state.flapping or len(recent) <= th.flap_transitions:
        return recent, state.flapping, None
    return recent, True, _flapping_event(state, len(recent), at, th)


def recent_transitions(
    transitions: tuple[datetime, ...], at: datetime, th: Thresholds
) -> tuple[datetime, ...]:
    """The transition log bounded in time (the window) and in size: N+1 entries decide
    "more than N", and the newest decides when flapping ends, so a 20,000-change push is
    linear work, not a growing copy per change."""
    recent = tuple(t for t in transitions if at - t <= th.flap_window)
    return recent[-(th.flap_transitions + 1) :]


def _flapping_event(state: OntState, count: int, at: datetime, th: Thresholds) -> Event:
    reason = Reason.of(ReasonCode.FLAPPING, transitions=count, window_s=_seconds(th.flap_window))
    return _event(EventKind.FLAPPING, Severity.WARNING, at, reason, state)


def decide(ont: Ont, state: OntState, obs: Observation, ctx: Context) -> Decision:
    """Apply one observation to one ONT's state: the new state, its events and why."""
    th = ctx.thresholds
    at = obs.at
    status, rto = observe(state, obs, th)
    status_changed = status is not state.status
    transitions = state.transitions
    if status_changed and {status, state.status} == {Status.ON, Status.OFF}:
        transitions = (*transitions, at)
    transitions = recent_transitions(transitions, at, th)
    flapping = state.flapping or len(transitions) > th.flap_transitions
    new = state.evolve(  # one copy per observation, not one per field group (20,000-item pushes)
        status=status,
        rto_count=rto,
        status_since=at if status_changed or state.status_since is None else state.status_since,
        last_seen=at,
        last_on=at if status is Status.ON else state.last_on,
        transitions=transitions,
        flapping=flapping,
    )
    flap_event = None
    if flapping and not state.flapping:
        flap_event = _flapping_event(new, len(transitions), at, th)

    target, reason = classify(new, at, th)
    incident, event = advance_incident(new, target, reason, at)
    if incident is not new.incident:
        new = new.evolve(incident=incident)
    # While flapping, the one flapping notice (and later its end) speaks for every transition:
    # no per-transition records at all, or one flapping ONT fills the notifications.
    told = (flap_event,) if flapping else (event,)
    events = tuple(_routed(e, ont, ctx, flapping) for e in told if e is not None)
    if obs.source is Source.IMPORT:
        events = ()  # an import sets a baseline (incidents included); it is not news
        if new.incident is not None and state.incident is None:
            # Known to whoever migrated: no reminders for it; its recovery is still announced.
            new = new.evolve(incident=replace(new.incident, acked_at=at, acked_by=BASELINE_BY))
    elif is_baseline(state.incident):
        new, events = _quiet_baseline(new, events, status_changed)
    changed = (new.status, new.rto_count, new.incident, new.flapping) != (
        state.status,
        state.rto_count,
        state.incident,
        state.flapping,
    )
    why = event.reason if event else (reason if changed else Reason(ReasonCode.UNCHANGED))
    return Decision(state=new, events=events, reason=why, changed=changed)


BASELINE_BY = "import"  # acked_by of an incident that came with an import (a silent baseline)


def is_baseline(incident: Incident | None) -> bool:
    """An incident imported as a baseline: it raises nothing until the ONT's status changes."""
    return incident is not None and incident.acked_by == BASELINE_BY


def _quiet_baseline(
    new: OntState, events: tuple[Event, ...], status_changed: bool
) -> tuple[OntState, tuple[Event, ...]]:
    """A baseline incident escalates without a word while the status holds (probes counting
    lost echoes, pushes repeating OFF); its recovery is announced; once the status has
    changed it is an ordinary incident."""
    if new.incident is None:
        return new, events  # resolved: the recovery is news
    if status_changed:
        return new.evolve(incident=replace(new.incident, acked_at=None, acked_by="")), events
    return new, tuple(e for e in events if e.kind is not EventKind.ESCALATED)


def check_inventory(old: Ont | None, new: Ont, at: datetime) -> Event | None:
    """A warning when an ONT is saved with an invalid IP (once per IP value)."""
    if new.ip_valid or (old is not None and old.ip == new.ip):
        return None
    return Event(
        kind=EventKind.INVALID_IP,
        severity=Severity.WARNING,
        at=at,
        ont_id=new.id,
        area=new.area,
        reason=Reason.of(ReasonCode.INVALID_IP, ip=new.ip),
    )


def acknowledge(state: OntState, by: str, at: datetime) -> tuple[OntState, str]:
    """Mark the open incident acknowledged; the reason says what happened."""
    if state.incident is None:
        return state, "no open incident"
    if state.incident.acked_at is not None:
        return state, f"already acknowledged by {state.incident.acked_by or 'someone'}"
    incident = replace(state.incident, acked_at=at, acked_by=by)
    return state.evolve(incident=incident), "acknowledged"


def _routed(event: Event, ont: Ont, ctx: Context, flapping: bool) -> Event:
    """Decide whether an event becomes a message; resolved messages are never dropped."""
    event = replace(event, area=ont.area)
    if flapping and event.kind is not EventKind.FLAPPING:
        return replace(event, notify=False)  # the flapping notice, and later its end, speak for it
    if event.kind is EventKind.RESOLVED:
        return event
    if ctx.muted:
        return replace(event, notify=False)
    return event


def _event(
    kind: EventKind,
    severity: Severity,
    at: datetime,
    reason: Reason,
    state: OntState,
    duration: timedelta | None = None,
) -> Event:
    return Event(
        kind=kind,
        severity=severity,
        at=at,
        reason=reason,
        ont_id=state.ont_id,
        status=state.status,
        rto_count=state.rto_count,
        duration=duration,
    )


def _seconds(td: timedelta) -> int:
    """A span as whole seconds, the unit of every duration parameter of a reason."""
    return int(td.total_seconds())


def tick(ont: Ont, state: OntState, now: datetime, ctx: Context) -> Decision:
    """Time-driven rules for one ONT: OFF too long, reminders, end of flapping."""
    th = ctx.thresholds
    events: list[Event] = []
    new = state
    reasons: list[Reason] = []

    target, reason = classify(new, now, th)
    if new.incident is not None and target.rank > new.incident.severity.rank:
        incident, event = advance_incident(new, target, reason, now)
        new = new.evolve(incident=incident)
        if event is not None and not is_baseline(incident):  # a baseline escalates silently
            events.append(_routed(event, ont, ctx, new.flapping))
            reasons.append(reason)

    if new.flapping:
        recent = tuple(t for t in new.transitions if now - t <= th.flap_window)
        if not recent:
            why = Reason.of(
                ReasonCode.FLAPPING_ENDED,
                window_s=_seconds(th.flap_window),
                status=new.status.value,
            )
            event = _event(
                EventKind.FLAPPING_ENDED,
                new.severity if new.incident else Severity.OK,
                now,
                why,
                new,
            )
            new = new.evolve(flapping=False, transitions=recent)
            events.append(replace(event, area=ont.area))
            reasons.append(why)

    reminder = due_reminder(new, now, th)
    if reminder is not None and not new.flapping:
        inc = new.incident
        assert inc is not None
        new = new.evolve(incident=replace(inc, last_notified_at=now))
        events.append(_routed(replace(reminder, area=ont.area), ont, ctx, False))
        reasons.append(reminder.reason)

    changed = new != state
    return Decision(
        state=new,
        events=tuple(events),
        reason=_joined(reasons),
        changed=changed,
    )


def due_reminder(state: OntState, now: datetime, th: Thresholds) -> Event | None:
    """A reminder when a critical incident is unacknowledged for a whole repeat interval."""
    inc = state.incident
    if inc is None or inc.severity is not Severity.CRITICAL or inc.acked_at is not None:
        return None
    if inc.mass_outage:
        return None  # the area incident speaks for its members
    if state.status is Status.UNKNOWN:
        return None  # unobserved (its agent is lost): the one "agent lost" alert speaks for it
    last = inc.last_notified_at or inc.escalated_at or inc.opened_at
    if now - last < th.reminder_every:
        return None
    open_for = now - inc.opened_at
    return Event(
        kind=EventKind.REMINDER,
        severity=inc.severity,
        at=now,
        ont_id=state.ont_id,
        reason=Reason.of(
            ReasonCode.REMINDER,
            severity=inc.severity.value,
            open_s=_seconds(open_for),
            cause=inc.reason,
        ),
        status=state.status,
        rto_count=state.rto_count,
        duration=open_for,
    )


def _joined(reasons: list[Reason]) -> Reason:
    """One reason for a tick: nothing due, the one thing done, or several."""
    if not reasons:
        return Reason(ReasonCode.NOTHING_DUE)
    return reasons[0] if len(reasons) == 1 else Reason.of(ReasonCode.SEVERAL, parts=tuple(reasons))
