"""Time-driven rules, table-driven with an injected clock: OFF too long, reminders, flapping end."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from monitor import rules
from monitor.model import (
    EventKind,
    Incident,
    Ont,
    OntState,
    Reason,
    ReasonCode,
    Severity,
    Status,
    Thresholds,
)

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
TH = Thresholds()
ONT = Ont(id="9", name="Demangan RT 2", area="Demangan", ip="127.0.0.9")
M = timedelta(minutes=1)


def off_for(minutes: float, severity: Severity = Severity.WARNING, **inc: object) -> OntState:
    since = T0 - minutes * M
    why = Reason(ReasonCode.WENT_OFF)
    incident = Incident(severity=severity, opened_at=since, reason=why, **inc)  # type: ignore[arg-type]
    return OntState(ont_id="9", status=Status.OFF, status_since=since, incident=incident)


@dataclass(frozen=True)
class TickCase:
    name: str
    state: OntState
    severity: Severity
    events: tuple[EventKind, ...]
    muted: bool = False
    notify: tuple[bool, ...] | None = None


CASES = [
    TickCase("off_59_min_stays_warning", off_for(59), Severity.WARNING, ()),
    TickCase("off_61_min_escalates", off_for(61), Severity.CRITICAL, (EventKind.ESCALATED,)),
    TickCase(
        "off_61_min_muted_escalates_silently",
        off_for(61),
        Severity.CRITICAL,
        (EventKind.ESCALATED,),
        muted=True,
        notify=(False,),
    ),
    TickCase(
        "critical_59_min_no_reminder_yet", off_for(59, Severity.CRITICAL), Severity.CRITICAL, ()
    ),
    TickCase(
        "critical_61_min_unacked_reminds",
        off_for(61, Severity.CRITICAL),
        Severity.CRITICAL,
        (EventKind.REMINDER,),
    ),
    TickCase(
        "critical_acked_no_reminder",
        off_for(300, Severity.CRITICAL, acked_at=T0 - M),
        Severity.CRITICAL,
        (),
    ),
    TickCase(
        "reminded_recently_no_reminder",
        off_for(300, Severity.CRITICAL, last_notified_at=T0 - 30 * M),
        Severity.CRITICAL,
        (),
    ),
    TickCase(
        "mass_outage_member_no_own_reminder",
        off_for(300, Severity.CRITICAL, mass_outage="Demangan"),
        Severity.CRITICAL,
        (),
    ),
    TickCase(
        "healthy_nothing",
        OntState(ont_id="9", status=Status.ON, status_since=T0 - 900 * M),
        Severity.OK,
        (),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_tick(case: TickCase) -> None:
    d = rules.tick(ONT, case.state, T0, rules.Context(TH, muted=case.muted))
    assert d.state.severity is case.severity
    assert tuple(e.kind for e in d.events) == case.events
    if case.notify is not None:
        assert tuple(e.notify for e in d.events) == case.notify
    assert d.changed == bool(case.events)


def test_reminder_every_interval_until_ack() -> None:
    state = off_for(0, Severity.CRITICAL)
    reminders = []
    for minute in range(0, 4 * 60 + 1, 5):  # four hours of ticks, every 5 minutes
        now = T0 + minute * M
        if minute == 200:
            state, _ = rules.acknowledge(state, "budi", now)
        d = rules.tick(ONT, state, now, rules.Context(TH))
        state = d.state
        reminders += [minute for e in d.events if e.kind is EventKind.REMINDER]
    assert reminders == [60, 120, 180]  # one per hour, none after the ack at 200 min


def test_flapping_ends_once_when_stable() -> None:
    flapping = OntState(
        ont_id="9",
        status=Status.ON,
        status_since=T0 - 3 * M,
        flapping=True,
        transitions=tuple(T0 - k * M for k in (3, 4, 5, 6, 7, 8)),
    )
    d = rules.tick(ONT, flapping, T0 + 5 * M, rules.Context(TH))
    assert d.events == () and d.state.flapping  # changes 8..13 min ago: still in the window
    d = rules.tick(ONT, flapping, T0 + 11 * M, rules.Context(TH))
    assert [e.kind for e in d.events] == [EventKind.FLAPPING_ENDED]
    why = d.events[0].reason
    assert why == Reason.of(ReasonCode.FLAPPING_ENDED, window_s=600, status="ON")
    assert not d.state.flapping
    again = rules.tick(ONT, d.state, T0 + 12 * M, rules.Context(TH))
    assert again.events == ()


def test_critical_after_threshold_is_configurable() -> None:
    th = replace(TH, critical_off_after=timedelta(minutes=10))
    d = rules.tick(ONT, off_for(11), T0, rules.Context(th))
    assert d.state.severity is Severity.CRITICAL
