"""What access control costs a request: open demo vs bearer token vs session cookie.

Runs the real service in this process on a free loopback port and sends the same bounded
number of sequential GET /api/stats and POST /api/ont-status/{id} requests per mode; prints
requests/s and p50/p99 latency. Also times one login (scrypt).

    .venv/bin/python -m bench.auth_bench [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.web.access_service import ADMIN_TOKEN, PASSWORD, base, running, session

MAX_SECONDS = 60.0  # per mode, whatever --requests says


async def measure(http: aiohttp.ClientSession, url: str, method: str, body: Any, n: int) -> str:
    times = []
    deadline = time.monotonic() + MAX_SECONDS
    for i in range(n):
        if time.monotonic() > deadline:
            break
        t0 = time.perf_counter()
        payload = {"status": "OFF" if i % 2 else "ON", "rto_count": i % 2} if body else None
        async with http.request(method, url, json=payload) as r:
            await r.read()
            assert r.status == 200, r.status
        times.append(time.perf_counter() - t0)
    total = sum(times)
    q = statistics.quantiles(times, n=100)
    return (
        f"{len(times) / total:7.0f} req/s  p50 {q[49] * 1000:5.2f} ms  p99 {q[98] * 1000:5.2f} ms"
    )


async def run(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        modes = [
            ("open demo (no credentials)", {}, "none"),
            (
                "login required, admin token",
                {"login_required": True, "api_token": ADMIN_TOKEN},
                "token",
            ),
            ("login required, session cookie", {"login_required": True}, "session"),
        ]
        for i, (label, settings, how) in enumerate(modes):
            (root / str(i)).mkdir()
            async with running(root / str(i), **settings) as svc:
                headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"} if how == "token" else {}
                async with session(headers=headers) as http:
                    if how == "session":
                        t0 = time.perf_counter()
                        async with http.post(
                            base(svc) + "/login", json={"username": "admin", "password": PASSWORD}
                        ) as r:
                            assert r.status == 200
                        print(
                            f"one login (scrypt n=2**14): {(time.perf_counter() - t0) * 1000:.0f} ms"
                        )
                    read = await measure(http, base(svc) + "/api/stats", "GET", None, n)
                    push = await measure(http, base(svc) + "/api/ont-status/1", "POST", True, n)
                print(f"{label:32} GET /api/stats   {read}")
                print(f"{'':32} POST ont-status  {push}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=2000)
    asyncio.run(run(max(100, min(p.parse_args().requests, 20_000))))


if __name__ == "__main__":
    main()
