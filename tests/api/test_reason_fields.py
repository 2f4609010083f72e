"""The API carries each reason as text in the service language, with its code and parameters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from monitor.engine import Engine
from storage.queries import Queries
from tests.api.conftest import make_deps
from tests.conftest import ManualClock, sample_onts

RTO3 = {"rto": 3, "threshold": 3}


async def test_push_state_history_and_notifications_carry_the_code(client: TestClient) -> None:
    resp = await client.post("/api/ont-status/1", json={"status": "OFF", "rto_count": 3})
    body = await resp.json()
    assert resp.status == 200
    assert (body["reason_code"], body["reason_params"]) == ("rto_at_threshold", RTO3)
    assert body["reason"] == "rto 3, mencapai batas kritis 3"  # the default service language
    (event,) = body["events"]
    assert event["reason_code"] == "rto_at_threshold" and event["reason"] == body["reason"]
    incident = body["incident"]
    assert (incident["reason_code"], incident["reason_params"]) == ("rto_at_threshold", RTO3)

    ont = await (await client.get("/api/onts/1")).json()
    assert ont["incident"]["reason"] == "rto 3, mencapai batas kritis 3"
    (line,) = ont["history"]
    assert (line["reason_code"], line["reason_params"]) == ("rto_at_threshold", RTO3)

    (note,) = await (await client.get("/api/notifications")).json()
    assert note["reason_code"] == "rto_at_threshold" and note["reason_params"] == RTO3
    assert note["message"].startswith("KRITIS · Baciro RT 1 (id 1): rto 3")


@pytest.fixture
async def en_client(
    engine: Engine, reads: Queries, clock: ManualClock
) -> AsyncIterator[TestClient]:
    await engine.upsert(sample_onts(1))
    deps = make_deps(engine, reads, clock, None)
    deps.lang = "en"
    async with TestClient(TestServer(create_app(deps))) as c:
        yield c


async def test_english_service_language(en_client: TestClient) -> None:
    resp = await en_client.post("/api/ont-status/1", json={"status": "OFF"})
    body = await resp.json()
    assert (body["reason"], body["reason_code"], body["reason_params"]) == (
        "went OFF",
        "went_off",
        {},
    )
    resp = await en_client.post("/api/ont-status/1", json={"status": "OFF"})
    assert (await resp.json())["reason_code"] == "unchanged"
