"""A lost probe agent as the API shows it: one notification naming the agent, and its ONTs
UNKNOWN with an 'unobserved' history line (source agent)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from monitor.engine import Engine
from monitor.model import Event, EventKind, Observation, Reason, ReasonCode, Severity
from tests.conftest import ManualClock


async def test_agent_lost_notification_and_unobserved_onts(
    client: TestClient, engine: Engine, clock: ManualClock
) -> None:
    await engine.ingest_many([Observation.agent(i, 0, clock()) for i in ("1", "2")])
    clock.advance(seconds=30)
    why = Reason.of(ReasonCode.AGENT_LOST, agent="POP-2", onts=2, silent_s=45)
    await engine.announce(
        Event(EventKind.AGENT_LOST, Severity.CRITICAL, clock(), why, agent="POP-2")
    )
    assert await engine.mark_unobserved(["1", "2"], agent="POP-2") == 2

    (note,) = await (await client.get("/api/notifications")).json()
    assert (note["kind"], note["severity"], note["agent"]) == ("agent_lost", "critical", "POP-2")
    assert (note["ont_id"], note["area"]) == (None, None)
    assert note["reason_code"] == "agent_lost"
    assert note["reason_params"] == {"agent": "POP-2", "onts": 2, "silent_s": 45}
    assert note["reason"] == "agen probe POP-2 hilang, 2 ONT tidak terpantau (diam 45 dtk)"
    assert note["message"] == "AGEN PROBE HILANG · " + note["reason"]

    ont = await (await client.get("/api/onts/1")).json()
    assert ont["status"] == "UNKNOWN" and ont["rto_count"] == 0
    line = ont["history"][0]
    assert (line["source"], line["status"], line["reason_code"]) == (
        "agent",
        "UNKNOWN",
        "unobserved",
    )
    assert line["reason"] == "tidak terpantau: agen probe POP-2 hilang"
    untouched = await (await client.get("/api/onts/3")).json()
    assert untouched["status"] == "UNKNOWN" and untouched["history"] == []  # never observed


async def test_other_notifications_have_no_agent(client: TestClient) -> None:
    await client.post("/api/ont-status/1", json={"status": "OFF"})
    (note,) = await (await client.get("/api/notifications")).json()
    assert note["agent"] is None
