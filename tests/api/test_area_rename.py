"""POST /api/areas/rename: one area merged into another, its mute moving with it."""

from __future__ import annotations

from datetime import timedelta

from aiohttp.test_utils import TestClient

from monitor.engine import Engine
from monitor.model import Ont
from tests.conftest import ManualClock


async def test_rename_moves_every_ont_and_the_mute(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    await engine.upsert([Ont(id="9", name="Surosutan RT 1", area="Surosutan", ip="127.0.0.9")])
    await engine.mute("area:Surosutan", clock.now + timedelta(hours=1), "test")
    r = await client.post("/api/areas/rename", json={"old": "Surosutan", "new": "Sorosutan"})
    assert r.status == 200 and await r.json() == {
        "old": "Surosutan",
        "new": "Sorosutan",
        "moved": 1,
    }
    assert (await (await client.get("/api/onts/9")).json())["area"] == "Sorosutan"
    assert "area:Surosutan" not in engine.mutes and "area:Sorosutan" in engine.mutes


async def test_rename_refusals_name_the_problem(client: TestClient, engine: Engine) -> None:
    r = await client.post("/api/areas/rename", json={"old": "Nowhere", "new": "Baciro"})
    assert r.status == 404 and (await r.json())["detail"] == {"area": "Nowhere"}
    r = await client.post("/api/areas/rename", json={"old": "Baciro", "new": "  "})
    body = await r.json()
    assert r.status == 422 and body["detail"][0]["field"] == "new"
    r = await client.post("/api/areas/rename", json={"from": "Baciro", "to": "X"})
    assert r.status == 422
    assert {o.area for o in engine.onts.values()} == {"Baciro"}  # nothing changed
