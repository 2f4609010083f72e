"""EngineView: the read-only side of a real engine on a temporary SQLite file."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor.engine import Engine
from monitor.model import Observation, Ont, Status
from monitor.view import AreaCounts, EngineView
from tests.conftest import ManualClock

INVENTORY = [
    Ont(id="10", name="Kota RT 10", area="Kota"),
    Ont(id="2", name="Baciro RT 2", area="Baciro"),
    Ont(id="x7", name="No area"),
    Ont(id="1", name="Baciro RT 1", area="Baciro"),
]
# (id, status, rto, seconds after the start): the pushes every test starts from
PUSHES = [("1", "OFF", 0, 0), ("2", "OFF", 3, 5), ("10", "ON", 0, 6), ("1", "OFF", 1, 10)]


@pytest.fixture
async def view(engine: Engine, clock: ManualClock) -> EngineView:
    await engine.upsert(INVENTORY)
    start = clock.now
    for ont_id, status, rto, after in PUSHES:
        clock.now = start + timedelta(seconds=after)
        await engine.ingest(Observation.push(ont_id, Status(status), rto, clock.now))
    return EngineView(engine)


async def test_ids_items_areas_in_order(view: EngineView) -> None:
    assert view.ont_ids() == ["1", "2", "10", "x7"]  # numeric ids as numbers, then text
    assert [o.id for o, _ in view.items()] == ["1", "2", "10", "x7"]
    assert view.areas() == ["Baciro", "Kota"]
    assert len(view) == 4 and "x7" in view and "nope" not in view


@pytest.mark.parametrize(
    ("ont_id", "status", "rto", "severity"),
    [
        ("1", Status.OFF, 1, "warning"),
        ("2", Status.OFF, 3, "critical"),
        ("10", Status.ON, 0, "ok"),
        ("x7", Status.UNKNOWN, 0, "ok"),
    ],
)
async def test_get_and_ont(
    view: EngineView, ont_id: str, status: Status, rto: int, severity: str
) -> None:
    pair = view.get(ont_id)
    assert pair is not None
    ont, state = pair
    assert (state.status, state.rto_count, state.severity.value) == (status, rto, severity)
    assert view.ont(ont_id) == ont and ont.id == ont_id


async def test_unknown_id(view: EngineView) -> None:
    assert view.get("nope") is None and view.ont("nope") is None


async def test_offline_longest_down_first(view: EngineView) -> None:
    # ONT 1 went OFF first (its second push kept it OFF), then ONT 2
    assert [o.id for o, _ in view.offline()] == ["1", "2"]


async def test_counts(view: EngineView) -> None:
    counts = view.counts()
    assert (counts.total, counts.online, counts.offline, counts.unknown) == (4, 1, 2, 1)
    assert counts.by_severity == {"ok": 2, "warning": 1, "critical": 1}
    assert counts.by_area == (
        AreaCounts("", 1, 0, 0, 1, 0),
        AreaCounts("Baciro", 2, 0, 2, 0, 1),
        AreaCounts("Kota", 1, 1, 0, 0, 0),
    )


async def test_mutes(view: EngineView, engine: Engine, clock: ManualClock) -> None:
    until = clock.now + timedelta(hours=1)
    await engine.mute("area:Baciro", until, "tester")
    await engine.mute("ont:10", until, "tester")
    assert [m.target for m in view.mutes()] == ["area:Baciro", "ont:10"]
    assert view.mute("ont:10") is not None and view.mute("ont:1") is None
    ont1, ont10, lone = view.ont("1"), view.ont("10"), view.ont("x7")
    assert ont1 and ont10 and lone
    assert view.is_muted(ont1, clock.now)  # by its area
    assert view.is_muted(ont10, clock.now) and not view.is_muted(lone, clock.now)
    assert not view.is_muted(ont10, until + timedelta(seconds=1))


async def test_returns_copies(view: EngineView, engine: Engine) -> None:
    onts = view.onts()
    onts.clear()
    items = view.items()
    items.clear()
    assert len(view) == 4 and len(view.items()) == 4 and engine.get("1") is not None


async def test_outages_and_feed_are_the_engines(view: EngineView, engine: Engine) -> None:
    assert view.outages() == []
    assert view.feed is engine.feed and view.thresholds == engine.thresholds


async def test_outage_listed_oldest_first(engine: Engine, clock: ManualClock) -> None:
    onts = [Ont(id=str(i), area="Gedong" if i <= 10 else "Kota") for i in range(1, 21)]
    await engine.upsert(onts)
    await engine.ingest_many(
        [Observation.push(str(i), Status.OFF, 0, clock.now) for i in range(1, 11)]
    )
    clock.advance(seconds=30)
    await engine.ingest_many(
        [Observation.push(str(i), Status.OFF, 0, clock.now) for i in range(11, 21)]
    )
    outages = EngineView(engine).outages()
    assert [o.area for o in outages] == ["Gedong", "Kota"]
    assert outages[0].started_at < outages[1].started_at
