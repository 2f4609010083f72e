"""The agent desk: pure decisions table by table, then the desk on a real engine and SQLite.

The desk runs against the real Engine (SqliteStore in tmp_path) and the real agents table
(storage/agents.py); times come from a ManualClock, so liveness is decided by moving it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor import agents as agents_module
from monitor.agents import (
    AgentConfig,
    AgentDesk,
    AgentReport,
    Liveness,
    SweepStats,
    assign,
    assignment_version,
    corrected,
    liveness,
    lost_window,
    skew_of,
)
from monitor.engine import EARLIEST, Engine
from monitor.model import Observation, Ont, Status
from storage.agents import Agents
from storage.database import Database
from storage.queries import Queries
from tests.conftest import ManualClock

T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)

# -- assign ----------------------------------------------------------------------------------

CONFIGS = (
    AgentConfig("POP-2", areas=("Baciro",), prefixes=("10.2.0.0/16",)),
    AgentConfig("POP-1", prefixes=("10.2.5.0/24",)),
    AgentConfig("POP-3", areas=("Baciro", "Kotabaru"), prefixes=("10.2.0.0/16", "fd00::/64")),
    AgentConfig("POP-9", areas=("Gondokusuman",), prefixes=("10.9.0.0/16",), revoked=True),
)


@pytest.mark.parametrize(
    ("ip", "area", "owner"),
    [
        ("10.2.0.17", "Baciro", "POP-2"),  # area first; POP-2 sorts before POP-3
        ("10.9.0.1", "Kotabaru", "POP-3"),  # area beats any prefix
        ("10.2.5.9", "Elsewhere", "POP-1"),  # the longest prefix
        ("10.2.6.9", "Elsewhere", "POP-2"),  # /16 tie between POP-2 and POP-3: name order
        (" 10.2.6.9 ", "", "POP-2"),  # the IP is read as the prober reads it
        ("fd00::5", "", "POP-3"),  # IPv6 prefixes too
        ("fd00:1::5", "", None),
        ("10.3.0.1", "Elsewhere", None),  # nobody's: the central prober's
        ("10.9.0.1", "Gondokusuman", None),  # a revoked agent gets nothing
        ("", "Baciro", None),  # no IP: nothing to sweep
        ("not-an-ip", "Baciro", None),
        ("0.0.0.0", "Baciro", None),
        ("255.255.255.255", "Baciro", None),
        ("224.0.0.1", "Baciro", None),
    ],
)
def test_assign_area_then_longest_prefix_then_name(ip: str, area: str, owner: str | None) -> None:
    got = assign({"1": Ont("1", ip=ip, area=area)}, CONFIGS)
    assert got.get("1") == owner


def test_assign_without_agents_is_empty() -> None:
    assert assign({"1": Ont("1", ip="10.2.0.1", area="Baciro")}, ()) == {}


def test_assignment_version_is_stable_and_follows_targets_and_params() -> None:
    base = assignment_version((("1", "10.0.0.1"),), 300, 2, 3)
    assert base == assignment_version((("1", "10.0.0.1"),), 300, 2, 3)
    assert base != assignment_version((("1", "10.0.0.2"),), 300, 2, 3)
    assert base != assignment_version((("1", "10.0.0.1"), ("2", "10.0.0.2")), 300, 2, 3)
    assert base != assignment_version((("1", "10.0.0.1"),), 300, 3, 3)
    assert base != assignment_version((("1", "10.0.0.1"),), 60, 2, 3)


# -- liveness and time -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("silent_s", "interval", "lost", "multiple", "verdict"),
    [
        (5, 5.0, False, 3.0, Liveness.ALIVE),
        (15, 5.0, False, 3.0, Liveness.ALIVE),  # exactly the window: not yet
        (15.1, 5.0, False, 3.0, Liveness.LOSE),
        (9.9, 1.0, False, 3.0, Liveness.ALIVE),  # never less than 10 s
        (10.1, 1.0, False, 3.0, Liveness.LOSE),
        (59, 20.0, False, 3.0, Liveness.ALIVE),
        (61, 20.0, False, 3.0, Liveness.LOSE),
        (1000, 5.0, True, 3.0, Liveness.LOST),  # announced once: no second "lost"
        (0, 5.0, True, 3.0, Liveness.LOST),  # back is decided by a report, not the clock
    ],
)
def test_liveness(
    silent_s: float, interval: float, lost: bool, multiple: float, verdict: Liveness
) -> None:
    now = T0 + timedelta(seconds=silent_s)
    assert liveness(T0, interval, lost, now, multiple) is verdict


def test_lost_window() -> None:
    assert lost_window(5.0, 3.0) == 15.0
    assert lost_window(1.0, 3.0) == 10.0


@pytest.mark.parametrize(
    ("sent_offset", "skew"),
    [(0.0, 0.0), (-0.9, 0.0), (0.9, 0.0), (-1.5, 1.5), (2.0, -2.0), (-3600.0, 3600.0)],
)
def test_skew_of(sent_offset: float, skew: float) -> None:
    assert skew_of(T0 + timedelta(seconds=sent_offset), T0) == pytest.approx(skew)


@pytest.mark.parametrize(
    ("at_offset", "skew", "expected_offset"),
    [
        (-10.0, 0.0, -10.0),
        (-10.0, 5.0, -5.0),  # the agent's clock is behind: its times move forward
        (-10.0, -5.0, -15.0),
        (-2.0, 5.0, 0.0),  # would be in the future after correction: now
        (30.0, 0.0, 0.0),  # in the future without correction too
    ],
)
def test_corrected(at_offset: float, skew: float, expected_offset: float) -> None:
    at = T0 + timedelta(seconds=at_offset)
    assert corrected(at, skew, T0) == T0 + timedelta(seconds=expected_offset)


@pytest.mark.parametrize(
    ("at", "skew", "expected"),
    [
        (datetime(9998, 12, 1, tzinfo=UTC), 3e9, T0),  # past datetime's end: now
        (datetime(1971, 1, 1, tzinfo=UTC), -3e11, EARLIEST),  # before year 1: the earliest
        (datetime(1950, 1, 1, tzinfo=UTC), -2e9, EARLIEST),  # before 1900: the earliest
    ],
)
def test_corrected_never_overflows(at: datetime, skew: float, expected: datetime) -> None:
    assert corrected(at, skew, T0) == expected


# -- the desk on a real engine -----------------------------------------------------------------


def onts(n: int, area: str, net: str, start: int = 1) -> list[Ont]:
    return [
        Ont(id=f"{area[:1]}{i}", name=f"{area} {i}", area=area, ip=f"{net}.{i}")
        for i in range(start, start + n)
    ]


@pytest.fixture
async def agents(db: Database, clock: ManualClock) -> Agents:
    table = Agents(db)
    await table.add("POP-1", ["Baciro"], [], clock())
    await table.add("POP-2", [], ["127.0.2.0/24"], clock())
    return table


@pytest.fixture
async def desk(engine: Engine, agents: Agents, clock: ManualClock) -> AsyncIterator[AgentDesk]:
    await engine.upsert(onts(3, "Baciro", "127.0.1") + onts(3, "Kotabaru", "127.0.2"))
    await engine.upsert([Ont("X1", area="Nowhere", ip="127.0.3.1")])
    d = AgentDesk(agents, engine, clock, lost_after=3.0, default_interval=5.0)
    await d.start()
    engine.agents = d
    yield d
    await d.stop()


def report(
    seq: int,
    obs: list[tuple[str, float, int]],
    clock: ManualClock,
    *,
    epoch: str = "e1",
    assignment: str = "",
    full: bool = False,
    sweep: SweepStats | None = None,
    sent_offset: float = 0.0,
) -> AgentReport:
    """A report whose observation times are offsets (seconds) from the clock's now."""
    now = clock()
    return AgentReport(
        epoch=epoch,
        seq=seq,
        sent_at=now + timedelta(seconds=sent_offset),
        interval=5.0,
        assignment=assignment,
        full=full,
        sweep=sweep,
        queue_depth=0,
        queue_oldest=None,
        dropped=0,
        obs=[(i, now + timedelta(seconds=off), lost) for i, off, lost in obs],
    )


async def test_assignment_by_area_and_prefix(desk: AgentDesk) -> None:
    one, two = await desk.assignment("POP-1"), await desk.assignment("POP-2")
    assert one.targets == (("B1", "127.0.1.1"), ("B2", "127.0.1.2"), ("B3", "127.0.1.3"))
    assert [t[0] for t in two.targets] == ["K1", "K2", "K3"]
    assert desk.assigned() == frozenset({"B1", "B2", "B3", "K1", "K2", "K3"})
    assert one.version != two.version and one.version == (await desk.assignment("POP-1")).version


async def test_inventory_change_moves_an_ont_and_changes_the_version(
    desk: AgentDesk, engine: Engine
) -> None:
    before = (await desk.assignment("POP-1")).version
    await engine.upsert([Ont("X1", area="Baciro", ip="127.0.3.1")])  # moved into POP-1's area
    after = await desk.assignment("POP-1")
    assert "X1" in dict(after.targets) and after.version != before
    await engine.upsert([Ont("X1", area="Baciro", ip="127.0.3.9")])  # re-addressed
    assert dict((await desk.assignment("POP-1")).targets)["X1"] == "127.0.3.9"
    await engine.delete("X1")
    assert "X1" not in dict((await desk.assignment("POP-1")).targets)
    assert (await desk.assignment("POP-1")).version == before


async def test_a_move_during_a_computation_is_not_missed(
    desk: AgentDesk, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = agents_module._make_plan

    def slow_plan(*args: Any) -> Any:
        time.sleep(0.3)  # on the desk's thread: the move below commits meanwhile
        return real(*args)

    monkeypatch.setattr(agents_module, "_make_plan", slow_plan)
    desk._replan_all()  # as after a config change: everything, on the slowed thread
    computing = asyncio.create_task(desk.refresh())
    await asyncio.sleep(0.05)
    assert not computing.done()
    await engine.upsert([Ont("X1", area="Baciro", ip="127.0.3.1")])
    await computing
    assert "X1" in dict((await desk.assignment("POP-1")).targets)


async def test_incremental_plan_matches_a_full_one(desk: AgentDesk, engine: Engine) -> None:
    """Each change re-assigns only its ONTs; the result is what planning everything gives."""
    changes: list[list[Ont]] = [
        [Ont("X1", area="Baciro", ip="127.0.3.1")],  # into POP-1's area
        [Ont("B1", area="Nowhere", ip="127.0.2.77")],  # from POP-1 to POP-2 by prefix
        [Ont("K2", area="Nowhere", ip="bad")],  # unprobeable: nobody's
        onts(20, "Kotabaru", "127.0.2", start=100),  # new, POP-2's
        [Ont("N1", area="Nowhere", ip="127.0.9.1")],  # new, the centre's
        # more than MERGE_MAX joining one agent at once: sorted again, not inserted
        [Ont(f"J{i}", area="Baciro", ip=f"127.0.{5 + i // 200}.{i % 200 + 1}") for i in range(250)],
    ]
    for batch in changes:
        await engine.upsert(batch)
        await check_plan(desk, engine)
    await engine.delete("K101")
    await engine.rename_area("Baciro", "Kotabaru")
    await check_plan(desk, engine)


async def check_plan(desk: AgentDesk, engine: Engine) -> None:
    full = agents_module._make_plan(dict(engine.onts), list(desk.configs.values()), 300, 2, 3)
    for name in desk.configs:
        assert await desk.assignment(name) == full.by_agent[name], name
    assert desk.assigned() == full.assigned


async def test_state_only_commits_do_not_recompute(desk: AgentDesk, clock: ManualClock) -> None:
    planned = desk._planned
    await desk.report("POP-1", report(1, [("B1", -1, 0), ("B2", -1, 3)], clock))
    assert desk._planned == desk._generation == planned


async def test_report_applied_in_time_order_with_original_times(
    desk: AgentDesk, engine: Engine, reads: Queries, clock: ManualClock
) -> None:
    version = (await desk.assignment("POP-1")).version
    # Out of order in the report: the desk applies them by time.
    obs = [("B1", -10, 2), ("B1", -30, 0), ("B1", -20, 1), ("B2", -5, 0)]
    answer = await desk.report("POP-1", report(1, obs, clock, assignment=version, full=True))
    assert (answer.accepted, answer.stale, answer.refused, answer.duplicate) == (4, 0, 0, False)
    assert not answer.want_full and answer.assignment == version
    state = engine.states["B1"]
    assert state.status is Status.OFF and state.rto_count == 2
    history = list(reversed(await reads.history("B1")))
    assert [h.at for h in history] == sorted(h.at for h in history)
    assert history[-1].at == clock() - timedelta(seconds=10)
    assert history[-1].source == "agent"
    assert engine.states["B2"].status is Status.ON


async def test_stale_observation_is_not_applied_and_counted(
    desk: AgentDesk, engine: Engine, clock: ManualClock
) -> None:
    await desk.report("POP-1", report(1, [("B1", -5, 0)], clock))
    answer = await desk.report("POP-1", report(2, [("B1", -50, 3)], clock))
    assert (answer.accepted, answer.stale) == (0, 1)
    assert engine.states["B1"].status is Status.ON and engine.states["B1"].rto_count == 0
    assert desk.statuses()[0].stale == 1


async def test_duplicate_epoch_seq_is_not_applied_twice(
    desk: AgentDesk, engine: Engine, reads: Queries, clock: ManualClock
) -> None:
    first = await desk.report("POP-1", report(7, [("B1", -5, 0)], clock))
    assert not first.duplicate
    lines = len(await reads.history("B1"))
    clock.advance(seconds=1)
    again = await desk.report("POP-1", report(7, [("B1", 0, 3)], clock))
    older = await desk.report("POP-1", report(6, [("B1", 0, 3)], clock))
    assert again.duplicate and older.duplicate and again.accepted == 0
    assert engine.states["B1"].rto_count == 0 and len(await reads.history("B1")) == lines
    # A new queue file (another epoch) starts its own sequence.
    fresh = await desk.report("POP-1", report(1, [("B1", 0, 3)], clock, epoch="e2"))
    assert not fresh.duplicate and engine.states["B1"].rto_count == 3


async def test_a_full_report_applied_before_a_loss_and_resent_after_it_is_still_due(
    desk: AgentDesk, engine: Engine, clock: ManualClock
) -> None:
    """The centre applied a full report but its answer never reached the agent (a timeout);
    the agent was then declared lost and its ONTs made UNKNOWN. The resent report is a
    duplicate: applying nothing, it must leave the full report due (it used to clear it, and
    the ONTs stayed UNKNOWN until the refresh ring came round to each, 5 minutes)."""
    assignment = (await desk.assignment("POP-1")).version
    all_on = [("B1", 0, 0), ("B2", 0, 0), ("B3", 0, 0)]
    await desk.report("POP-1", report(1, all_on, clock, assignment=assignment, full=True))
    clock.advance(seconds=20)
    assert "POP-1" in await desk.check()
    assert engine.states["B1"].status is Status.UNKNOWN
    resent = await desk.report("POP-1", report(1, all_on, clock, assignment=assignment, full=True))
    assert resent.duplicate and resent.want_full
    after = await desk.report("POP-1", report(2, all_on, clock, assignment=assignment, full=True))
    assert not after.want_full
    assert {engine.states[i].status for i in ("B1", "B2", "B3")} == {Status.ON}


async def test_a_request_that_arrived_in_time_is_contact_however_slow_the_centre(
    desk: AgentDesk, clock: ManualClock
) -> None:
    """A report being received counts from its arrival, not from when the busy centre gets
    to apply it; one refused counts for nothing."""
    await desk.report("POP-1", report(1, [("B1", 0, 0)], clock))
    await desk.report("POP-2", report(1, [("K1", 0, 0)], clock))
    clock.advance(seconds=14)
    with desk.receiving("POP-1"):  # its next report arrived; the busy centre is reading it
        clock.advance(seconds=2)  # 16 s since POP-1's last applied report
        assert await desk.check() == ["POP-2"]
    # that report was refused (a 4xx), so it was no contact after all
    assert await desk.check() == ["POP-1"]


async def test_foreign_onts_refused_and_counted(
    desk: AgentDesk, engine: Engine, clock: ManualClock
) -> None:
    obs = [("K1", -1, 3), ("X1", -1, 3), ("no-such", -1, 3), ("B1", -1, 0)]
    answer = await desk.report("POP-1", report(1, obs, clock))
    assert (answer.accepted, answer.refused) == (1, 3)
    assert engine.states["K1"].status is Status.UNKNOWN  # POP-2's: untouched
    assert engine.states["X1"].status is Status.UNKNOWN  # the centre's: untouched
    status = {s.name: s for s in desk.statuses()}
    assert status["POP-1"].refused == 3 and status["POP-2"].refused == 0


async def test_skew_is_corrected_and_future_clamped(
    desk: AgentDesk, reads: Queries, clock: ManualClock
) -> None:
    # The agent's clock is 100 s behind the centre's: sent_at says now - 100.
    obs = [("B1", -110, 0), ("B2", -95, 0)]  # -10 s and +5 s (clamped to now) after correction
    await desk.report("POP-1", report(1, obs, clock, sent_offset=-100))
    assert (await reads.history("B1"))[0].at == clock() - timedelta(seconds=10)
    assert (await reads.history("B2"))[0].at == clock()
    assert desk.statuses()[0].skew_s == pytest.approx(100)


async def test_want_full_after_start_and_after_assignment_change(
    desk: AgentDesk, engine: Engine, clock: ManualClock
) -> None:
    version = (await desk.assignment("POP-1")).version
    assert (await desk.report("POP-1", report(1, [], clock, assignment=version))).want_full
    full = await desk.report("POP-1", report(2, [], clock, assignment=version, full=True))
    assert not full.want_full
    assert not (await desk.report("POP-1", report(3, [], clock, assignment=version))).want_full
    await engine.upsert(onts(1, "Baciro", "127.0.1", start=9))
    answer = await desk.report("POP-1", report(4, [], clock, assignment=version))
    assert answer.want_full and answer.assignment != version


async def test_silent_agent_is_one_lost_alert_and_unknown_then_back(
    desk: AgentDesk, engine: Engine, reads: Queries, clock: ManualClock
) -> None:
    await desk.report("POP-1", report(1, [("B1", 0, 0), ("B2", 0, 0), ("B3", 0, 0)], clock))
    await desk.report("POP-2", report(1, [("K1", 0, 0)], clock))
    clock.advance(seconds=14)
    await desk.report("POP-2", report(2, [], clock))
    assert await desk.check() == []
    clock.advance(seconds=2)  # POP-1 silent 16 s > 3 x 5 s
    assert await desk.check() == ["POP-1"]
    clock.advance(seconds=30)
    assert await desk.check() == ["POP-2"]  # POP-2 too, later: each once
    for _ in range(3):
        clock.advance(seconds=5)
        assert await desk.check() == []
    assert {engine.states[i].status for i in ("B1", "B2", "B3")} == {Status.UNKNOWN}
    lost = await reads.notifications(kind="agent_lost")
    assert len(lost) == 2
    assert {n.payload.get("agent") for n in lost} <= {"POP-1", "POP-2", None}
    assert not await reads.notifications(kind="opened")
    status = {s.name: s for s in desk.statuses()}
    assert status["POP-1"].lost and status["POP-1"].lost_since is not None

    answer = await desk.report("POP-1", report(2, [("B1", 0, 0)], clock))
    assert answer.want_full
    assert len(await reads.notifications(kind="agent_back")) == 1
    assert engine.states["B1"].status is Status.ON
    assert not {s.name: s for s in desk.statuses()}["POP-1"].lost


async def test_onts_given_to_a_lost_agent_become_unknown_too(
    desk: AgentDesk, engine: Engine, clock: ManualClock
) -> None:
    await engine.ingest(Observation.push("X1", Status.ON, 0, clock()))
    clock.advance(seconds=20)
    assert "POP-1" in await desk.check()
    assert engine.states["X1"].status is Status.ON  # the centre's, not POP-1's
    await engine.upsert([Ont("X1", area="Baciro", ip="127.0.3.1")])  # now POP-1's
    clock.advance(seconds=1)
    assert await desk.check() == []  # no second alert
    assert engine.states["X1"].status is Status.UNKNOWN


async def test_lost_agent_with_a_big_area_is_no_mass_outage(
    engine: Engine, agents: Agents, reads: Queries, clock: ManualClock
) -> None:
    await engine.upsert(onts(50, "Baciro", "127.0.1"))
    desk = AgentDesk(agents, engine, clock)
    await desk.start()
    obs = [(f"B{i}", 0.0, 0) for i in range(1, 51)]
    await desk.report("POP-1", report(1, obs, clock))
    clock.advance(seconds=20)
    assert "POP-1" in await desk.check()
    assert all(engine.states[f"B{i}"].status is Status.UNKNOWN for i in range(1, 51))
    assert not engine.outages
    kinds = [n.kind for n in await reads.notifications(limit=1000)]
    assert "mass_outage" not in kinds and "opened" not in kinds
    assert kinds.count("agent_lost") == 2  # POP-1, and POP-2 (never heard from)
    await desk.stop()


async def test_lost_is_persisted_across_a_restart_of_the_centre(
    engine: Engine, agents: Agents, reads: Queries, clock: ManualClock
) -> None:
    await engine.upsert(onts(2, "Baciro", "127.0.1"))
    desk = AgentDesk(agents, engine, clock)
    await desk.start()
    await desk.report("POP-1", report(5, [("B1", 0, 0)], clock))
    clock.advance(seconds=20)
    assert await desk.check() == ["POP-1", "POP-2"]
    await desk.stop()

    clock.advance(seconds=60)
    again = AgentDesk(agents, engine, clock)
    await again.start()
    clock.advance(seconds=60)
    assert await again.check() == []  # already lost: not announced again
    assert len(await reads.notifications(kind="agent_lost")) == 2
    # The sequence survived too: a replay of seq 5 is a duplicate.
    assert (await again.report("POP-1", report(5, [("B1", 0, 0)], clock))).duplicate
    assert len(await reads.notifications(kind="agent_back")) == 1
    await again.stop()


async def test_the_centre_being_down_is_no_agent_silence(
    engine: Engine, agents: Agents, clock: ManualClock
) -> None:
    desk = AgentDesk(agents, engine, clock)
    await desk.start()
    await desk.report("POP-1", report(1, [], clock))
    await desk.stop()
    clock.advance(hours=1)  # the centre was down for an hour
    again = AgentDesk(agents, engine, clock)
    await again.start()
    clock.advance(seconds=5)
    assert await again.check() == []  # a whole window from the centre's start
    clock.advance(seconds=11)
    assert await again.check() == ["POP-1", "POP-2"]
    await again.stop()


async def test_held_sweeps_raise_one_blind_then_one_sees(
    desk: AgentDesk, reads: Queries, clock: ManualClock
) -> None:
    def sweep(held: bool) -> SweepStats:
        return SweepStats(clock(), 1.0, 100, 2 if held else 99, 98 if held else 1, 0, held)

    for seq, held in enumerate([False, True, True, True, False, False], start=1):
        await desk.report("POP-1", report(seq, [], clock, sweep=sweep(held)))
    offline = await reads.notifications(kind="monitor_offline")
    online = await reads.notifications(kind="monitor_online")
    assert len(offline) == 1 and len(online) == 1
    assert offline[0].payload["reason"]["code"] == "agent_blind"


async def test_authenticate_revoke_and_rotate(
    desk: AgentDesk, agents: Agents, db: Database, clock: ManualClock
) -> None:
    token = await agents.add("POP-3", [], ["127.0.3.0/24"], clock())
    assert await desk.authenticate(token) == "POP-3"  # added since start: reloaded
    assert "X1" in desk.assigned()
    assert await desk.authenticate("wrong") is None
    assert await desk.authenticate("") is None
    await agents.revoke("POP-3", clock())
    assert await desk.reload()
    assert await desk.authenticate(token) is None
    assert "X1" not in desk.assigned()  # back to the central prober
    assert {s.name: s for s in desk.statuses()}["POP-3"].revoked
    rows = await db.fetchall("SELECT token_hash FROM agents")
    assert all(token not in str(r) for r in rows)


async def test_statuses_and_records(desk: AgentDesk, clock: ManualClock) -> None:
    sweep = SweepStats(clock(), 0.84, 3, 3, 0, 0, False)
    await desk.report("POP-1", report(1, [("B1", 0, 0)], clock, sweep=sweep))
    one, two = desk.statuses()
    assert (one.name, one.onts, one.reports, one.accepted) == ("POP-1", 3, 1, 1)
    assert one.sweep == sweep and one.last_contact == clock()
    assert (two.name, two.reports, two.last_contact) == ("POP-2", 0, None)
    rec = one.record()
    assert rec["sweep"]["duration"] == 0.84 and rec["areas"] == ["Baciro"]
    assert rec["last_contact"] == clock().isoformat()


class _Recorder:
    """A Sweeps stand-in that only records what the prober asked it to probe (no packets)."""

    mode = "recorded"

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    async def sweep(self, addresses: Any) -> Any:
        from types import MappingProxyType

        from monitor.sweep import ProbeResult, SweepResult

        self.asked.append(list(addresses))
        results = {a: ProbeResult(a, True, 0.1) for a in addresses}
        return SweepResult(MappingProxyType(results), time.time(), 0.0, len(results), 0, 0)


async def test_an_ont_added_in_an_agents_area_is_never_swept_by_the_centre(
    desk: AgentDesk, engine: Engine, clock: ManualClock
) -> None:
    """The prober brings the agents' plan up to date before each sweep: an ONT committed
    between two desk checks is the agent's at once, not swept once by the centre."""
    from monitor.prober import Prober

    recorder = _Recorder()
    prober = Prober(engine, recorder, interval=5, clock=clock)
    await prober.sweep_once()
    assert recorder.asked[-1] == ["127.0.3.1"]  # X1 only: B* and K* are the agents'
    await engine.upsert([Ont("B9", area="Baciro", ip="127.0.1.9")])  # POP-1's area
    await engine.upsert([Ont("K9", area="Elsewhere", ip="127.0.2.9")])  # POP-2's prefix
    await prober.sweep_once()
    assert recorder.asked[-1] == ["127.0.3.1"]
    assert {"B9", "K9"} <= desk.assigned()
