"""kill -9 of the service during a load of pushes: every acknowledged push survives."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.harness import ServiceProcess, figure, request
from tests.process import free_port, service_env

pytestmark = [pytest.mark.e2e]
ONTS = 200
WORKERS = 40  # concurrent connections; each owns ONTS / WORKERS ONTs, so per-ONT order is known
TOTAL = 20_000
BUDGET_S = 60.0  # bounds the load; the kill comes at KILL_AFTER_ACKED, however slow the machine
KILL_AFTER_ACKED = 12_000


async def load(svc: ServiceProcess, acked: dict[str, int], counts: dict[str, int]) -> None:
    """Push rto_count = 1, 2, 3, ... per ONT until TOTAL, the budget, or the server dies."""
    deadline = time.monotonic() + BUDGET_S
    killed = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=WORKERS)
    timeout = aiohttp.ClientTimeout(total=10)

    async def worker(session: aiohttp.ClientSession, mine: list[str]) -> None:
        seq = {i: 0 for i in mine}
        n = 0
        while counts["sent"] < TOTAL and time.monotonic() < deadline and not killed.is_set():
            ont = mine[n % len(mine)]
            n += 1
            seq[ont] += 1
            counts["sent"] += 1
            body = {"status": "OFF", "rto_count": seq[ont]}
            try:
                async with session.post(f"{svc.base}/api/ont-status/{ont}", json=body) as resp:
                    payload = await resp.json()
            except (aiohttp.ClientError, TimeoutError):
                counts["errors"] += 1
                killed.set()
                return
            if resp.status != 200:
                counts["non200"] += 1
                continue
            assert payload["id"] == ont and payload["rto_count"] == seq[ont]
            acked[ont] = seq[ont]
            counts["acked"] += 1
            if counts["acked"] == KILL_AFTER_ACKED:
                svc.proc.send_signal(signal.SIGKILL)  # mid-load: other pushes are in flight

    ids = [str(i) for i in range(1, ONTS + 1)]
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session, ids[w::WORKERS]) for w in range(WORKERS)))


def test_kill9_mid_load_loses_no_acknowledged_push(tmp_path: Path) -> None:
    """SIGKILL after 12,000 acknowledged pushes of a 20,000-push load; restart; all are there."""
    db = tmp_path / "ontwatch.db"
    env = service_env(db, free_port(), ONTWATCH_LOG_LEVEL="WARNING")
    log = tmp_path / "service.log"
    svc = ServiceProcess(env, log=log)
    onts = [
        {"id": str(i), "name": f"Load {i}", "area": f"A{i % 50}", "ip": ""}
        for i in range(1, ONTS + 1)
    ]
    assert request(svc.base, "POST", "/api/onts", onts)[0] in (200, 201)
    acked: dict[str, int] = {}
    counts = {"sent": 0, "acked": 0, "errors": 0, "non200": 0}
    started = time.monotonic()
    asyncio.run(load(svc, acked, counts))
    elapsed = time.monotonic() - started
    svc.proc.wait(10)
    assert svc.proc.returncode == -signal.SIGKILL, "the service was not killed mid-load"

    svc = ServiceProcess(env, log=log)
    try:
        _, listed = request(svc.base, "GET", "/api/onts")
        state = {o["id"]: o["rto_count"] for o in listed}
        uri = f"file:{db}?mode=ro"
        with sqlite3.connect(uri, uri=True) as conn:
            history = set(
                conn.execute("SELECT ont_id, rto_count FROM history WHERE source = 'push'")
            )
        lost_state = [i for i, rto in acked.items() if state.get(i, -1) < rto]
        lost_history = [
            (i, n) for i, last in acked.items() for n in range(1, last + 1) if (i, n) not in history
        ]
        ahead = sum(state[i] - acked.get(i, 0) for i in state if state[i] > acked.get(i, 0))
        lost = len(lost_state) + len(lost_history)
        print(f"lost acknowledged pushes: {lost}")
        figure(
            "FAULT kill9",
            sent=counts["sent"],
            acknowledged=counts["acked"],
            in_flight_stored=ahead,
            client_errors=counts["errors"],
            seconds=f"{elapsed:.1f}",
            lost=lost,
        )
        assert counts["acked"] >= KILL_AFTER_ACKED and counts["non200"] == 0
        assert lost == 0, (lost_state[:5], lost_history[:5])
        assert ahead <= WORKERS  # at most one in-flight push per connection was also stored
    finally:
        svc.stop()
