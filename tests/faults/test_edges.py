"""Inputs that cost more than their size, or that used to escape as 500s (issue 10: 3, 7, 9)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import MAX_BODY, MAX_PUSH_BODY, create_app
from monitor.engine import Engine
from monitor.model import Ont
from storage.queries import Queries
from tests.api.conftest import make_deps
from tests.conftest import ManualClock, sample_onts


@pytest.fixture
async def api(engine: Engine, reads: Queries, clock: ManualClock) -> AsyncIterator[TestClient]:
    await engine.upsert(sample_onts(3))
    async with TestClient(TestServer(create_app(make_deps(engine, reads, clock, None)))) as c:
        yield c


async def chunks(total: int, piece: bytes = b" " * 65536) -> AsyncIterator[bytes]:
    """A chunked body (no Content-Length) of `total` bytes: '[' then spaces."""
    yield b"["
    sent = 1
    while sent < total:
        part = piece[: total - sent]
        sent += len(part)
        yield part


def assert_error(body: object, field: str | None = None) -> None:
    assert isinstance(body, dict) and set(body) == {"error", "detail"}, body
    if field is not None:
        assert field in body["error"] or field in json.dumps(body["detail"]), body


# -- finding 7: chunked bodies over the limit --------------------------------------------


@pytest.mark.parametrize(
    ("path", "limit"),
    [("/api/ont-status/1", MAX_PUSH_BODY), ("/api/ont-status", MAX_BODY), ("/api/onts", MAX_BODY)],
)
async def test_chunked_body_over_the_limit_is_413_json(
    api: TestClient, path: str, limit: int
) -> None:
    r = await api.post(path, data=chunks(limit + 10), headers={"Content-Type": "application/json"})
    assert r.status == 413
    body = await r.json()
    assert_error(body)
    assert body["detail"] == {"max_bytes": limit}


async def test_chunked_import_over_the_limit_is_413_json(api: TestClient) -> None:
    r = await api.post(
        "/api/onts/import", data=chunks(MAX_BODY + 10), headers={"Content-Type": "text/csv"}
    )
    assert r.status == 413
    body = await r.json()
    assert_error(body)
    assert body["detail"]["max_bytes"] == MAX_BODY


# -- finding 7: deep nesting and huge integers -------------------------------------------


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("path", ["/api/ont-status/1", "/api/ont-status", "/api/onts"])
async def test_deeply_nested_json_is_400(api: TestClient, path: str, depth: int) -> None:
    raw = "[" * depth + "]" * depth
    r = await api.post(path, data=raw, headers={"Content-Type": "application/json"})
    assert 400 <= r.status < 500
    assert_error(await r.json())


@pytest.mark.parametrize("digits", [25, 4_000, 5_000, 50_000])
async def test_huge_rto_count_is_4xx_naming_it(api: TestClient, digits: int) -> None:
    raw = '{"status": "OFF", "rto_count": ' + "9" * digits + "}"
    r = await api.post("/api/ont-status/1", data=raw, headers={"Content-Type": "application/json"})
    assert r.status == 422
    assert_error(await r.json(), "rto_count")
    bulk = '[{"id": "1", "status": "OFF", "rto_count": ' + "9" * digits + "}]"
    r = await api.post("/api/ont-status", data=bulk, headers={"Content-Type": "application/json"})
    assert r.status == 422
    assert_error(await r.json(), "rto_count")
    r = await api.post("/api/ont-status/1", data={"status": "OFF", "rto_count": "9" * digits})
    assert r.status == 422
    assert_error(await r.json(), "rto_count")
    got = await (await api.get("/api/onts/1")).json()
    assert got["status"] == "UNKNOWN"  # nothing was stored


async def test_huge_numeric_id_is_4xx_naming_it(api: TestClient) -> None:
    raw = '[{"id": ' + "1" * 5_000 + ', "status": "ON"}]'
    r = await api.post("/api/ont-status", data=raw, headers={"Content-Type": "application/json"})
    assert r.status == 422
    assert_error(await r.json(), "id")
    raw = '{"id": ' + "1" * 5_000 + ', "name": "x"}'
    r = await api.post("/api/onts", data=raw, headers={"Content-Type": "application/json"})
    assert r.status == 422
    assert_error(await r.json(), "id")


@pytest.mark.parametrize("digits", [20, 4_301, 8_000])  # longer: aiohttp refuses the line
async def test_huge_mark_read_id_is_4xx_naming_it(api: TestClient, digits: int) -> None:
    r = await api.post(f"/api/notifications/mark-read/{'7' * digits}")
    assert 400 <= r.status < 500
    assert_error(await r.json(), "id")


# -- finding 9: booleans are not counts ----------------------------------------------------


@pytest.mark.parametrize("value", [True, False])
async def test_rto_count_true_is_refused(api: TestClient, value: bool) -> None:
    r = await api.post("/api/ont-status/1", json={"status": "OFF", "rto_count": value})
    assert r.status == 422
    assert_error(await r.json(), "rto_count")
    r = await api.post("/api/ont-status", json=[{"id": "1", "status": "OFF", "rto_count": value}])
    assert r.status == 422
    assert_error(await r.json(), "rto_count")
    assert (await (await api.get("/api/onts/1")).json())["status"] == "UNKNOWN"


async def test_rto_count_forms_still_accepted(api: TestClient) -> None:
    r = await api.post("/api/ont-status/1", data={"status": "OFF", "rto_count": "2"})
    assert r.status == 200 and (await r.json())["rto_count"] == 2


# -- finding 3: paging ----------------------------------------------------------------------


async def test_onts_paged_with_a_cursor_read_everything_once(
    api: TestClient, engine: Engine
) -> None:
    extra = [Ont(id=str(i), name=f"P {i}", area="P") for i in range(4, 26)]
    extra += [Ont(id=f"olt-{c}", name=c, area="P") for c in "abc"]
    await engine.upsert(extra)
    everything = await (await api.get("/api/onts")).json()  # small inventory: one answer
    assert len(everything) == 28
    seen: list[str] = []
    url: str | None = "/api/onts?limit=5"
    pages = 0
    while url is not None and pages < 20:
        r = await api.get(url)
        assert r.status == 200
        items = await r.json()
        assert len(items) <= 5
        seen += [o["id"] for o in items]
        url = r.links.get("next", {}).get("url") and str(r.links["next"]["url"].relative())
        pages += 1
    assert seen == [o["id"] for o in everything]
    assert pages == 6


async def test_onts_cursor_with_filters_and_bad_values(api: TestClient, engine: Engine) -> None:
    await engine.upsert([Ont(id=str(i), name=f"P {i}", area="P") for i in range(4, 12)])
    r = await api.get("/api/onts?area=P&limit=3&after=6")
    assert [o["id"] for o in await r.json()] == ["7", "8", "9"]
    assert r.headers["X-Next-After"] == "9"
    r = await api.get("/api/onts?area=P&limit=3&after=9")
    assert [o["id"] for o in await r.json()] == ["10", "11"]
    assert "X-Next-After" not in r.headers and "next" not in r.links
    for bad in ("limit=0", "limit=abc", "limit=" + "9" * 5000, "after=" + "x" * 100):
        r = await api.get(f"/api/onts?{bad}")
        assert r.status == 400, bad
        assert_error(await r.json())


async def test_history_paged_with_a_cursor(api: TestClient, clock: ManualClock) -> None:
    for i in range(12):
        await api.post("/api/ont-status/1", json={"status": "OFF" if i % 2 else "ON"})
        clock.advance(minutes=1)
    everything = await (await api.get("/api/onts/1/history?limit=1000")).json()
    seen: list[int] = []
    url: str | None = "/api/onts/1/history?limit=5"
    while url is not None and len(seen) < 100:
        r = await api.get(url)
        seen += [h["id"] for h in await r.json()]
        url = r.links.get("next", {}).get("url") and str(r.links["next"]["url"].relative())
    assert seen == [h["id"] for h in everything] and len(seen) >= 12
    r = await api.get(f"/api/history?limit=3&after={seen[2]}")
    assert [h["id"] for h in await r.json()] == [h for h in seen[3:6]]


async def test_upsert_list_over_the_limit_is_413(api: TestClient) -> None:
    from api.app import MAX_IMPORT_ROWS

    body = [{"id": f"u{i}", "name": "x"} for i in range(MAX_IMPORT_ROWS + 1)]
    r = await api.post("/api/onts", json=body)
    assert r.status == 413
    assert (await r.json())["detail"] == {"max_items": MAX_IMPORT_ROWS}
    assert len(await (await api.get("/api/onts")).json()) == 3  # nothing stored


async def test_large_bodies_still_parsed_and_validated(api: TestClient) -> None:
    body = [{"id": str(i % 3 + 1), "status": "ON", "rto_count": 0} for i in range(3000)]
    r = await api.post("/api/ont-status", json=body)
    assert r.status == 200 and (await r.json())["applied"] == 3000
    bad = [*body, {"id": "1", "status": "ON", "rto_count": True}]
    r = await api.post("/api/ont-status", json=bad)
    assert r.status == 422
    assert_error(await r.json(), "rto_count")
