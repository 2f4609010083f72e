"""The tracker's rules, as tables: what each round's echoes make the agent send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent.tracker import Tracker
from monitor.rounds import Echo

T0 = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def echoes(pattern: str, start: float) -> tuple[Echo, ...]:
    """'+' answered, '-' lost: one echo per character, 1 s apart from `start`."""
    return tuple(Echo(at(start + i), c == "+") for i, c in enumerate(pattern))


def quiet_tracker(ids: list[str], **kw: object) -> Tracker:
    """A tracker whose refresh ring is too slow to show within a test (refresh once a day)."""
    t = Tracker(interval=5, refresh_s=86400, **kw)  # type: ignore[arg-type]
    t.assign(ids)
    return t


# Each row: rounds of one ONT ("+", "-", or "-+"/"--" for a round with its retry), and the
# lost counts the agent sends for each round (after the first, full report).
CHANGES = [
    ("steady replies send nothing", ["+", "+", "+"], [[], []]),
    ("lost then confirmed by the retry", ["+", "--", "-", "-", "-"], [[1, 2], [3], [], []]),
    ("a retry that answers is a blip", ["+", "-+", "+"], [[1, 0], []]),
    ("back after a climb", ["+", "--", "-", "+"], [[1, 2], [3], [0]]),
    ("climb stops at the highest threshold", ["-", "-", "-", "-", "-"], [[2], [3], [], []]),
    ("flapping every round", ["+", "-", "+", "-"], [[1], [0], [1]]),
]


@pytest.mark.parametrize(("why", "rounds", "expected"), CHANGES, ids=[c[0] for c in CHANGES])
def test_changes_and_the_climb(why: str, rounds: list[str], expected: list[list[int]]) -> None:
    """Only news is sent: a change of replied/lost, and each count up to max(down, critical)."""
    t = quiet_tracker(["1"], down_after=2, critical_rto=3)
    first = t.step({"1": echoes(rounds[0], 0)})
    assert first.full and len(first.obs) >= 1
    sent = []
    for n, pattern in enumerate(rounds[1:], start=1):
        step = t.step({"1": echoes(pattern, n * 5)})
        assert not step.full
        sent.append([lost for _, _, lost in step.obs])
    assert sent == expected, why


def test_both_echoes_of_a_retried_round_carry_their_own_times() -> None:
    """A round with a retry sends two observations in time order, each with its echo's time."""
    t = quiet_tracker(["1"])
    t.step({"1": echoes("+", 0)})
    step = t.step({"1": (Echo(at(5.0), False), Echo(at(6.1), False))})
    assert step.obs == (("1", at(5.0), 1), ("1", at(6.1), 2))


def test_the_climb_follows_the_assignments_thresholds() -> None:
    """critical_rto 5 from the centre: counts 1..5 are each sent."""
    t = quiet_tracker(["1"])
    t.assign(["1"], down_after=2, critical_rto=5, changed=False)
    t.step({"1": echoes("+", 0)})
    counts = [[o[2] for o in t.step({"1": echoes("-", n * 5)}).obs] for n in range(1, 8)]
    assert counts == [[1], [2], [3], [4], [5], [], []]


def test_first_report_is_full_with_every_onts_current_result() -> None:
    """At start every ONT is sent once (as news), and the report says full."""
    t = quiet_tracker(["a", "b", "c"])
    step = t.step({"a": echoes("+", 0), "b": echoes("--", 0), "c": echoes("-", 0)})
    assert step.full
    assert sorted((i, lost) for i, _, lost in step.obs) == [("a", 0), ("b", 1), ("b", 2), ("c", 1)]
    assert not t.step({"a": echoes("+", 5), "b": echoes("-", 5), "c": echoes("-", 5)}).full


@pytest.mark.parametrize("cause", ["want_full", "assignment changed"])
def test_a_due_full_report_restates_unchanged_onts(cause: str) -> None:
    """After want_full (centre's ask, queue dropped) or a new assignment: everything again."""
    t = quiet_tracker(["a", "b"])
    t.step({"a": echoes("+", 0), "b": echoes("-", 0)})
    assert t.step({"a": echoes("+", 5), "b": echoes("-", 5)}).obs == (("b", at(5), 2),)
    if cause == "want_full":
        t.want_full()
    else:
        t.assign(["a", "b"])
    step = t.step({"a": echoes("+", 10), "b": echoes("-", 10)})
    assert step.full
    assert sorted(step.obs) == [("a", at(10), 0), ("b", at(10), 3)]


def test_refresh_sends_every_ont_once_per_refresh_s_spread_over_the_sweeps() -> None:
    """100 ONTs, refresh 60 s at 5 s: 12 sweeps, 9 a sweep (ceil), each ONT once per cycle."""
    ids = [f"{i:03d}" for i in range(100)]
    t = Tracker(interval=5, refresh_s=60)
    t.assign(ids)
    t.step({i: echoes("+", 0) for i in ids})  # full
    seen: list[str] = []
    sizes = []
    for n in range(1, 13):
        step = t.step({i: echoes("+", n * 5) for i in ids})
        assert step.changes == 0 and not step.full
        sizes.append(len(step.obs))
        seen += [o[0] for o in step.obs]
    assert max(sizes) == 9 and sum(sizes) >= 100
    assert set(seen) == set(ids)
    assert len(seen) - len(set(seen)) <= 9  # the ring wraps at most one slice early


def test_refresh_reports_the_current_count_and_the_latest_echo_time() -> None:
    """A long-dark ONT beyond the climb is still re-stated by the refresh, with its count."""
    t = Tracker(interval=5, refresh_s=5)  # every sweep refreshes everything
    t.assign(["1"])
    for n in range(6):
        step = t.step({"1": echoes("-", n * 5)})
    assert step.obs == (("1", at(25), 6),)


def test_a_held_round_sends_no_losses_but_still_answers() -> None:
    """The self-health gate: lost echoes neither counted nor sent; a reply still counts."""
    t = quiet_tracker(["a", "b"])
    t.step({"a": echoes("+", 0), "b": echoes("-", 0)})
    held = t.step({"a": echoes("-", 5), "b": echoes("+", 5)}, held=True)
    assert held.obs == (("b", at(5), 0),)
    assert t.lost == {"a": 0, "b": 0}
    assert t.answered_last("a")


def test_a_full_report_due_while_held_waits_for_a_clear_round() -> None:
    """A blind agent's full report would state what it cannot see: it waits."""
    t = quiet_tracker(["a"])
    assert not t.step({"a": echoes("-", 0)}, held=True).full
    step = t.step({"a": echoes("+", 5)})
    assert step.full and step.obs == (("a", at(5), 0),)


def test_a_new_assignment_forgets_onts_no_longer_assigned() -> None:
    """Counts of ONTs moved away are dropped; new ONTs count from their first echo."""
    t = quiet_tracker(["a", "b"])
    t.step({"a": echoes("-", 0), "b": echoes("-", 0)})
    t.assign(["b", "c"])
    assert t.lost == {"b": 1}
    step = t.step({"b": echoes("-", 5), "c": echoes("+", 5)})
    assert sorted(step.obs) == [("b", at(5), 2), ("c", at(5), 0)]


def test_unknown_onts_count_as_answered_for_the_retry() -> None:
    """At start an ONT silent in the first sweep is retried at once (confirmed in one round)."""
    t = quiet_tracker(["a"])
    assert t.answered_last("a")
    t.step({"a": echoes("--", 0)})
    assert not t.answered_last("a")


def test_snapshot_and_restore_keep_lost_counts_of_assigned_onts() -> None:
    """Over a graceful restart a dark ONT goes on counting; unassigned or bad counts are not
    taken; an ONT that answered is not in the snapshot."""
    t = quiet_tracker(["a", "b"])
    for n in range(5):
        t.step({"a": echoes("-", n * 5), "b": echoes("+", n * 5)})
    assert t.snapshot() == {"a": 5}
    fresh = quiet_tracker(["a", "b"])
    fresh.restore({"a": 5, "gone": 9, "b": -1})
    assert fresh.lost == {"a": 5}
    step = fresh.step({"a": echoes("-", 30), "b": echoes("+", 30)})
    assert sorted((i, lost) for i, _, lost in step.obs) == [("a", 6), ("b", 0)]


def test_the_count_stops_at_the_centres_bound() -> None:
    from agent.tracker import MAX_LOST

    t = quiet_tracker(["a"])
    t.restore({"a": MAX_LOST})
    t.step({"a": echoes("-", 0)})
    assert t.lost["a"] == MAX_LOST


def test_echoes_of_onts_no_longer_assigned_are_ignored() -> None:
    """A round swept under the old assignment: its echoes of moved ONTs are not sent."""
    t = quiet_tracker(["a", "b"])
    t.step({"a": echoes("+", 0), "b": echoes("+", 0)})
    t.assign(["a"])
    step = t.step({"a": echoes("-", 5), "b": echoes("-", 5)})
    assert [o[0] for o in step.obs] == ["a"] and "b" not in t.lost
