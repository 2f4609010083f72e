"""Reasons stored as codes ({"code", "params"}) and old English reasons read back as legacy."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

from i18n.reasons import render
from monitor.engine import Engine
from monitor.model import EventKind, Observation, Reason, ReasonCode, Status, Thresholds
from monitor.ports import StaticRouter
from monitor.records import history_json, notification_json
from storage.database import Database
from storage.queries import Queries
from storage.store import SqliteStore
from tests.conftest import ManualClock, sample_onts

RTO3 = {"code": "rto_at_threshold", "params": {"rto": 3, "threshold": 3}}


async def test_new_rows_store_codes_and_the_message_in_the_service_language(
    tmp_path: Path, clock: ManualClock
) -> None:
    db = await Database(tmp_path / "codes.db").open()
    engine = Engine(SqliteStore(db, lang="id"), clock=clock, router=StaticRouter([-100]))
    await engine.start()
    try:
        await engine.upsert(sample_onts(1))
        await engine.ingest(Observation.push("1", Status.OFF, 3, clock()))
        await engine.ingest(Observation.push("1", Status.ON, 0, clock.advance(seconds=4)))
    finally:
        await engine.stop()
        await db.close()
    conn = sqlite3.connect(tmp_path / "codes.db")
    history = [json.loads(r) for (r,) in conn.execute("SELECT reason FROM history ORDER BY id")]
    assert history == [RTO3, {"code": "recovered", "params": {}}]
    payload, message = conn.execute(
        "SELECT payload, message FROM notifications WHERE kind = 'resolved'"
    ).fetchone()
    assert json.loads(payload)["reason"] == {"code": "recovered", "params": {}}
    assert message == "PULIH · Baciro RT 1 (id 1): ON lagi setelah mati 4 dtk"
    conn.close()


async def test_an_old_database_with_english_reasons_keeps_working(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "old.db"
    db = await Database(path).open()
    engine = Engine(SqliteStore(db), clock=clock, router=StaticRouter([-100]))
    await engine.start()
    await engine.upsert(sample_onts(1))
    await engine.ingest(Observation.push("1", Status.OFF, 3, clock()))
    await engine.stop()
    await db.close()
    # Rewrite the rows as a version from before reason codes wrote them: English text.
    conn = sqlite3.connect(path)
    conn.execute("UPDATE history SET reason = 'rto_count 3 >= 3'")
    (incident,) = conn.execute("SELECT incident FROM ont_state WHERE ont_id = '1'").fetchone()
    old_incident = {**json.loads(incident), "reason": "rto_count 3 >= 3"}
    conn.execute("UPDATE ont_state SET incident = ?", (json.dumps(old_incident),))
    (payload,) = conn.execute("SELECT payload FROM notifications").fetchone()
    old_payload = {**json.loads(payload), "reason": "rto_count 3 >= 3"}
    conn.execute("UPDATE notifications SET payload = ?", (json.dumps(old_payload),))
    conn.commit()
    conn.close()

    legacy = Reason.legacy("rto_count 3 >= 3")
    db = await Database(path).open()
    reads = Queries(db)
    engine = Engine(SqliteStore(db), clock=clock, thresholds=Thresholds(), router=StaticRouter([]))
    await engine.start()
    try:
        (row,) = await reads.history("1")
        assert row.reason == legacy
        assert history_json(row, "en")["reason_code"] == "legacy"
        assert history_json(row, "id")["reason"] == "rto_count 3 >= 3"
        (note,) = await reads.notifications()
        shown = notification_json(note, "en")
        assert (shown["reason"], shown["reason_code"]) == ("rto_count 3 >= 3", "legacy")
        # The loaded incident carries the old text; its reminder wraps it and is stored.
        got = engine.get("1")
        assert got is not None and got[1].incident is not None
        assert got[1].incident.reason == legacy
        clock.advance(hours=1, minutes=1)
        (reminder,) = [e for e in await engine.tick() if e.kind is EventKind.REMINDER]
        assert reminder.reason.param("cause") == legacy
        assert render(reminder.reason, "id") == (
            "masih kritis, belum diakui selama 1 jam 1 mnt: rto_count 3 >= 3"
        )
        stored = (await reads.notifications(limit=1))[0]
        assert Reason.from_record(stored.payload["reason"]) == reminder.reason
    finally:
        await engine.stop()
        await db.close()


async def test_history_of_every_rule_reason_round_trips(
    engine: Engine, reads: Queries, clock: ManualClock
) -> None:
    await engine.upsert(sample_onts(1))
    steps = [(Status.OFF, 0), (Status.OFF, 1), (Status.OFF, 3), (Status.OFF, 3), (Status.ON, 0)]
    decisions = []
    for status, rto in steps:
        decisions.append(await engine.ingest(Observation.push("1", status, rto, clock())))
        clock.advance(seconds=30)
    rows = list(reversed(await reads.history("1")))
    assert [r.reason for r in rows] == [d.reason for d in decisions]
    assert [r.reason.code for r in rows] == [
        ReasonCode.WENT_OFF,
        ReasonCode.WENT_OFF,  # rto 1 while OFF: the state changed, the OFF warning stays
        ReasonCode.RTO_AT_THRESHOLD,
        ReasonCode.UNCHANGED,  # a repeat
        ReasonCode.RECOVERED,
    ]
    assert rows[0].at + timedelta(seconds=120) == rows[-1].at
