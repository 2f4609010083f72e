"""The engine on a real SQLite file: one ingest path, group commit, all-or-nothing batches."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.engine import Engine, StoreUnavailable, UnknownOnt
from monitor.model import EventKind, Observation, ReasonCode, Severity, Source, Status
from monitor.ports import Batch, StaticRouter
from storage.database import Database
from storage.queries import Queries
from storage.store import SqliteStore
from tests.conftest import ManualClock, sample_onts


async def outbox_rows(db: Database) -> list[tuple[int, str]]:
    return [
        (chat, kind)
        for chat, kind in await db.fetchall(
            "SELECT o.chat_id, n.kind FROM outbox o JOIN notifications n ON n.id = o.notification_id"
            " ORDER BY o.id"
        )
    ]


async def test_ingest_is_durable_before_it_answers(tmp_path: Path, clock: ManualClock) -> None:
    db = await Database(tmp_path / "a.db").open()
    eng = Engine(SqliteStore(db), clock=clock, router=StaticRouter([-100, 42]))
    await eng.start()
    await eng.upsert(sample_onts(2))
    decision = await eng.ingest(Observation.push("1", Status.OFF, 0, clock()))
    assert decision.state.status is Status.OFF
    assert [e.kind for e in decision.events] == [EventKind.OPENED]
    # A second connection (another process would do the same) sees it already committed.
    other = await Database(tmp_path / "a.db").open()
    pair = await Queries(other).ont("1")
    assert (
        pair is not None and pair[1].status is Status.OFF and pair[1].severity is Severity.WARNING
    )
    assert await outbox_rows(other) == [(-100, "opened"), (42, "opened")]
    assert [h.source for h in await Queries(other).history("1")] == ["push"]
    await other.close()
    await eng.stop()
    await db.close()


async def test_state_survives_restart(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "b.db"
    db = await Database(path).open()
    eng = Engine(SqliteStore(db), clock=clock)
    await eng.start()
    await eng.upsert(sample_onts(1))
    await eng.ingest(Observation.push("1", Status.OFF, 4, clock()))
    await eng.ack("1", "budi")
    await eng.mute("area:Baciro", clock() + timedelta(hours=1), "budi")
    await eng.stop()
    await db.close()

    db2 = await Database(path).open()
    eng2 = Engine(SqliteStore(db2), clock=clock)
    await eng2.start()
    ont, state = eng2.get("1")  # type: ignore[misc]
    assert (state.status, state.rto_count, state.severity) == (Status.OFF, 4, Severity.CRITICAL)
    assert state.incident is not None and state.incident.acked_by == "budi"
    assert eng2.is_muted(ont, clock())
    await eng2.stop()
    await db2.close()


async def test_concurrent_pushes_share_commits(engine: Engine, clock: ManualClock) -> None:
    await engine.upsert(sample_onts(50))
    before = engine.commits
    pushes = [
        engine.ingest(Observation.push(str(i % 50 + 1), Status.ON, i % 3, clock()))
        for i in range(500)
    ]
    results = await asyncio.gather(*pushes)
    assert len(results) == 500
    commits = engine.commits - before
    assert 1 <= commits < 100, commits  # group commit: far fewer transactions than pushes


async def test_unknown_ont_fails_alone(engine: Engine, clock: ManualClock, reads: Queries) -> None:
    await engine.upsert(sample_onts(2))
    good = engine.ingest(Observation.push("1", Status.OFF, 0, clock()))
    bad = engine.ingest(Observation.push("nope", Status.OFF, 0, clock()))
    results = await asyncio.gather(good, bad, return_exceptions=True)
    assert isinstance(results[1], UnknownOnt)
    assert results[0].state.status is Status.OFF  # type: ignore[union-attr]
    assert [h.ont_id for h in await reads.history()] == ["1"]


class FailingStore(SqliteStore):
    """The real store, except that commits fail while `failing` is set (disk full)."""

    failing = False

    async def commit(self, batch: Batch) -> list[int]:
        if self.failing:
            raise OSError(28, "No space left on device")
        return await super().commit(batch)


async def test_failed_commit_changes_nothing(db: Database, clock: ManualClock) -> None:
    store = FailingStore(db)
    eng = Engine(store, clock=clock, router=StaticRouter([-100]))
    await eng.start()
    await eng.upsert(sample_onts(3))
    store.failing = True
    with pytest.raises(StoreUnavailable, match="No space left"):
        await eng.ingest(Observation.push("1", Status.OFF, 5, clock()))
    with pytest.raises(StoreUnavailable):
        await eng.upsert(sample_onts(5))
    # Memory was rolled back with the transaction: the next push decides from the old state.
    assert eng.get("1")[1].status is Status.UNKNOWN  # type: ignore[index]
    assert "5" not in eng.onts
    store.failing = False
    decision = await eng.ingest(Observation.push("1", Status.OFF, 5, clock()))
    assert [e.kind for e in decision.events] == [EventKind.OPENED]
    reads = Queries(db)
    assert len(await reads.onts()) == 3
    assert len(await reads.notifications()) == 1
    await eng.stop()


async def test_bulk_ingest_reports_unknown(engine: Engine, clock: ManualClock) -> None:
    await engine.upsert(sample_onts(3))
    out = await engine.ingest_many(
        [Observation.push(i, Status.OFF, 3, clock()) for i in ("1", "x", "3")]
    )
    assert isinstance(out[1], UnknownOnt)
    assert [o.state.severity for o in (out[0], out[2])] == [Severity.CRITICAL] * 2  # type: ignore[union-attr]


async def test_mute_keeps_alerts_out_of_the_outbox_but_not_recovery(
    engine: Engine, clock: ManualClock, db: Database
) -> None:
    await engine.upsert(sample_onts(2))
    await engine.mute("ont:1", clock() + timedelta(minutes=30), "ani")
    await engine.ingest(Observation.push("1", Status.OFF, 0, clock()))
    await engine.ingest(Observation.push("2", Status.OFF, 0, clock()))
    clock.advance(minutes=10)
    await engine.ingest(Observation.push("1", Status.ON, 0, clock()))
    assert await outbox_rows(db) == [(-100, "opened"), (-100, "resolved")]
    kinds = [n.kind for n in await Queries(db).notifications()]
    assert kinds == ["resolved", "opened", "opened"]  # every event is still in the feed
    with pytest.raises(UnknownOnt):
        await engine.mute("ont:zzz", clock(), "ani")
    with pytest.raises(ValueError, match="mute target"):
        await engine.mute("odp:1", clock(), "ani")
    assert await engine.unmute("ont:1") and not await engine.unmute("ont:1")


async def test_import_baseline_is_silent(
    engine: Engine, clock: ManualClock, reads: Queries
) -> None:
    onts = sample_onts(2)
    baseline = [
        Observation.push("1", Status.OFF, 78, clock() - timedelta(days=3), source=Source.IMPORT)
    ]
    created = await engine.upsert(onts, baseline)
    assert created == [True, True]
    state = engine.get("1")[1]  # type: ignore[index]
    assert state.severity is Severity.CRITICAL and state.incident is not None
    assert await reads.notifications() == []
    clock.advance(minutes=1)
    d = await engine.ingest(Observation.push("1", Status.ON, 0, clock()))
    assert d.events[0].kind is EventKind.RESOLVED
    assert d.events[0].duration == timedelta(days=3, minutes=1)


async def test_delete(engine: Engine, clock: ManualClock, reads: Queries) -> None:
    await engine.upsert(sample_onts(2))
    await engine.delete("2")
    assert [o.id for o, _ in await reads.onts()] == ["1"]
    with pytest.raises(UnknownOnt):
        await engine.delete("2")


async def test_mass_outage_is_one_event_and_one_recovery(
    engine: Engine, clock: ManualClock, db: Database, reads: Queries
) -> None:
    await engine.upsert(sample_onts(40))
    for i in range(1, 13):  # one after another, each its own transaction
        clock.advance(seconds=5)
        await engine.ingest(Observation.push(str(i), Status.OFF, 0, clock()))
    notes = [n for n in await reads.notifications(limit=500) if not n.ont_id]
    assert [n.kind for n in notes] == ["mass_outage"]
    assert notes[0].payload["members"] == ["1", "2", "3", "4", "5"]  # as first seen
    assert len(engine.outages["Baciro"].members) == 12  # later ones joined silently
    # What will reach the chat: the outage, and no member message (the first four, written
    # before the outage was seen, were still undelivered and are folded into it).
    pending = await db.fetchall(
        "SELECT n.kind FROM outbox o JOIN notifications n ON n.id = o.notification_id"
        " WHERE o.state = 'pending'"
    )
    assert pending == [("mass_outage",)]
    assert all(engine.get(str(i))[1].severity is Severity.CRITICAL for i in range(1, 13))  # type: ignore[index]
    clock.advance(minutes=40)
    for i in range(1, 13):
        await engine.ingest(Observation.push(str(i), Status.ON, 0, clock()))
    notes = [n for n in await reads.notifications(limit=500) if not n.ont_id]
    assert [n.kind for n in notes] == ["mass_outage_resolved", "mass_outage"]
    assert notes[0].payload["duration_s"] > 40 * 60
    assert len(notes[0].payload["members"]) >= 8
    pending = await db.fetchall(
        "SELECT n.kind FROM outbox o JOIN notifications n ON n.id = o.notification_id"
        " WHERE o.state = 'pending' ORDER BY o.id"
    )
    # Only the members still OFF when the outage ended speak for themselves afterwards.
    assert pending.count(("mass_outage_resolved",)) == 1
    assert ("resolved",) in pending and len(pending) <= 6


async def test_open_outage_survives_restart(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "o.db"
    db = await Database(path).open()
    eng = Engine(SqliteStore(db), clock=clock)
    await eng.start()
    await eng.upsert(sample_onts(10))
    await eng.ingest_many([Observation.push(str(i), Status.OFF, 0, clock()) for i in range(1, 7)])
    await eng.stop()
    await db.close()
    db = await Database(path).open()
    eng = Engine(SqliteStore(db), clock=clock)
    await eng.start()
    assert set(eng.outages) == {"Baciro"} and len(eng.outages["Baciro"].members) == 6
    await eng.ingest_many([Observation.push(str(i), Status.ON, 0, clock()) for i in range(1, 7)])
    kinds = [n.kind for n in await Queries(db).notifications() if not n.ont_id]
    assert kinds == ["mass_outage_resolved", "mass_outage"]
    await eng.stop()
    await db.close()


async def test_mass_outage_reminds_until_acknowledged_across_restarts(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "r.db"

    async def area_events(eng: Engine) -> list[tuple[str, bool, int]]:
        return [(e.kind.value, e.notify, len(e.members)) for e in await eng.tick() if not e.ont_id]

    async def reopen(eng: Engine | None, db: Database | None) -> tuple[Engine, Database]:
        if eng is not None and db is not None:
            await eng.stop()
            await db.close()
        db = await Database(path).open()
        eng = Engine(SqliteStore(db), clock=clock)
        await eng.start()
        return eng, db

    eng, db = await reopen(None, None)
    await eng.upsert(sample_onts(40))
    await eng.ingest_many([Observation.push(str(i), Status.OFF, 0, clock()) for i in range(1, 13)])
    clock.advance(minutes=59)
    assert await area_events(eng) == []
    clock.advance(minutes=2)
    assert await area_events(eng) == [("reminder", True, 12)]
    clock.advance(minutes=30)
    assert await area_events(eng) == []
    eng, db = await reopen(eng, db)  # when it last reminded is stored, not only in memory
    clock.advance(minutes=29)
    assert await area_events(eng) == []
    clock.advance(minutes=2)
    assert await area_events(eng) == [("reminder", True, 12)]
    await eng.mute("area:Baciro", clock() + timedelta(hours=2), "ani")
    clock.advance(minutes=61)
    assert await area_events(eng) == [("reminder", False, 12)]  # recorded, not sent
    assert (await eng.ack_area("Baciro", "budi"))[1] == "acknowledged"
    assert (await eng.ack_area("Baciro", "ani"))[1] == "already acknowledged by budi"
    assert await eng.ack_area("Kota Baru", "ani") == (None, "no open mass outage")
    eng, db = await reopen(eng, db)
    assert eng.outages["Baciro"].acked_by == "budi"
    clock.advance(hours=3)
    assert await area_events(eng) == []
    await eng.stop()
    await db.close()


async def test_tick_escalates_reminds_and_expires_mutes(
    engine: Engine, clock: ManualClock, db: Database
) -> None:
    await engine.upsert(sample_onts(2))
    await engine.mute("ont:2", clock() + timedelta(minutes=30), "ani")
    await engine.ingest(Observation.push("1", Status.OFF, 0, clock()))
    await engine.ingest(Observation.push("2", Status.OFF, 0, clock()))
    clock.advance(minutes=59)
    # ONT 2's mute ended at 30 min: the first tick after says it is still down.
    assert [(e.ont_id, e.kind.value) for e in await engine.tick()] == [("2", "reminder")]
    assert "ont:2" not in engine.mutes
    assert await engine.tick() == []
    clock.advance(minutes=2)
    kinds = sorted((e.ont_id, e.kind.value, e.notify) for e in await engine.tick())
    assert kinds == [("1", "escalated", True), ("2", "escalated", True)]
    clock.advance(minutes=61)
    kinds = sorted((e.ont_id, e.kind.value) for e in await engine.tick())
    assert kinds == [("1", "reminder"), ("2", "reminder")]
    await engine.ack("1", "budi")
    clock.advance(minutes=61)
    assert [(e.ont_id, e.kind.value) for e in await engine.tick()] == [("2", "reminder")]


async def test_mute_expiry_reminds_of_what_is_still_down(
    engine: Engine, clock: ManualClock
) -> None:
    await engine.upsert(sample_onts(2))
    await engine.mute("area:Baciro", clock() + timedelta(minutes=10), "ani")
    await engine.ingest(Observation.push("1", Status.OFF, 0, clock()))
    clock.advance(minutes=11)
    events = await engine.tick()
    assert [(e.ont_id, e.kind.value, e.notify) for e in events] == [("1", "reminder", True)]
    why = events[0].reason
    assert why.code is ReasonCode.MUTE_ENDED and why.param("severity") == "warning"
    assert why.param("cause").code is ReasonCode.WENT_OFF  # type: ignore[union-attr]


async def test_stable_probes_are_not_rewritten_each_sweep(
    engine: Engine, clock: ManualClock, reads: Queries
) -> None:
    await engine.upsert(sample_onts(3))
    await engine.ingest_many([Observation.probe(str(i), True, clock()) for i in (1, 2, 3)])
    commits = engine.commits
    clock.advance(seconds=5)
    await engine.ingest_many([Observation.probe(str(i), True, clock()) for i in (1, 2, 3)])
    assert engine.commits == commits  # nothing changed: no transaction at all
    assert engine.get("1")[1].last_seen == clock()  # type: ignore[index]
    await engine.tick()
    assert engine.commits == commits  # nor does the tick (writes follow changes, not the clock)
    await engine.persist_seen()  # the coarse job (and shutdown) writes the fresher last_seen
    pair = await reads.ont("1")
    assert pair is not None and pair[1].last_seen == clock()
    assert len(await reads.history("1")) == 1  # one line for the change, none for repeats


async def test_deleting_a_member_of_an_open_outage(engine: Engine, clock: ManualClock) -> None:
    await engine.upsert(sample_onts(10))
    await engine.ingest_many(
        [Observation.push(str(i), Status.OFF, 0, clock()) for i in range(1, 7)]
    )
    await engine.delete("3")
    decision = await engine.ingest(Observation.push("1", Status.ON, 0, clock()))
    assert decision.state.status is Status.ON
    await engine.ingest_many(
        [Observation.push(str(i), Status.ON, 0, clock()) for i in (2, 4, 5, 6)]
    )
    assert engine.outages == {}


async def test_failed_commit_forgets_the_outage_it_opened(db: Database, clock: ManualClock) -> None:
    store = FailingStore(db)
    eng = Engine(store, clock=clock)
    await eng.start()
    await eng.upsert(sample_onts(10))
    store.failing = True
    with pytest.raises(StoreUnavailable):
        await eng.ingest_many(
            [Observation.push(str(i), Status.OFF, 0, clock()) for i in range(1, 7)]
        )
    assert eng.outages == {} and eng.down_index.get("Baciro", {}) == {}
    store.failing = False
    await eng.ingest_many([Observation.push(str(i), Status.OFF, 0, clock()) for i in range(1, 7)])
    assert set(eng.outages) == {"Baciro"}
    await eng.stop()
