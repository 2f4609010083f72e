"""The HTTP API through aiohttp's test client: contract, validation, auth, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from api.openapi import app_routes
from tests.conftest import HOTSPOT


async def snapshot(client: TestClient) -> Any:
    onts = await (await client.get("/api/onts")).json()
    notes = await (await client.get("/api/notifications")).json()
    return onts, notes


async def test_every_route_is_in_openapi(client: TestClient) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    served = app_routes(client.server.app)
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert served == documented
    for path, ops in spec["paths"].items():
        for op in ops.values():
            assert op.get("summary") and op.get("summary") != path, path
            assert any(code.startswith("2") for code in op["responses"]), path


async def test_every_write_documents_the_standbys_503(client: TestClient) -> None:
    """A standby refuses every write with 503 and Retry-After (web/standby.py): documented."""
    spec = await (await client.get("/api/openapi.json")).json()
    writes = [op for ops in spec["paths"].values() for m, op in ops.items() if m != "get"]
    assert writes
    for op in writes:
        answer = op["responses"]["503"]
        assert "standby" in answer["description"] and "Retry-After" in answer["headers"]
    assert "leader" in spec["components"]["schemas"]["Error"]["properties"]


async def test_push_json_then_state_and_notification(client: TestClient) -> None:
    r = await client.post("/api/ont-status/2", json={"status": "OFF", "rto_count": 3})
    assert r.status == 200
    body = await r.json()
    assert (body["id"], body["status"], body["rto_count"], body["severity"]) == (
        "2",
        "OFF",
        3,
        "critical",
    )
    assert [e["kind"] for e in body["events"]] == ["opened"]
    ont = await (await client.get("/api/onts/2")).json()
    assert ont["status"] == "OFF" and ont["history"][0]["rto_count"] == 3
    notes = await (await client.get("/api/notifications?unread=1")).json()
    assert [(n["ont_id"], n["severity"], n["read"]) for n in notes] == [("2", "critical", False)]


async def test_form_encoded_push_like_mikrotik(client: TestClient) -> None:
    r = await client.post(
        "/api/ont-status/1",
        data="status=OFF",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status == 200 and (await r.json())["status"] == "OFF"
    r = await client.post("/api/ont-status/1", data={"status": "on", "rto_count": "0"})
    assert r.status == 200 and (await r.json())["status"] == "ON"


async def test_old_status_spellings_are_read_as_off(client: TestClient) -> None:
    r = await client.post("/api/ont-status/1", json={"status": "OFF(RTO)", "rto_count": 1})
    assert (await r.json())["status"] == "OFF"


BAD_PUSHES = [
    (
        "malformed_json",
        "/api/ont-status/1",
        b'{"status": "OFF"',
        "application/json",
        400,
        "malformed JSON",
    ),
    ("empty_body", "/api/ont-status/1", b"", "application/json", 400, "empty body"),
    ("bad_status", "/api/ont-status/1", b'{"status": "DOWN"}', "application/json", 422, "status"),
    ("missing_status", "/api/ont-status/1", b'{"rto_count": 1}', "application/json", 422, "status"),
    (
        "negative_rto",
        "/api/ont-status/1",
        b'{"status": "OFF", "rto_count": -1}',
        "application/json",
        422,
        "rto_count",
    ),
    (
        "rto_not_int",
        "/api/ont-status/1",
        b'{"status": "OFF", "rto_count": "many"}',
        "application/json",
        422,
        "rto_count",
    ),
    ("body_not_object", "/api/ont-status/1", b'["OFF"]', "application/json", 422, "body"),
    (
        "unknown_ont",
        "/api/ont-status/999",
        b'{"status": "OFF"}',
        "application/json",
        404,
        "unknown ONT",
    ),
    (
        "oversized_push",
        "/api/ont-status/1",
        json.dumps({"status": "OFF", "pad": "x" * 100_000}).encode(),
        "application/json",
        413,
        "too large",
    ),
    (
        "bad_bulk_item",
        "/api/ont-status",
        b'[{"id": "1", "status": "OFF"}, {"id": "2"}]',
        "application/json",
        422,
        "1.status",
    ),
    ("bulk_not_list", "/api/ont-status", b'{"id": "1"}', "application/json", 422, "body"),
    (
        "bad_latitude",
        "/api/onts",
        b'{"id": "9", "lat": 123, "lon": 110}',
        "application/json",
        422,
        "lat",
    ),
    (
        "bad_longitude",
        "/api/onts",
        b'{"id": "9", "latitude": -7, "longitude": "east"}',
        "application/json",
        422,
        "lon",
    ),
    ("ont_without_id", "/api/onts", b'{"name": "x"}', "application/json", 422, "id"),
    (
        "import_not_json_list",
        "/api/onts/import",
        b'{"a": 1}',
        "application/json",
        400,
        "invalid import file",
    ),
]


@pytest.mark.parametrize(
    ("name", "path", "body", "ctype", "status", "names"), BAD_PUSHES, ids=[c[0] for c in BAD_PUSHES]
)
async def test_bad_input_is_refused_and_changes_nothing(
    client: TestClient, name: str, path: str, body: bytes, ctype: str, status: int, names: str
) -> None:
    before = await snapshot(client)
    r = await client.post(path, data=body, headers={"Content-Type": ctype})
    assert r.status == status, await r.text()
    err = await r.json()
    assert set(err) == {"error", "detail"}
    assert names in err["error"] + json.dumps(err["detail"])
    assert await snapshot(client) == before


async def test_bulk_push_applies_known_reports_unknown(client: TestClient) -> None:
    r = await client.post(
        "/api/ont-status",
        json=[
            {"id": "1", "status": "OFF", "rto_count": 1},
            {"id": 2, "status": "ON"},
            {"id": "nope", "status": "OFF"},
        ],
    )
    body = await r.json()
    assert r.status == 200 and body["applied"] == 2 and body["unknown"] == ["nope"]
    stats = await (await client.get("/api/stats")).json()
    assert (stats["online"], stats["offline"], stats["unknown"]) == (1, 1, 1)


async def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    r = await client.get("/api/nothing")
    assert r.status == 404 and "error" in await r.json()
    r = await client.put("/api/onts")
    assert r.status == 405 and "error" in await r.json()


async def test_bad_query_values(client: TestClient) -> None:
    for q in ("limit=abc", "limit=0", "unread=maybe"):
        r = await client.get(f"/api/notifications?{q}")
        assert r.status == 400, q
    assert (await client.get("/api/onts?status=BROKEN")).status == 400


async def test_upsert_create_update_delete(client: TestClient) -> None:
    r = await client.post(
        "/api/onts",
        json={
            "id": 77,
            "name": 'Pos <RT 01> & "RW" 02',
            "lokasi": "Balai",
            "ip": " 127.0.0.77 ",
            "latitude": -7.8,
            "longitude": 110.4,
        },
    )
    assert r.status == 201
    ont = await r.json()
    assert (ont["id"], ont["ip"], ont["area"], ont["location"]) == (
        "77",
        "127.0.0.77",
        "Pos",
        "Balai",
    )
    r = await client.post("/api/onts", json={"id": "77", "name": "Renamed", "area": "Baciro"})
    assert r.status == 200 and (await r.json())["area"] == "Baciro"
    assert (await client.delete("/api/onts/77")).status == 200
    assert (await client.get("/api/onts/77")).status == 404
    assert (await client.delete("/api/onts/77")).status == 404


async def test_invalid_ip_gives_a_warning(client: TestClient) -> None:
    r = await client.post("/api/onts", json={"id": "50", "name": "Baciro X", "ip": "127.0.0.300"})
    assert r.status == 201 and (await r.json())["ip_valid"] is False
    notes = await (await client.get("/api/notifications")).json()
    assert notes[0]["kind"] == "invalid_ip" and notes[0]["severity"] == "warning"


async def test_mark_read(client: TestClient) -> None:
    await client.post("/api/ont-status/1", json={"status": "OFF"})
    await client.post("/api/ont-status/2", json={"status": "OFF"})
    notes = await (await client.get("/api/notifications")).json()
    r = await client.post(f"/api/notifications/mark-read/{notes[0]['id']}")
    assert (await r.json())["marked"] == 1
    assert len(await (await client.get("/api/notifications?unread=1")).json()) == 1
    assert (await client.post("/api/notifications/mark-read/99999")).status == 404
    assert (await client.post("/api/notifications/mark-read/x")).status == 400
    assert (await (await client.post("/api/notifications/mark-read")).json())["marked"] == 1
    assert (await (await client.get("/api/stats")).json())["unread"] == 0


async def test_import_the_real_export(client: TestClient) -> None:
    r = await client.post(
        "/api/onts/import", data=HOTSPOT.read_bytes(), headers={"Content-Type": "application/json"}
    )
    report = await r.json()
    assert r.status == 200, report
    assert report["imported"] == 417 and report["refused"] == 0
    onts = {o["id"]: o for o in await (await client.get("/api/onts")).json()}
    assert len(onts) == 417 + 3 - 3  # the fixture's ids 1..3 update the sample ONTs
    assert onts["4"]["ip"] == "127.239.1.129"  # " 127.239.1.129" in the file
    assert onts["4"]["area"] == "Baciro"
    assert all(o["ip"] == o["ip"].strip() for o in onts.values())
    raw = json.loads(HOTSPOT.read_text())
    off_in_file = sum(1 for o in raw if o["status"].startswith("OFF"))
    stats = await (await client.get("/api/stats")).json()
    assert stats["offline"] == off_in_file and stats["total"] == 417
    assert stats["unread"] == 0  # an import is a baseline, not 36 alerts
    dup = [row for row in report["rows"] if any("also used" in w for w in row["warnings"])]
    assert len(dup) == 2


async def test_import_reports_bad_rows_and_keeps_good_ones(client: TestClient) -> None:
    rows = [
        {"id": 10, "name": "Good One", "ip": "127.0.0.10", "latitude": -7.8, "longitude": 110.4},
        {"id": 11, "name": "Bad Lat", "ip": "127.0.0.11", "latitude": 99, "longitude": 110.4},
        {"id": 12, "name": "Bad Status", "ip": "127.0.0.12", "status": "MAYBE"},
        {"id": 10, "name": "Dup", "ip": "127.0.0.13"},
        "not an object",
        {"name": "no id"},
    ]
    report = await (await client.post("/api/onts/import", json=rows)).json()
    assert report["imported"] == 1 and report["refused"] == 5
    refused = {
        r["row"]: r["errors"][0]["field"] for r in report["rows"] if r["result"] == "refused"
    }
    assert refused == {2: "latitude", 3: "status", 4: "id", 5: "row", 6: "id"}  # as posted
    assert (await client.get("/api/onts/10")).status == 200
    assert (await client.get("/api/onts/11")).status == 404


async def test_import_csv(client: TestClient) -> None:
    csv_text = (
        "id,name,lokasi,ip,latitude,longitude,area,status\n"
        "20,Demangan A,Pos,127.0.0.20,-7.78,110.39,ODP-7,ON\n"
        "21,Demangan B,Pos,127.0.0.21,-7.78,abc,,OFF\n"
    )
    r = await client.post("/api/onts/import", data=csv_text, headers={"Content-Type": "text/csv"})
    report = await r.json()
    assert report["imported"] == 1 and report["rows"][1]["errors"][0]["field"] == "longitude"
    assert (await (await client.get("/api/onts/20")).json())["area"] == "ODP-7"


async def test_writes_need_the_token_when_set(token_client: TestClient) -> None:
    c = token_client
    assert (await c.post("/api/ont-status/1", json={"status": "OFF"})).status == 401
    bad = {"Authorization": "Bearer wrong"}
    assert (await c.post("/api/ont-status/1", json={"status": "OFF"}, headers=bad)).status == 401
    assert (await c.delete("/api/onts/1")).status == 401
    assert (await (await c.get("/api/onts/1")).json())["status"] == "UNKNOWN"  # reads are open
    good = {"Authorization": "Bearer s3cret-token"}
    assert (await c.post("/api/ont-status/1", json={"status": "OFF"}, headers=good)).status == 200
