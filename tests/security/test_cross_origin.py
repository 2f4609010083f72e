"""Issue 10, finding 6: cross-site writes without a token, on the real service's wiring.

A page on another origin can make the browser send a "simple" request (text/plain, no
preflight) to the demo on loopback. Such writes must be refused and change nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ontwatch.service import Service
from ontwatch.settings import load_settings
from tests.conftest import sample_onts
from tests.process import free_port

EVIL = "http://evil.example"
CSV = "id,name,ip,area\n9001,Planted,127.0.9.1,Evil\n9002,Planted 2,127.0.9.2,Evil\n"
BULK = '[{"id": "1", "status": "OFF", "rto_count": 3}]'


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    settings = load_settings(db=tmp_path / "x.db", http_port=free_port(), probe=False)
    svc = Service(settings)
    await svc.start()
    assert svc.engine is not None
    await svc.engine.upsert(sample_onts(3))
    try:
        yield svc
    finally:
        await svc.stop()


async def snapshot(http: aiohttp.ClientSession, base: str) -> list[Any]:
    async with http.get(base + "/api/onts") as r:
        assert r.status == 200
        body = await r.json()
    return body if isinstance(body, list) else body.get("items", body)


CASES = [
    ("bulk push, Origin", "/api/ont-status", BULK, {"Origin": EVIL}),
    ("import, Origin", "/api/onts/import", CSV, {"Origin": EVIL}),
    ("bulk push, Referer only", "/api/ont-status", BULK, {"Referer": EVIL + "/page.html"}),
    ("import, Referer only", "/api/onts/import", CSV, {"Referer": EVIL + "/x"}),
    ("import, Origin null", "/api/onts/import", CSV, {"Origin": "null"}),
]


@pytest.mark.parametrize(("name", "path", "body", "headers"), CASES, ids=[c[0] for c in CASES])
async def test_cross_origin_text_plain_write_is_refused(
    service: Service, name: str, path: str, body: str, headers: dict[str, str]
) -> None:
    base = f"http://127.0.0.1:{service.port}"
    async with aiohttp.ClientSession() as http:
        before = await snapshot(http, base)
        send = {"Content-Type": "text/plain;charset=UTF-8", **headers}
        async with http.post(base + path, data=body.encode(), headers=send) as r:
            assert r.status == 403, await r.text()
            err = await r.json()
        assert set(err) == {"error", "detail"} and "origin" in err["error"]
        assert await snapshot(http, base) == before


async def test_same_origin_text_plain_write_is_refused_by_type(service: Service) -> None:
    """Without a foreign Origin, text/plain is still not a type any write accepts (415)."""
    base = f"http://127.0.0.1:{service.port}"
    async with aiohttp.ClientSession() as http:
        before = await snapshot(http, base)
        for path, body in (("/api/ont-status", BULK), ("/api/onts/import", CSV)):
            headers = {"Content-Type": "text/plain", "Origin": base}
            async with http.post(base + path, data=body.encode(), headers=headers) as r:
                assert r.status == 415, await r.text()
                err = await r.json()
            assert err["detail"]["header"] == "Content-Type"
        assert await snapshot(http, base) == before


async def test_same_origin_and_script_writes_still_work(service: Service) -> None:
    """The checks refuse only what they should: same-origin JSON, CSV and script pushes pass."""
    base = f"http://127.0.0.1:{service.port}"
    async with aiohttp.ClientSession() as http:
        headers = {"Content-Type": "text/csv", "Origin": base}
        async with http.post(base + "/api/onts/import", data=CSV.encode(), headers=headers) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["imported"] == 2
        async with http.post(
            base + "/api/ont-status",
            data=BULK.encode(),
            headers={"Content-Type": "application/json"},
        ) as r:
            assert r.status == 200, await r.text()
        # Mikrotik's /tool fetch: form-encoded, no Origin.
        async with http.post(base + "/api/ont-status/9001", data={"status": "OFF"}) as r:
            assert r.status == 200 and (await r.json())["status"] == "OFF"
