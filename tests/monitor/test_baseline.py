"""A silent baseline that stays silent (issue 12): ONTs imported OFF raise nothing until they change.

Table-driven over the pure rules: an ONT is imported with a status (OFF since 40 days, as an
older system's export has it), then a sequence of ticks, pushes and probes follows; the test
lists the events that would become messages.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor import rules
from monitor.model import EventKind, Observation, Ont, OntState, Severity, Source, Status

NOW = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
ONT = Ont(id="7", name="Bumijo RT 01", area="Bumijo", ip="127.0.0.7")
CTX = rules.Context()

Step = tuple  # ("tick", seconds) | ("push", status, rto, seconds) | ("probe", replied, seconds)


def imported(status: Status, rto: int) -> OntState:
    obs = Observation.push(ONT.id, status, rto, NOW - timedelta(days=40), Source.IMPORT)
    decision = rules.decide(ONT, OntState(ont_id=ONT.id), obs, CTX)
    assert decision.events == ()
    return decision.state


def run(state: OntState, steps: list[Step]) -> tuple[OntState, list[EventKind]]:
    told: list[EventKind] = []
    for step in steps:
        at = NOW + timedelta(seconds=step[-1])
        if step[0] == "tick":
            decision = rules.tick(ONT, state, at, CTX)
        elif step[0] == "push":
            obs = Observation.push(ONT.id, step[1], step[2], at)
            decision = rules.decide(ONT, state, obs, CTX)
        else:
            decision = rules.decide(ONT, state, Observation.probe(ONT.id, step[1], at), CTX)
        state = decision.state
        told.extend(e.kind for e in decision.events if e.notify)
    return state, told


H = 3600
CASES = [
    # (name, imported status, rto, steps, messages, severity at the end)
    ("first tick after start", Status.OFF, 0, [("tick", 15)], [], Severity.CRITICAL),
    (
        "hours of ticks: no reminder",
        Status.OFF,
        0,
        [("tick", 15), ("tick", 2 * H), ("tick", 5 * H), ("tick", 30 * H)],
        [],
        Severity.CRITICAL,
    ),
    (
        "probes losing echoes",
        Status.OFF,
        0,
        [("probe", False, 5 * i) for i in range(1, 7)] + [("tick", 2 * H)],
        [],
        Severity.CRITICAL,
    ),
    ("pushes repeating OFF", Status.OFF, 78, [("push", Status.OFF, 80, 30)], [], Severity.CRITICAL),
    (
        "recovery is announced",
        Status.OFF,
        0,
        [("push", Status.ON, 0, 60)],
        [EventKind.RESOLVED],
        Severity.OK,
    ),
    (
        "probe reply is a recovery",
        Status.OFF,
        78,
        [("probe", True, 5)],
        [EventKind.RESOLVED],
        Severity.OK,
    ),
    (
        "after recovering, an ordinary ONT",
        Status.OFF,
        0,
        [("push", Status.ON, 0, 60), ("push", Status.OFF, 0, 120), ("tick", 2 * H)],
        [EventKind.RESOLVED, EventKind.OPENED, EventKind.ESCALATED],
        Severity.CRITICAL,
    ),
    (
        "a status change ends the baseline",
        Status.OFF,
        0,
        [("push", Status.ON, 1, 60), ("push", Status.ON, 3, 120)],
        [EventKind.ESCALATED],
        Severity.CRITICAL,
    ),
    (
        "imported ON, then OFF: ordinary alerts",
        Status.ON,
        0,
        [("push", Status.OFF, 0, 60), ("tick", 2 * H)],
        [EventKind.OPENED, EventKind.ESCALATED],
        Severity.CRITICAL,
    ),
]


@pytest.mark.parametrize(
    ("status", "rto", "steps", "messages", "severity"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_baseline(
    status: Status, rto: int, steps: list[Step], messages: list[EventKind], severity: Severity
) -> None:
    state, told = run(imported(status, rto), steps)
    assert told == messages
    assert state.severity is severity


def test_an_imported_incident_is_marked_as_the_baseline() -> None:
    state = imported(Status.OFF, 0)
    assert rules.is_baseline(state.incident)
    assert state.incident is not None and state.incident.acked_at is not None
    assert not rules.is_baseline(imported(Status.ON, 0).incident)


async def test_the_real_export_imported_stays_silent_in_the_engine(engine, clock, reads) -> None:  # type: ignore[no-untyped-def]
    """The 417-ONT export through the importer and the engine: ticks and probes tell nothing."""
    from zoneinfo import ZoneInfo

    from api.app import apply_import
    from api.records import parse_import
    from tests.conftest import HOTSPOT

    plan = parse_import(HOTSPOT.read_bytes(), "application/json")
    await apply_import(engine, plan, ZoneInfo("Asia/Jakarta"), clock.now)
    off = [i for i, s in engine.states.items() if s.status is Status.OFF]
    assert len(off) == 36
    told = []
    for seconds in (15, 2 * H, 5 * H, 30 * H):  # the 15 s tick, escalation, reminders
        told += [e for e in await engine.tick(NOW + timedelta(seconds=seconds)) if e.notify]
    for n in range(1, 5):  # probes losing echoes of an ONT imported OFF
        at = NOW + timedelta(hours=31, seconds=5 * n)
        decision = await engine.ingest(Observation.probe(off[0], False, at))
        told += [e for e in decision.events if e.notify]
    assert told == []
    assert (await reads.unread_count()) == 0
    back = await engine.ingest(Observation.probe(off[1], True, NOW + timedelta(hours=32)))
    assert [e.kind for e in back.events if e.notify] == [EventKind.RESOLVED]
