"""The engine and probe agents, on a real SQLite file: the stale guard, absolute lost counts,
and a lost agent's ONTs turning UNKNOWN (no per-ONT alert, no mass outage, no false
recovery), then its replayed observations applying in order when it returns."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from monitor.engine import Engine, UnknownOnt
from monitor.model import (
    Decision,
    EventKind,
    Observation,
    ReasonCode,
    Severity,
    Source,
    Status,
    Thresholds,
)
from monitor.ports import StaticRouter
from storage.database import Database
from storage.queries import Queries
from storage.store import SqliteStore
from tests.conftest import ManualClock, sample_onts


def decided(results: list[Decision | UnknownOnt]) -> list[Decision]:
    assert all(isinstance(r, Decision) for r in results), results
    return results  # type: ignore[return-value]


async def notices(reads: Queries) -> list[str]:
    return [n.kind for n in reversed(await reads.notifications(limit=1000))]


async def baseline_on(engine: Engine, clock: ManualClock, n: int, area: str = "Baciro") -> None:
    onts = sample_onts(n, area)
    await engine.upsert(onts)
    await engine.ingest_many([Observation.agent(o.id, 0, clock()) for o in onts])


async def test_absolute_lost_count_applied_twice_changes_nothing(
    engine: Engine, clock: ManualClock, reads: Queries
) -> None:
    await baseline_on(engine, clock, 1)
    at = clock.advance(seconds=5)
    first = decided(await engine.ingest_many([Observation.agent("1", 2, at)]))[0]
    assert (first.state.status, first.state.rto_count) == (Status.OFF, 2)
    assert [e.kind for e in first.events] == [EventKind.OPENED]
    clock.advance(seconds=1)
    again = decided(await engine.ingest_many([Observation.agent("1", 2, at)]))[0]
    assert (again.state.status, again.state.rto_count, again.changed) == (Status.OFF, 2, False)
    assert again.events == ()
    assert await notices(reads) == ["opened"]


async def test_stale_agent_observation_is_not_applied_and_counted(
    engine: Engine, clock: ManualClock, reads: Queries
) -> None:
    await baseline_on(engine, clock, 1)
    newer = clock.advance(seconds=10)
    decided(await engine.ingest_many([Observation.agent("1", 3, newer)]))
    commits, history = engine.commits, len(await reads.history("1"))
    late = newer - timedelta(seconds=4)
    [d] = decided(await engine.ingest_many([Observation.agent("1", 0, late)]))
    assert d.reason.code is ReasonCode.STALE and not d.changed and d.events == ()
    assert (d.state.status, d.state.rto_count, d.state.last_seen) == (Status.OFF, 3, newer)
    assert engine.stale["agent"] == 1
    assert engine.commits == commits  # nothing written
    assert len(await reads.history("1")) == history
    pair = await reads.ont("1")
    assert pair is not None and pair[1].status is Status.OFF


async def test_equal_time_is_not_stale(engine: Engine, clock: ManualClock) -> None:
    await baseline_on(engine, clock, 1)
    at = clock.advance(seconds=5)
    [d] = decided(await engine.ingest_many([Observation.agent("1", 2, at)]))
    [e] = decided(await engine.ingest_many([Observation.agent("1", 0, at)]))
    assert d.state.status is Status.OFF
    assert e.reason.code is not ReasonCode.STALE and e.state.status is Status.ON
    assert engine.stale["agent"] == 0


async def test_server_stamped_push_with_clock_stepped_back_still_applies(
    engine: Engine, clock: ManualClock
) -> None:
    """A push carries this server's clock at receipt; if the clock stepped back, refusing it
    would blind the monitor until the clock caught up (see rules.SERVER_STAMPED)."""
    await engine.upsert(sample_onts(1))
    await engine.ingest(Observation.push("1", Status.ON, 0, clock()))
    back = clock.advance(seconds=-30)
    d = await engine.ingest(Observation.push("1", Status.OFF, 1, back))
    assert d.state.status is Status.OFF and d.reason.code is not ReasonCode.STALE
    assert sum(engine.stale.values()) == 0


async def test_late_observations_in_order_then_stale_older_one(
    engine: Engine, clock: ManualClock
) -> None:
    """A replayed queue: each late observation in time order applies; one older than the
    newest applied is stale even within the same batch."""
    await baseline_on(engine, clock, 1)
    t0 = clock()
    clock.advance(minutes=2)
    obs = [
        Observation.agent("1", 1, t0 + timedelta(seconds=5)),
        Observation.agent("1", 2, t0 + timedelta(seconds=10)),
        Observation.agent("1", 0, t0 + timedelta(seconds=30)),
        Observation.agent("1", 3, t0 + timedelta(seconds=20)),  # older than the one before
    ]
    results = decided(await engine.ingest_many(obs))
    assert [r.state.status for r in results] == [Status.ON, Status.OFF, Status.ON, Status.ON]
    assert results[3].reason.code is ReasonCode.STALE
    assert engine.stale["agent"] == 1
    state = engine.states["1"]
    assert state.last_seen == t0 + timedelta(seconds=30) and state.status is Status.ON


async def test_mark_unobserved_makes_unknown_without_alerts(
    engine: Engine, clock: ManualClock, reads: Queries
) -> None:
    await baseline_on(engine, clock, 4)
    seen = clock()
    off_at = clock.advance(seconds=5)
    decided(await engine.ingest_many([Observation.agent("2", 2, off_at)]))  # OFF, incident
    before = await notices(reads)
    marked_at = clock.advance(seconds=30)
    changed = await engine.mark_unobserved(["1", "2", "3", "nope"], agent="POP-2")
    assert changed == 3
    for ont_id, last in (("1", seen), ("2", off_at), ("3", seen)):
        s = engine.states[ont_id]
        assert (s.status, s.rto_count, s.status_since, s.last_seen) == (
            Status.UNKNOWN,
            0,
            marked_at,
            last,
        )
    assert engine.states["2"].incident is not None  # kept open: nobody saw it come back
    assert engine.states["4"].status is Status.ON
    assert await notices(reads) == before  # no per-ONT alert
    [h] = (await reads.history("1"))[:1]
    assert (h.source, h.status, h.reason.code) == ("agent", "UNKNOWN", ReasonCode.UNOBSERVED)
    assert h.reason.param("agent") == "POP-2"
    # Stored, not only in memory.
    pair = await reads.ont("3")
    assert pair is not None and pair[1].status is Status.UNKNOWN
    # Marked again: nothing left to change.
    assert await engine.mark_unobserved(["1", "2", "3"], agent="POP-2") == 0


async def test_unknown_then_replayed_observations_resolve_and_open(
    engine: Engine, clock: ManualClock, reads: Queries
) -> None:
    """The whole sequence: lost agent, UNKNOWN, it returns and replays what it saw while cut
    off, with its original times (before the marking, after last_seen)."""
    await baseline_on(engine, clock, 3)
    t0 = clock()
    decided(await engine.ingest_many([Observation.agent("1", 2, clock.advance(seconds=5))]))
    assert engine.states["1"].incident is not None
    clock.advance(seconds=30)
    assert await engine.mark_unobserved(["1", "2", "3"], agent="POP-2") == 3
    clock.advance(minutes=2)
    replay = [
        Observation.agent("1", 0, t0 + timedelta(seconds=20)),  # came back while cut off
        Observation.agent("2", 3, t0 + timedelta(seconds=25)),  # went silent while cut off
        Observation.agent("3", 0, t0 + timedelta(seconds=25)),
        Observation.agent("3", 0, t0 + timedelta(seconds=1)),  # older than its last: stale
    ]
    results = decided(await engine.ingest_many(replay))
    one, two, three, old3 = results
    assert [e.kind for e in one.events] == [EventKind.RESOLVED]
    assert one.events[0].duration == timedelta(seconds=15)
    assert one.state.status_since == t0 + timedelta(seconds=20)
    assert [e.kind for e in two.events] == [EventKind.OPENED]
    assert two.state.status is Status.OFF and two.state.severity is Severity.CRITICAL
    assert three.state.status is Status.ON and three.events == ()
    assert old3.reason.code is ReasonCode.STALE
    kinds = await notices(reads)
    assert kinds == ["opened", "resolved", "opened"]


async def test_unknown_members_keep_a_mass_outage_open(tmp_path: Path, clock: ManualClock) -> None:
    """An open mass outage whose members become UNKNOWN is not announced resolved (nobody
    saw them come back); no new one opens from UNKNOWN ONTs; once the agent is back and they
    answer, it resolves with them counted back."""
    db = await Database(tmp_path / "m.db").open()
    th = Thresholds(mass_min_onts=5)
    eng = Engine(SqliteStore(db), clock=clock, thresholds=th, router=StaticRouter([-100]))
    await eng.start()
    reads = Queries(db)
    try:
        await baseline_on(eng, clock, 6)
        at = clock.advance(seconds=5)
        decided(await eng.ingest_many([Observation.agent(str(i), 2, at) for i in range(1, 7)]))
        assert "Baciro" in eng.outages
        assert (await notices(reads)).count("mass_outage") == 1
        clock.advance(seconds=30)
        assert await eng.mark_unobserved([str(i) for i in range(1, 7)], agent="POP-2") == 6
        assert "Baciro" in eng.outages
        assert "mass_outage_resolved" not in await notices(reads)
        await eng.tick(clock.advance(hours=2))  # no reminder of ONTs nobody can see
        assert "reminder" not in await notices(reads)
        back = clock.advance(seconds=10)
        decided(await eng.ingest_many([Observation.agent(str(i), 0, back) for i in range(1, 7)]))
        assert "Baciro" not in eng.outages
        told = [n for n in await reads.notifications(limit=100) if n.payload.get("notify")]
        resolved = [n for n in told if n.kind.endswith("resolved")]
        assert [n.kind for n in resolved] == ["mass_outage_resolved"]  # members' folded
        assert resolved[0].payload["reason"]["params"]["back"] == 6
    finally:
        await eng.stop()
        await db.close()


async def test_unknown_onts_open_no_mass_outage(engine: Engine, clock: ManualClock) -> None:
    """ONTs with open incidents that become UNKNOWN are not down: no mass outage from them."""
    await baseline_on(engine, clock, 6)
    at = clock.advance(seconds=5)
    decided(await engine.ingest_many([Observation.agent(str(i), 1, at) for i in range(1, 3)]))
    clock.advance(seconds=5)
    await engine.mark_unobserved([str(i) for i in range(1, 7)], agent="POP-2")
    assert engine.down_index.get("Baciro", {}) == {}
    assert engine.outages == {}


async def test_import_older_than_live_state_is_stale(engine: Engine, clock: ManualClock) -> None:
    """An older export imported over live state does not overwrite it (inventory still does)."""
    [ont] = sample_onts(1)
    await engine.upsert([ont])
    await engine.ingest(Observation.push("1", Status.ON, 0, clock()))
    old = clock() - timedelta(days=1)
    await engine.upsert([ont], [Observation.push("1", Status.OFF, 4, old, source=Source.IMPORT)])
    assert engine.states["1"].status is Status.ON
    assert engine.stale["import"] == 1
