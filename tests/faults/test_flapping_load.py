"""Finding 2 of issue 10: a flapping ONT is bounded work and one notice, not thousands of alerts.

10,000 alternating updates for one ONT in one bulk push used to copy a growing transitions
tuple on every change (quadratic: 5.5 s frozen; 50,000 took 6 minutes and 13 GB) and stored
a notification per transition. The speed figure is bench/flap_bench.py's; these tests pin
the bounds that make it linear: the transition log never exceeds N+1 entries, and the
stored notifications of one flapping ONT stay a handful whatever the number of updates.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor import rules
from monitor.engine import Engine
from monitor.model import EventKind, Observation, Ont, OntState, Status, Thresholds
from storage.database import Database
from tests.conftest import ManualClock, sample_onts

TH = Thresholds()


def alternating(ont_id: str, n: int, at_step: timedelta, clock: ManualClock) -> list[Observation]:
    start = clock()
    return [
        Observation.push(ont_id, Status.OFF if i % 2 == 0 else Status.ON, 0, start + i * at_step)
        for i in range(n)
    ]


@pytest.mark.parametrize("step", [timedelta(0), timedelta(seconds=1), timedelta(minutes=3)])
def test_transition_log_is_bounded_in_size_and_time(step: timedelta, clock: ManualClock) -> None:
    ont = Ont(id="7", area="Baciro")
    state = OntState(ont_id="7")
    longest = 0
    flapping_notices = 0
    for obs in alternating("7", 3_000, step, clock):
        d = rules.decide(ont, state, obs, rules.Context(TH))
        state = d.state
        longest = max(longest, len(state.transitions))
        flapping_notices += sum(e.kind is EventKind.FLAPPING for e in d.events)
        assert all(obs.at - t <= TH.flap_window for t in state.transitions)
    assert longest <= TH.flap_transitions + 1
    if step < TH.flap_window / (TH.flap_transitions + 1):
        assert state.flapping and flapping_notices == 1
    else:  # one change every 3 min: never more than N in a 10 min window, so never flapping
        assert not state.flapping and flapping_notices == 0


def test_no_records_per_transition_while_flapping(clock: ManualClock) -> None:
    """Once flapping, a transition yields no event at all: not even a silent one to store."""
    ont = Ont(id="7", area="Baciro")
    state = OntState(ont_id="7")
    per_step = []
    for obs in alternating("7", 200, timedelta(seconds=2), clock):
        d = rules.decide(ont, state, obs, rules.Context(TH))
        state = d.state
        per_step.append([e.kind for e in d.events])
    flap_at = next(i for i, kinds in enumerate(per_step) if EventKind.FLAPPING in kinds)
    assert per_step[flap_at] == [EventKind.FLAPPING]
    assert all(kinds == [] for kinds in per_step[flap_at + 1 :])


@pytest.mark.parametrize("n", [2_000, 20_000])
async def test_bulk_push_of_alternating_updates_is_one_notice(
    engine: Engine, db: Database, clock: ManualClock, n: int
) -> None:
    await engine.upsert(sample_onts(2))
    pushes = alternating("1", n, timedelta(0), clock)
    pushes.append(Observation.push("2", Status.OFF, 0, clock()))  # a neighbour in the same batch
    results = await engine.ingest_many(pushes)
    assert len(results) == n + 1
    rows = await db.fetchall("SELECT kind, ont_id FROM notifications ORDER BY id")
    kinds = [k for k, ont in rows if ont == "1"]
    assert kinds.count("flapping") == 1
    # The first OFF opens; N transitions each resolve or open; the next one is the notice.
    assert len(kinds) <= TH.flap_transitions + 2, kinds
    assert ("opened", "2") in rows  # the neighbour's own alert is there
    (transitions,) = (await db.fetchall("SELECT transitions FROM ont_state WHERE ont_id = '1'"))[0]
    assert transitions.count(",") + 1 <= TH.flap_transitions + 1
    (history,) = (await db.fetchall("SELECT COUNT(*) FROM history WHERE ont_id = '1'"))[0]
    assert history == n  # every answered update is on record, linear in the input
