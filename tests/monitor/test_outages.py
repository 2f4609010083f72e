"""The mass-outage rule, table-driven."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

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
from monitor.outages import MassOutage, acknowledge, assess_area, is_down, qualifies

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
TH = Thresholds()


def area(n: int, off: dict[int, float]) -> list[tuple[Ont, OntState]]:
    """n ONTs; off maps index -> minutes ago it went OFF."""
    items = []
    for i in range(1, n + 1):
        ont = Ont(id=str(i), area="Baciro")
        if i in off:
            since = T0 - timedelta(minutes=off[i])
            incident = Incident(
                Severity.WARNING, opened_at=since, reason=Reason(ReasonCode.WENT_OFF)
            )
            state = OntState(str(i), Status.OFF, status_since=since, incident=incident)
        else:
            state = OntState(str(i), Status.ON, status_since=T0 - timedelta(days=1))
        items.append((ont, state))
    return items


@dataclass(frozen=True)
class Case:
    name: str
    items: list[tuple[Ont, OntState]]
    active: MassOutage | None
    kinds: tuple[EventKind, ...]
    open_after: bool
    members: int = 0


ACTIVE = MassOutage("Baciro", T0 - timedelta(minutes=5), frozenset(str(i) for i in range(1, 13)))


def started(minutes: float, **fields: object) -> MassOutage:
    """ACTIVE, opened minutes ago, with other fields replaced."""
    return replace(ACTIVE, started_at=T0 - timedelta(minutes=minutes), **fields)  # type: ignore[arg-type]


TWELVE_LONG_DOWN = area(40, dict.fromkeys(range(1, 13), 180))
CASES = [
    Case("four_of_forty_is_not", area(40, dict.fromkeys(range(1, 5), 0.5)), None, (), False),
    Case(
        "five_of_forty_is",
        area(40, dict.fromkeys(range(1, 6), 0.5)),
        None,
        (EventKind.MASS_OUTAGE,),
        True,
        5,
    ),
    Case(
        "twelve_of_forty_is_one_event",
        area(40, dict.fromkeys(range(1, 13), 1)),
        None,
        (EventKind.MASS_OUTAGE,),
        True,
        12,
    ),
    Case("old_offs_do_not_count", area(40, dict.fromkeys(range(1, 13), 30)), None, (), False),
    Case(
        "three_of_eight_share",
        area(8, dict.fromkeys(range(1, 4), 1)),
        None,
        (EventKind.MASS_OUTAGE,),
        True,
        3,
    ),
    Case("two_of_three_is_chance", area(3, dict.fromkeys(range(1, 3), 1)), None, (), False),
    Case("active_still_down", area(40, dict.fromkeys(range(1, 13), 5)), ACTIVE, (), True, 12),
    Case(
        "active_new_member_joins_silently",
        area(40, {**dict.fromkeys(range(1, 13), 5), 20: 0.1}),
        ACTIVE,
        (),
        True,
        13,
    ),
    Case(
        "active_recovers_one_event",
        area(40, {}),
        ACTIVE,
        (EventKind.MASS_OUTAGE_RESOLVED,),
        False,
        0,
    ),
    Case(
        "mostly_recovered_resolves",
        area(40, dict.fromkeys(range(1, 3), 5)),
        ACTIVE,
        (EventKind.MASS_OUTAGE_RESOLVED,),
        False,
        0,
    ),
    # Reminders: the area incident is critical, so it reminds like one until acknowledged.
    Case("no_reminder_at_59_min", TWELVE_LONG_DOWN, started(59), (), True, 12),
    Case(
        "reminder_at_61_min_unacknowledged",
        TWELVE_LONG_DOWN,
        started(61),
        (EventKind.REMINDER,),
        True,
        12,
    ),
    Case(
        "acknowledged_never_reminds",
        TWELVE_LONG_DOWN,
        started(150, acked_at=T0 - timedelta(minutes=100), acked_by="budi"),
        (),
        True,
        12,
    ),
    Case(
        "reminded_30_min_ago_waits",
        TWELVE_LONG_DOWN,
        started(150, last_notified_at=T0 - timedelta(minutes=30)),
        (),
        True,
        12,
    ),
    Case(
        "reminds_again_an_interval_after_the_last",
        TWELVE_LONG_DOWN,
        started(150, last_notified_at=T0 - timedelta(minutes=60)),
        (EventKind.REMINDER,),
        True,
        12,
    ),
    Case(
        "recovery_beats_a_due_reminder",
        area(40, {}),
        started(61),
        (EventKind.MASS_OUTAGE_RESOLVED,),
        False,
        0,
    ),
]


def down_of(items: list[tuple[Ont, OntState]]) -> dict[str, datetime]:
    """What the engine's down index holds for these ONTs."""
    return {o.id: s.incident.opened_at for o, s in items if is_down(s) and s.incident}


def assess(items: list[tuple[Ont, OntState]], active: MassOutage | None):  # type: ignore[no-untyped-def]
    return assess_area("Baciro", down_of(items), len(items), active, T0, TH)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_assess_area(case: Case) -> None:
    verdict = assess(case.items, case.active)
    assert tuple(e.kind for e in verdict.events) == case.kinds
    assert (verdict.outage is not None) == case.open_after
    if verdict.outage is not None:
        assert len(verdict.outage.members) == case.members
        assert verdict.fold == verdict.outage.members
        assert verdict.joined <= verdict.outage.members
    assert verdict.reason


def test_resolution_counts_and_duration() -> None:
    verdict = assess(area(40, dict.fromkeys(range(1, 3), 5)), ACTIVE)
    (event,) = verdict.events
    assert event.duration == timedelta(minutes=5)
    assert len(event.members) == 10
    assert event.reason == Reason.of(ReasonCode.MASS_OUTAGE_ENDED, back=10, members=12, still_off=2)
    assert verdict.release == {"1", "2"}


def test_area_reminder_says_what_is_still_down_and_is_remembered() -> None:
    items = area(40, dict.fromkeys(range(1, 11), 180))  # 10 of the 12 members still down
    verdict = assess(items, started(125))
    (event,) = verdict.events
    assert event.kind is EventKind.REMINDER and event.severity is Severity.CRITICAL
    assert (event.area, event.ont_id) == ("Baciro", "")
    assert event.members == tuple(str(i) for i in range(1, 11))
    assert event.duration == timedelta(minutes=125)
    assert event.reason == Reason.of(ReasonCode.AREA_REMINDER, down=10, size=40, open_s=7500)
    assert verdict.outage is not None and verdict.outage.last_notified_at == T0
    assert verdict.fold == verdict.outage.members  # members still speak through the area


@pytest.mark.parametrize(
    ("outage", "reason", "by"),
    [
        pytest.param(ACTIVE, "acknowledged", "budi", id="open"),
        pytest.param(
            replace(ACTIVE, acked_at=T0, acked_by="ani"),
            "already acknowledged by ani",
            "ani",
            id="already_acknowledged",
        ),
    ],
)
def test_acknowledge(outage: MassOutage, reason: str, by: str) -> None:
    new, why = acknowledge(outage, "budi", T0 + timedelta(minutes=1))
    assert why == reason
    assert new.acked_by == by and new.acked_at is not None
    assert new.members == outage.members and new.started_at == outage.started_at


def test_lost_probes_count_before_the_off() -> None:
    items = area(40, {})
    lost = [
        (
            o,
            OntState(
                o.id,
                Status.ON,
                rto_count=1,
                status_since=T0 - timedelta(days=1),
                incident=Incident(
                    Severity.WARNING,
                    opened_at=T0,
                    reason=Reason.of(ReasonCode.RTO_ABOVE_ZERO, rto=1),
                ),
            ),
        )
        for o, _ in items[:6]
    ]
    verdict = assess(lost + items[6:], None)
    assert [e.kind for e in verdict.events] == [EventKind.MASS_OUTAGE]


@pytest.mark.parametrize(
    ("off", "size", "expected"),
    [(5, 1000, True), (4, 1000, False), (3, 10, True), (3, 11, False), (2, 2, False)],
)
def test_qualifies(off: int, size: int, expected: bool) -> None:
    assert qualifies(off, size, TH) is expected
