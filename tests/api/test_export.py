"""Export (issue 10, findings 5 and 14): no spreadsheet formulas, and an exact round trip.

`export` → `import` into a fresh database gives back every id exactly (including ids that are
not ASCII digits), every text, and the status, down-since and last-on of every ONT.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from api.app import apply_import
from api.records import FORMULA_START, export_record, export_text, neutralise, parse_import
from monitor.engine import Engine
from monitor.model import Observation, Ont, Source, Status, Thresholds
from monitor.ports import StaticRouter
from storage.database import Database
from storage.store import SqliteStore
from tests.conftest import ManualClock

TZ = ZoneInfo("Asia/Jakarta")
TRICKY_TEXT = [
    '=HYPERLINK("http://127.0.0.1/x","klik")',
    "+62 812 3456",
    "-RT 05",
    "@SUM(A1:A9)",
    "\tTab di depan",
    "\rCR di depan",
    "'sudah dikutip",
    "''dua kutip",
    "'=kutip lalu rumus",
    'Pos <RT 01> & "RW" 02',
    "Biasa saja",
]
TRICKY_IDS = ["1", "007", "١٢٣", "²", "-5", "=1+1", "12345678901234567890", "JP000816", " 0"]


def inventory() -> list[Ont]:
    onts = []
    for i, ont_id in enumerate(TRICKY_IDS):
        text = TRICKY_TEXT[i % len(TRICKY_TEXT)]
        onts.append(
            Ont(
                id=ont_id.strip() or "blank",
                name=text,
                customer_id=TRICKY_TEXT[(i + 3) % len(TRICKY_TEXT)],
                location=TRICKY_TEXT[(i + 5) % len(TRICKY_TEXT)],
                lat=-7.79 - i / 1000,
                lon=110.38 + i / 1000,
                ip=f"127.0.2.{i + 1}",
                area=TRICKY_TEXT[(i + 7) % len(TRICKY_TEXT)],
            )
        )
    return onts


async def open_engine(path: Path, clock: ManualClock) -> tuple[Database, Engine]:
    db = await Database(path).open()
    engine = Engine(SqliteStore(db), clock=clock, thresholds=Thresholds(), router=StaticRouter([]))
    await engine.start()
    return db, engine


def stripped(ont: Ont) -> Ont:
    """The ONT as any write through the API stores it: outer whitespace of texts removed."""
    texts = ("name", "customer_id", "location", "area")
    return replace(ont, **{k: getattr(ont, k).strip() for k in texts})


def cells(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("text", TRICKY_TEXT)
def test_csv_cells_never_start_a_formula(text: str) -> None:
    out = neutralise(text)
    assert not out.startswith(FORMULA_START)
    assert out == text or out == "'" + text


def test_csv_export_neutralises_formula_starts_by_owasps_rule() -> None:
    ont = Ont(id="=1+1", name="=cmd|' /C calc'!A0", location="@SUM(1)", area="-2+3", ip="+1")
    from monitor.model import OntState

    rec = export_record(ont, OntState(ont_id=ont.id), TZ)
    (row,) = cells(export_text([rec], "csv"))
    for key in ("id", "name", "lokasi", "area", "ip"):
        assert row[key].startswith("'"), (key, row[key])
    assert export_text([rec], "json").count("'=") == 0  # JSON is not for spreadsheets


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_export_then_import_gives_everything_back(tmp_path: Path, fmt: str) -> None:
    clock = ManualClock()
    db, engine = await open_engine(tmp_path / "a.db", clock)
    onts = inventory()
    await engine.upsert(onts)
    t0 = clock.now
    for n, ont in enumerate(onts):
        await engine.ingest(Observation.push(ont.id, Status.ON, 0, clock.advance(seconds=7)))
        if n % 3 == 0:  # OFF a while later: last_on and down-since differ
            await engine.ingest(
                Observation.push(ont.id, Status.OFF, n, clock.advance(minutes=13, seconds=n))
            )
    # One ONT imported OFF from an older system, with only a last_on.
    await engine.upsert(
        [Ont(id="old-off", name="Dulu mati", ip="127.0.2.99")],
        [Observation.push("old-off", Status.OFF, 4, t0 - timedelta(days=40), Source.IMPORT)],
    )
    before = {o.id: (o, engine.states[o.id]) for o, _ in engine.items()}
    text = export_text([export_record(o, s, TZ) for o, s in before.values()], fmt)  # type: ignore[arg-type]
    await engine.stop()
    await db.close()

    clock.advance(days=3)
    db2, engine2 = await open_engine(tmp_path / "b.db", clock)
    plan = parse_import(text.encode("utf-8"), "text/csv" if fmt == "csv" else "application/json")
    assert not plan.refused, [r.errors for r in plan.refused]
    await apply_import(engine2, plan, TZ, clock.now)
    after = {o.id: (o, engine2.states[o.id]) for o, _ in engine2.items()}
    try:
        assert set(after) == set(before)  # every id exactly: ١٢٣ is not 123, 007 is not 7
        for ont_id, (ont, state) in before.items():
            ont2, state2 = after[ont_id]
            assert ont2 == stripped(ont), ont_id  # the importer strips outer whitespace
            assert state2.status is state.status, ont_id
            assert state2.status_since == state.status_since, ont_id  # down-since kept
            assert state2.last_on == state.last_on, ont_id
            if state.status is Status.OFF:
                assert state2.rto_count == state.rto_count
    finally:
        await engine2.stop()
        await db2.close()
    assert after["old-off"][1].status_since == t0 - timedelta(days=40)


def test_the_older_systems_ids_stay_numbers_in_json() -> None:
    from monitor.model import OntState

    recs = [export_record(Ont(id=i), OntState(ont_id=i), TZ) for i in ("1", "007", "١٢٣", "²")]
    assert [r["id"] for r in json.loads(export_text(recs, "json"))] == [1, "007", "١٢٣", "²"]
