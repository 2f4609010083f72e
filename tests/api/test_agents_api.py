"""The agents' HTTP API on a real aiohttp server, engine, SQLite file and agents table.

Access control is installed as beyond loopback (login required, admin and read tokens), so
every refusal here is the one a real centre gives.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from monitor.agents import AgentDesk
from monitor.engine import Engine
from monitor.model import Ont, Status
from storage.agents import Agents
from storage.database import Database
from storage.queries import Queries
from tests.api.conftest import make_deps
from tests.conftest import ManualClock
from web.auth import AccessConfig, install

ADMIN = "s3cret-token"
READ = "read-only-token"


@dataclass
class Centre:
    client: TestClient
    desk: AgentDesk
    agents: Agents
    tokens: dict[str, str]
    clock: ManualClock

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


def onts(n: int, area: str, net: str) -> list[Ont]:
    return [Ont(id=f"{area[:1]}{i}", area=area, ip=f"{net}.{i}") for i in range(1, n + 1)]


@pytest.fixture
async def centre(
    engine: Engine, reads: Queries, db: Database, clock: ManualClock
) -> AsyncIterator[Centre]:
    await engine.upsert(onts(3, "Baciro", "127.0.1") + onts(3, "Kotabaru", "127.0.2"))
    await engine.upsert([Ont("X1", area="Nowhere", ip="127.0.3.1")])
    agents = Agents(db)
    tokens = {
        "POP-1": await agents.add("POP-1", ["Baciro"], [], clock()),
        "POP-2": await agents.add("POP-2", [], ["127.0.2.0/24"], clock()),
    }
    desk = AgentDesk(agents, engine, clock)
    await desk.start()
    engine.agents = desk
    app = create_app(make_deps(engine, reads, clock))
    cfg = AccessConfig(login_required=True, admin_token=ADMIN, read_token=READ, clock=clock)
    install(app, cfg)
    async with TestClient(TestServer(app)) as client:
        yield Centre(client, desk, agents, tokens, clock)
    await desk.stop()


def body(
    seq: int,
    obs: list[list[Any]],
    clock: ManualClock,
    *,
    epoch: str = "e1",
    assignment: str = "",
    full: bool = False,
    sweep: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A report as docs/agents.md shows it; obs times are offsets from the clock's now."""
    now = clock().timestamp()
    return {
        "epoch": epoch,
        "seq": seq,
        "sent_at": now,
        "interval": 5.0,
        "assignment": assignment,
        "full": full,
        "sweep": sweep,
        "queue": {"depth": 0, "oldest": None, "dropped": 0},
        "obs": [[i, now + off, lost] for i, off, lost in obs],
    }


async def post(c: Centre, name: str, payload: Any, **kw: Any) -> tuple[int, Any]:
    resp = await c.client.post("/api/agent/report", json=payload, headers=c.auth(name), **kw)
    return resp.status, await resp.json()


async def test_assignment_and_304(centre: Centre, engine: Engine) -> None:
    c = centre
    resp = await c.client.get("/api/agent/assignment", headers=c.auth("POP-1"))
    assert resp.status == 200
    got = await resp.json()
    assert got["agent"] == "POP-1" and got["down_after"] == 2 and got["critical_rto"] == 3
    assert got["targets"] == [["B1", "127.0.1.1"], ["B2", "127.0.1.2"], ["B3", "127.0.1.3"]]
    etag = resp.headers["ETag"]
    assert etag == f'"{got["version"]}"'
    same = await c.client.get(
        "/api/agent/assignment", headers={**c.auth("POP-1"), "If-None-Match": etag}
    )
    assert same.status == 304 and same.headers["ETag"] == etag
    await engine.upsert([Ont("X1", area="Baciro", ip="127.0.3.1")])
    moved = await c.client.get(
        "/api/agent/assignment", headers={**c.auth("POP-1"), "If-None-Match": etag}
    )
    assert moved.status == 200 and moved.headers["ETag"] != etag
    assert ["X1", "127.0.3.1"] in (await moved.json())["targets"]


async def test_report_applied_with_original_times_in_order(centre: Centre, engine: Engine) -> None:
    c = centre
    obs: list[list[Any]] = [["B1", -10, 2], ["B1", -30, 0], ["B1", -20, 1], ["B2", -4, 0]]
    status, answer = await post(c, "POP-1", body(1, obs, c.clock))
    assert status == 200
    assert answer == {
        "accepted": 4,
        "stale": 0,
        "refused": 0,
        "duplicate": False,
        "want_full": True,  # the first report since the centre started
        "assignment": (await c.desk.assignment("POP-1")).version,
    }
    assert engine.states["B1"].status is Status.OFF and engine.states["B2"].status is Status.ON
    resp = await c.client.get("/api/onts/B1/history", headers={"Authorization": f"Bearer {READ}"})
    history = await resp.json()
    times = [h["at"] for h in reversed(history)]
    expected = [(c.clock() - timedelta(seconds=s)).isoformat() for s in (30, 20, 10)]
    assert times[-3:] == expected
    assert {h["source"] for h in history} == {"agent"}


async def test_stale_duplicate_and_foreign(centre: Centre, engine: Engine) -> None:
    c = centre
    await post(c, "POP-1", body(1, [["B1", -1, 0]], c.clock))
    _, stale = await post(c, "POP-1", body(2, [["B1", -60, 3]], c.clock))
    assert (stale["accepted"], stale["stale"]) == (0, 1)
    assert engine.states["B1"].rto_count == 0
    _, dup = await post(c, "POP-1", body(2, [["B1", 0, 3]], c.clock))
    assert dup["duplicate"] and dup["accepted"] == 0 and engine.states["B1"].rto_count == 0
    _, foreign = await post(c, "POP-1", body(3, [["K1", 0, 3], ["X1", 0, 3]], c.clock))
    assert (foreign["accepted"], foreign["refused"]) == (0, 2)
    assert engine.states["K1"].status is Status.UNKNOWN
    resp = await c.client.get("/api/agents", headers={"Authorization": f"Bearer {READ}"})
    listed = {a["name"]: a for a in await resp.json()}
    assert listed["POP-1"]["refused"] == 2 and listed["POP-1"]["stale"] == 1
    assert listed["POP-1"]["reports"] == 4 and listed["POP-2"]["reports"] == 0
    assert listed["POP-1"]["onts"] == 3 and listed["POP-1"]["last_contact"] is not None


async def test_gzip_body_is_accepted(centre: Centre, engine: Engine) -> None:
    c = centre
    raw = gzip.compress(json.dumps(body(1, [["K1", 0, 0], ["K2", 0, 4]], c.clock)).encode())
    headers = {**c.auth("POP-2"), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    resp = await c.client.post("/api/agent/report", data=raw, headers=headers)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["accepted"] == 2
    assert engine.states["K2"].status is Status.OFF and engine.states["K2"].rto_count == 4


async def test_a_body_that_is_not_gzip_is_400(centre: Centre) -> None:
    c = centre
    headers = {**c.auth("POP-2"), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    resp = await c.client.post("/api/agent/report", data=b"not gzip at all", headers=headers)
    assert resp.status == 400 and (await resp.json())["error"] == "malformed body"
    assert c.desk.statuses()[1].reports == 0


async def test_body_bound_counts_decompressed_bytes(centre: Centre) -> None:
    c = centre
    raw = gzip.compress(b" " * (33 * 2**20))  # 33 kB on the wire, 33 MB inflated
    headers = {**c.auth("POP-2"), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    resp = await c.client.post("/api/agent/report", data=raw, headers=headers)
    assert resp.status == 413


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"seq": "7"}, "seq"),
        ({"seq": -1}, "seq"),
        ({"seq": True}, "seq"),
        ({"epoch": ""}, "epoch"),
        ({"epoch": "two words"}, "epoch"),
        ({"interval": 0}, "interval"),
        ({"sent_at": "yesterday"}, "sent_at"),
        ({"sent_at": 1e300}, "sent_at"),
        ({"full": "yes"}, "full"),
        ({"sweep": {"at": 1.0, "duration": -1, "targets": 1, "replied": 1, "silent": 0}}, "sweep"),
        ({"queue": {"depth": -3}}, "queue.depth"),
        ({"obs": [["B1", 1.0]]}, "obs.0"),
        ({"obs": [["B1", 1.0, 0], ["B2", 1.0, -1]]}, "obs.1.2"),
        ({"obs": [["", 1.0, 0]]}, "obs.0.0"),
        ({"obs": [[7, 1.0, 0]]}, "obs.0.0"),
        ({"obs": [["B1", "now", 0]]}, "obs.0.1"),
        ({"obs": "B1"}, "obs"),
    ],
)
async def test_bad_fields_are_422_naming_the_field(
    centre: Centre, engine: Engine, change: dict[str, Any], field: str
) -> None:
    c = centre
    payload = {**body(1, [["B1", 0, 3]], c.clock), **change}
    status, answer = await post(c, "POP-1", payload)
    assert status == 422, answer
    assert any(e["field"].startswith(field) for e in answer["detail"]), answer
    assert field.split(".")[0] in answer["error"]
    assert engine.states["B1"].status is Status.UNKNOWN  # nothing applied
    assert c.desk.statuses()[0].reports == 0


async def test_an_agent_clock_centuries_off_is_no_500(centre: Centre, engine: Engine) -> None:
    c = centre
    payload = {**body(1, [], c.clock), "sent_at": 0.0, "obs": [["B1", 253_000_000_000.0, 0]]}
    status, answer = await post(c, "POP-1", payload)
    assert status == 200 and answer["accepted"] == 1  # corrected to now, not overflowed
    assert engine.states["B1"].last_seen == c.clock()


async def test_missing_field_and_malformed_json(centre: Centre) -> None:
    c = centre
    payload = body(1, [], c.clock)
    del payload["epoch"]
    status, answer = await post(c, "POP-1", payload)
    assert status == 422 and answer["detail"][0]["field"] == "epoch"
    headers = {**c.auth("POP-1"), "Content-Type": "application/json"}
    resp = await c.client.post("/api/agent/report", data=b"{not json", headers=headers)
    assert resp.status == 400
    resp = await c.client.post("/api/agent/report", data=b"", headers=headers)
    assert resp.status == 400
    lone = json.dumps({**payload, "epoch": "e\ud800"}).encode()  # never storable
    resp = await c.client.post("/api/agent/report", data=lone, headers=headers)
    assert resp.status == 400
    deep = b"[" * 100_000 + b"]" * 100_000
    resp = await c.client.post("/api/agent/report", data=deep, headers=headers)
    assert resp.status in (400, 422)


async def test_agent_routes_refuse_other_credentials(centre: Centre) -> None:
    c = centre
    payload = body(1, [["B1", 0, 0]], c.clock)
    for headers, expected in [
        ({}, 401),
        ({"Authorization": "Bearer not-a-token"}, 401),
        ({"Authorization": f"Bearer {ADMIN}"}, 403),
        ({"Authorization": f"Bearer {READ}"}, 403),
    ]:
        resp = await c.client.post("/api/agent/report", json=payload, headers=headers)
        assert resp.status == expected, headers
        resp = await c.client.get("/api/agent/assignment", headers=headers)
        assert resp.status == expected, headers
        assert "error" in await resp.json()
    assert c.desk.statuses()[0].reports == 0


async def test_agent_token_opens_nothing_else(centre: Centre, engine: Engine) -> None:
    c = centre
    h = c.auth("POP-1")
    resp = await c.client.post("/api/ont-status/B1", json={"status": "OFF"}, headers=h)
    assert resp.status in (401, 403)
    resp = await c.client.post("/api/ont-status", json=[{"id": "B1", "status": "OFF"}], headers=h)
    assert resp.status in (401, 403)
    for path in ("/api/onts", "/api/agents", "/api/stats", "/metrics"):
        assert (await c.client.get(path, headers=h)).status in (401, 403), path
    resp = await c.client.post("/api/onts", json={"id": "Z", "ip": "127.0.9.9"}, headers=h)
    assert resp.status in (401, 403)
    assert engine.states["B1"].status is Status.UNKNOWN and "Z" not in engine.onts


async def test_dot_segments_do_not_escape_the_agent_routes(centre: Centre, engine: Engine) -> None:
    """/api/agent/** is public in the role table: a path climbing out of it must not be."""
    c = centre
    port = c.client.port
    for path in ("/api/agent/../ont-status/B1", "/api/agent/%2e%2e/ont-status/B1"):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        payload = b'{"status": "OFF"}'
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {c.tokens['POP-1']}\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        status = int(head.split()[1])
        assert status != 200 and status < 500, (path, head)
    assert engine.states["B1"].status is Status.UNKNOWN


async def test_revoked_and_rotated_tokens_are_refused(centre: Centre) -> None:
    c = centre
    assert (await c.client.get("/api/agent/assignment", headers=c.auth("POP-2"))).status == 200
    await c.agents.revoke("POP-2", c.clock())
    await c.desk.reload()
    assert (await c.client.get("/api/agent/assignment", headers=c.auth("POP-2"))).status == 401
    old = c.tokens["POP-1"]
    c.tokens["POP-1"] = await c.agents.new_token("POP-1")
    c.desk._tokens.clear()  # the 5 s cache of looked-up tokens, not waited out here
    assert (await c.client.get("/api/agent/assignment", headers=c.auth("POP-1"))).status == 200
    stale = {"Authorization": f"Bearer {old}"}
    assert (await c.client.get("/api/agent/assignment", headers=stale)).status == 401


async def test_an_agent_may_name_the_centre_by_any_host_name(centre: Centre) -> None:
    c = centre
    host = {"Host": "noc.example.net"}  # a header value only: nothing is connected to
    resp = await c.client.get("/api/agent/assignment", headers={**c.auth("POP-1"), **host})
    assert resp.status == 200
    assert (await c.client.get("/api/stats", headers=host)).status == 421  # pages still checked


async def test_lost_agent_shows_in_the_list_and_returns(centre: Centre, engine: Engine) -> None:
    c = centre
    read = {"Authorization": f"Bearer {READ}"}
    await post(c, "POP-1", body(1, [["B1", 0, 0], ["B2", 0, 0]], c.clock))
    c.clock.advance(seconds=16)
    assert "POP-1" in await c.desk.check()
    listed = {a["name"]: a for a in await (await c.client.get("/api/agents", headers=read)).json()}
    assert listed["POP-1"]["lost"] and listed["POP-1"]["lost_since"] == c.clock().isoformat()
    assert (listed["POP-1"]["state"], listed["POP-2"]["state"]) == ("lost", "lost")
    assert engine.states["B1"].status is Status.UNKNOWN
    _, answer = await post(c, "POP-1", body(2, [["B1", 0, 0]], c.clock))
    assert answer["want_full"] and answer["accepted"] == 1
    assert engine.states["B1"].status is Status.ON
    listed = {a["name"]: a for a in await (await c.client.get("/api/agents", headers=read)).json()}
    assert not listed["POP-1"]["lost"] and listed["POP-1"]["state"] == "ok"


async def test_without_a_desk_the_agent_routes_are_503(
    engine: Engine, reads: Queries, clock: ManualClock
) -> None:
    app = create_app(make_deps(engine, reads, clock))
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/api/agent/assignment", headers={"Authorization": "Bearer x"})
        assert resp.status == 503
        assert await (await client.get("/api/agents")).json() == []
