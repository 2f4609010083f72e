"""Table-driven tests of the pure rules for probe agents: absolute lost counts, the stale
guard, a lost agent's ONTs becoming UNKNOWN, and mass outages with UNKNOWN members."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from monitor import rules
from monitor.model import (
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
from monitor.outages import MassOutage, assess_area

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
TH = Thresholds()  # down_after 2, critical_rto 3
ONT = Ont(id="7", name="Baciro RT 9", area="Baciro", ip="127.0.0.7")
INC = Incident(
    Severity.WARNING, opened_at=T0 - timedelta(minutes=5), reason=Reason(ReasonCode.WENT_OFF)
)


def st(status: Status = Status.ON, rto: int = 0, **kw: object) -> OntState:
    return OntState(ont_id="7", status=status, rto_count=rto, status_since=T0, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ObserveCase:
    name: str
    state: OntState
    obs: Observation
    expected: tuple[Status, int]


def probe_lost(at: datetime = T0) -> Observation:
    return Observation.probe("7", False, at)


OBSERVE = [
    # An agent's count is absolute: it is taken as it is, not added to.
    ObserveCase("agent_lost_1_from_on", st(), Observation.agent("7", 1, T0), (Status.ON, 1)),
    ObserveCase("agent_lost_2_is_off", st(), Observation.agent("7", 2, T0), (Status.OFF, 2)),
    ObserveCase("agent_lost_5_at_once", st(), Observation.agent("7", 5, T0), (Status.OFF, 5)),
    ObserveCase(
        "agent_repeat_same_count", st(Status.OFF, 3), Observation.agent("7", 3, T0), (Status.OFF, 3)
    ),
    ObserveCase(
        "agent_lower_count_kept_as_is",
        st(Status.OFF, 6),
        Observation.agent("7", 2, T0),
        (Status.OFF, 2),
    ),
    ObserveCase(
        "agent_replied_clears", st(Status.OFF, 4), Observation.agent("7", 0, T0), (Status.ON, 0)
    ),
    ObserveCase(
        "agent_lost_1_from_unknown",
        st(Status.UNKNOWN),
        Observation.agent("7", 1, T0),
        (Status.UNKNOWN, 1),
    ),
    ObserveCase(
        "agent_lost_2_from_unknown",
        st(Status.UNKNOWN),
        Observation.agent("7", 2, T0),
        (Status.OFF, 2),
    ),
    # The central prober's lost echo (no count) adds one, as before.
    ObserveCase("probe_lost_adds_one", st(Status.ON, 1), probe_lost(), (Status.OFF, 2)),
    ObserveCase("probe_lost_first", st(), probe_lost(), (Status.ON, 1)),
    ObserveCase("probe_lost_climbs", st(Status.OFF, 4), probe_lost(), (Status.OFF, 5)),
]


@pytest.mark.parametrize("case", OBSERVE, ids=lambda c: c.name)
def test_observe(case: ObserveCase) -> None:
    assert rules.observe(case.state, case.obs, TH) == case.expected


def test_a_report_applied_twice_changes_nothing() -> None:
    ctx = rules.Context(TH)
    first = rules.decide(ONT, st(), Observation.agent("7", 2, T0), ctx)
    again = rules.decide(ONT, first.state, Observation.agent("7", 2, T0), ctx)
    assert [e.kind for e in first.events] == [EventKind.OPENED]
    assert again.changed is False and again.events == () and again.state == first.state


@dataclass(frozen=True)
class StaleCase:
    name: str
    last_seen: datetime | None
    obs: Observation
    stale: bool


LATER, EARLIER = T0 + timedelta(seconds=1), T0 - timedelta(seconds=1)
STALE = [
    StaleCase("agent_older", T0, Observation.agent("7", 0, EARLIER), True),
    StaleCase("agent_same_time", T0, Observation.agent("7", 0, T0), False),
    StaleCase("agent_newer", T0, Observation.agent("7", 0, LATER), False),
    StaleCase("agent_never_seen", None, Observation.agent("7", 0, EARLIER), False),
    StaleCase(
        "import_older", T0, Observation.push("7", Status.OFF, 0, EARLIER, Source.IMPORT), True
    ),
    # Stamped by this server at receipt: earlier only when the clock stepped back; applied.
    StaleCase("push_earlier", T0, Observation.push("7", Status.OFF, 0, EARLIER), False),
    StaleCase("probe_earlier", T0, Observation.probe("7", False, EARLIER), False),
    StaleCase(
        "simulate_earlier", T0, Observation.push("7", Status.ON, 0, EARLIER, Source.SIMULATE), False
    ),
]


@pytest.mark.parametrize("case", STALE, ids=lambda c: c.name)
def test_is_stale(case: StaleCase) -> None:
    assert rules.is_stale(st(last_seen=case.last_seen), case.obs) is case.stale


def test_stale_decision_changes_nothing() -> None:
    state = st(Status.OFF, 3, last_seen=T0, incident=INC)
    d = rules.stale(state)
    assert (d.state, d.events, d.reason.code, d.changed) == (state, (), ReasonCode.STALE, False)


@dataclass(frozen=True)
class UnobservedCase:
    name: str
    state: OntState
    changed: bool


UNOBSERVED = [
    UnobservedCase("on", st(last_seen=EARLIER), True),
    UnobservedCase("off_with_incident", st(Status.OFF, 4, last_seen=EARLIER, incident=INC), True),
    UnobservedCase("on_counting_lost", st(Status.ON, 1, last_seen=EARLIER, incident=INC), True),
    UnobservedCase("unknown_counting_lost", st(Status.UNKNOWN, 1, last_seen=EARLIER), True),
    UnobservedCase("already_unknown", st(Status.UNKNOWN, 0, last_seen=EARLIER), False),
]


@pytest.mark.parametrize("case", UNOBSERVED, ids=lambda c: c.name)
def test_unobserved(case: UnobservedCase) -> None:
    now = T0 + timedelta(minutes=1)
    new = rules.unobserved(case.state, now)
    if not case.changed:
        assert new is None
        return
    assert new is not None
    assert (new.status, new.rto_count) == (Status.UNKNOWN, 0)
    assert new.last_seen == case.state.last_seen  # a later late observation is judged by it
    assert new.incident == case.state.incident  # kept open: only a real observation ends it
    expected_since = case.state.status_since if case.state.status is Status.UNKNOWN else now
    assert new.status_since == expected_since


def test_unknown_with_an_incident_neither_resolves_nor_alerts_on_tick() -> None:
    state = rules.unobserved(st(Status.OFF, 2, last_seen=EARLIER, incident=INC), T0)
    assert state is not None
    d = rules.tick(ONT, state, T0 + timedelta(minutes=10), rules.Context(TH))
    assert d.events == () and d.state.incident == INC


def test_no_reminder_while_unobserved_then_again_once_seen() -> None:
    """A critical, unacknowledged incident reminds every hour; while its agent is lost the
    one "agent lost" alert speaks for it; seen OFF again, it reminds as before."""
    critical = replace(INC, severity=Severity.CRITICAL, opened_at=T0 - timedelta(hours=3))
    off = st(Status.OFF, 5, last_seen=EARLIER, incident=critical)
    later = T0 + timedelta(hours=2)
    assert rules.due_reminder(off, later, TH) is not None
    unknown = rules.unobserved(off, T0)
    assert unknown is not None
    assert rules.due_reminder(unknown, later, TH) is None
    assert rules.tick(ONT, unknown, later, rules.Context(TH)).events == ()
    seen = rules.decide(ONT, unknown, Observation.agent("7", 6, later), rules.Context(TH)).state
    assert seen.status is Status.OFF
    assert rules.due_reminder(seen, later, TH) is not None


# -- mass outages with UNKNOWN members ----------------------------------------------------

MEMBERS = frozenset(str(i) for i in range(1, 13))
ACTIVE = MassOutage("Baciro", T0 - timedelta(minutes=5), MEMBERS)


def down(ids: range, minutes_ago: float = 5) -> dict[str, datetime]:
    return {str(i): T0 - timedelta(minutes=minutes_ago) for i in ids}


@dataclass(frozen=True)
class AreaCase:
    name: str
    down: dict[str, datetime]
    unobserved: frozenset[str]
    active: MassOutage | None
    kinds: tuple[EventKind, ...]
    open_after: bool
    back: int | None = None  # MASS_OUTAGE_ENDED's "back"
    release: int = 0


ALL_UNKNOWN = frozenset(MEMBERS)
AREA = [
    # Every member UNKNOWN (their agent is lost): not resolved, no event.
    AreaCase("all_members_unknown_stays_open", {}, ALL_UNKNOWN, ACTIVE, (), True),
    # Half unknown, half still down: stays open.
    AreaCase(
        "half_unknown_half_down",
        down(range(1, 7)),
        frozenset(str(i) for i in range(7, 13)),
        ACTIVE,
        (),
        True,
    ),
    # Without the unknown set the same area would be announced resolved: the old behaviour.
    AreaCase(
        "no_unknown_info_resolves",
        {},
        frozenset(),
        ACTIVE,
        (EventKind.MASS_OUTAGE_RESOLVED,),
        False,
        12,
    ),
    # Most came back ON, two unknown, one down: resolved; the unknown are not counted back.
    AreaCase(
        "mostly_back_two_unknown",
        down(range(1, 2)),
        frozenset({"2", "3"}),
        ACTIVE,
        (EventKind.MASS_OUTAGE_RESOLVED,),
        False,
        9,
        3,
    ),
    # UNKNOWN ONTs (not down) open no mass outage, however many.
    AreaCase("unknown_open_nothing", {}, frozenset(str(i) for i in range(1, 30)), None, (), False),
]


@pytest.mark.parametrize("case", AREA, ids=lambda c: c.name)
def test_assess_area_with_unobserved(case: AreaCase) -> None:
    verdict = assess_area("Baciro", case.down, 40, case.active, T0, TH, unobserved=case.unobserved)
    assert tuple(e.kind for e in verdict.events) == case.kinds
    assert (verdict.outage is not None) == case.open_after
    if case.back is not None:
        assert verdict.reason.param("back") == case.back
        assert len(verdict.events[0].members) == case.back
    assert len(verdict.release) == case.release


def test_no_area_reminder_while_every_member_is_unknown() -> None:
    old = replace(ACTIVE, started_at=T0 - timedelta(hours=3))
    verdict = assess_area("Baciro", {}, 40, old, T0, TH, unobserved=ALL_UNKNOWN)
    assert verdict.events == () and verdict.outage is not None
    # One member still known down: it reminds, counting only what is known down.
    verdict = assess_area(
        "Baciro", down(range(1, 2), 180), 40, old, T0, TH, unobserved=ALL_UNKNOWN - {"1"}
    )
    assert [e.kind for e in verdict.events] == [EventKind.REMINDER]
    assert verdict.events[0].reason.param("down") == 1
