"""Notification filters and the keyset cursor of Queries, on a real engine and SQLite file."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from monitor.engine import Engine
from monitor.model import Observation, Ont, Status
from storage.queries import Queries
from tests.api.conftest import make_deps
from tests.conftest import ManualClock, sample_onts


async def _incidents(engine: Engine, clock: ManualClock) -> None:
    """ONT 1 and 2 in Baciro, 3 in Kota: warnings, a critical, a recovery."""
    await engine.upsert([*sample_onts(2), Ont(id="3", name="Kota RT 3", area="Kota")])
    for ont_id, rto in (("1", 0), ("2", 3), ("3", 1)):
        await engine.ingest(Observation.push(ont_id, Status.OFF, rto, clock.advance(seconds=1)))
    await engine.ingest(Observation.push("1", Status.ON, 0, clock.advance(seconds=1)))


async def test_filters_match_the_unfiltered_list(
    engine: Engine, reads: Queries, clock: ManualClock
) -> None:
    await _incidents(engine, clock)
    every = await reads.notifications(limit=1000)
    assert len(every) >= 4
    cases = {
        "severity": lambda n, v: n.severity == v,
        "area": lambda n, v: n.area == v,
        "kind": lambda n, v: n.kind == v,
        "ont_id": lambda n, v: n.ont_id == v,
    }
    for name, keep in cases.items():
        values = {getattr(n, name) for n in every}
        assert len(values) > 1, name  # the filter really separates something
        for value in values:
            got = await reads.notifications(limit=1000, **{name: value})
            assert [n.id for n in got] == [n.id for n in every if keep(n, value)], (name, value)
            assert await reads.notification_count(**{name: value}) == len(got)


async def test_keyset_paging_walks_every_row_once(
    engine: Engine, reads: Queries, clock: ManualClock
) -> None:
    await _incidents(engine, clock)
    every = [n.id for n in await reads.notifications(limit=1000)]
    seen: list[int] = []
    before = None
    while page := await reads.notifications(limit=2, before=before):
        seen += [n.id for n in page]
        before = page[-1].id
    assert seen == every
    assert await reads.notification_count(before=every[1]) == len(every) - 2


async def test_unread_count_follows_mark_read(
    engine: Engine, reads: Queries, clock: ManualClock
) -> None:
    await _incidents(engine, clock)
    total = await reads.notification_count()
    assert await reads.unread_count() == total
    first = (await reads.notifications(limit=1))[0]
    assert await reads.mark_read(first.id) == 1
    assert await reads.unread_count() == total - 1
    assert [n.id for n in await reads.notifications_by_id([first.id, 10**9])] == [first.id]
    await reads.mark_read(None)
    assert await reads.unread_count() == 0


async def test_api_filters_and_bad_values(
    engine: Engine, reads: Queries, clock: ManualClock
) -> None:
    await _incidents(engine, clock)
    deps = make_deps(engine, reads, clock, None)
    async with TestClient(TestServer(create_app(deps))) as client:
        every = await (await client.get("/api/notifications")).json()
        got = await (await client.get("/api/notifications?severity=critical&area=Baciro")).json()
        want = [n for n in every if n["severity"] == "critical" and n["area"] == "Baciro"]
        assert got == want and want
        page = await (await client.get(f"/api/notifications?before={every[0]['id']}")).json()
        assert page == every[1:]
        for query, name in (
            ("severity=loud", "severity"),
            ("kind=nope", "kind"),
            ("before=0", "before"),
            ("before=x", "before"),
        ):
            r = await client.get(f"/api/notifications?{query}")
            assert r.status == 400, query
            assert name in (await r.json())["error"], query
