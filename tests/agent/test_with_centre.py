"""The real agent runner against the real central Service, in one process, on loopback.

The Service (its AgentDesk, storage/agents.py, the engine) on a free 127.0.0.1 port; the
agent's token from storage Agents.add; the real Sweeper (loopback guard) sweeping
127.77.5.x; silence made real with nftables when this runs as root. The centre is stopped
for a while and started again on the same database and port: the agent's queued reports
are applied in order with the times they were observed at.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from agent.client import Backoff, CentralClient
from agent.queue import ReportQueue
from agent.runner import AgentRunner
from monitor.model import Ont, Status
from monitor.sweep import Sweeper, detect_icmp_mode
from ontwatch.service import Service, utcnow
from ontwatch.settings import load_settings
from storage.agents import Agents
from storage.database import Database
from tests.netfilter import is_loopback, missing_privileges, nft_table, silence_rule
from tests.process import free_port

NET = "127.77.5"
DEAD_TILES = "http://127.0.0.1:9/{z}/{x}/{y}.png"
_NFT = missing_privileges("nft")
pytestmark = pytest.mark.skipif(detect_icmp_mode() == "none", reason="no ICMP socket allowed")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("ONTWATCH_", "TELEGRAM_")):
            monkeypatch.delenv(key)


@asynccontextmanager
async def centre(db_path: Path, port: int) -> AsyncIterator[Service]:
    config = {"db": db_path, "http_port": port, "probe": False, "tile_url": DEAD_TILES}
    svc = Service(load_settings(**config))
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


async def until(cond: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def onts() -> list[Ont]:
    ours = [
        Ont(id=f"g{i}", name=f"Gerbang {i}", area="Gerbang", ip=f"{NET}.{i}") for i in (1, 2, 3, 4)
    ]
    return [*ours, Ont(id="x9", name="Elsewhere", area="Kota", ip=f"{NET}.99")]


async def test_agent_and_real_centre(tmp_path: Path) -> None:
    db_path, port = tmp_path / "centre.db", free_port()
    db = await Database(db_path).open()
    try:
        token = await Agents(db).add("POP-9", ["Gerbang"], [], utcnow())
    finally:
        await db.close()
    queue = await ReportQueue(tmp_path / "agent-queue.sqlite").open()
    client = CentralClient(f"http://127.0.0.1:{port}", token, timeout=3)
    sweeper = Sweeper(timeout=0.3, allowed=is_loopback)
    runner = AgentRunner(
        name="POP-9",
        interval=0.5,
        queue=queue,
        client=client,
        sweeper=sweeper,
        backoff=Backoff(base=0.1, cap=0.5),
        assignment_every=1.0,
    )
    try:
        async with centre(db_path, port) as svc:
            assert svc.engine is not None and svc.desk is not None
            await svc.engine.upsert(onts())
            await until(lambda: svc.desk.assigned() == {"g1", "g2", "g3", "g4"}, 10, "the plan")
            await runner.start()
            states = svc.engine.states
            await until(
                lambda: all(states[f"g{i}"].status is Status.ON for i in (1, 2, 3, 4)),
                10,
                "the agent's ONTs ON",
            )
            assert states["x9"].status is Status.UNKNOWN  # not the agent's: never reported
            assert runner.assignment is not None and len(runner.assignment.targets) == 4
            if _NFT is None:
                with nft_table(silence_rule(f"{NET}.2")):
                    await until(lambda: states["g2"].status is Status.OFF, 5, "g2 OFF")
                    assert states["g2"].rto_count >= 2
                await until(lambda: states["g2"].status is Status.ON, 5, "g2 back")
            assert runner.stats.refused_obs == 0 and runner.stats.bad == 0
        # The centre is gone (its port closed); the agent keeps sweeping and queueing.
        down = time.time()
        await until(lambda: runner.queue.depth >= 4, 10, "reports queued while down")
        silenced = _NFT is None
        with contextlib.ExitStack() as stack:
            if silenced:  # g3 goes silent while the centre is away
                stack.enter_context(nft_table(silence_rule(f"{NET}.3")))
            await until(lambda: runner.queue.depth >= 8, 10, "more reports queued")
            up = time.time()
            async with centre(db_path, port) as svc:
                assert svc.engine is not None and svc.reads is not None
                await until(lambda: runner.queue.depth <= 1, 15, "the backlog applied")
                assert runner.stats.bad == 0 and runner.stats.refused_obs == 0
                assert runner.stats.duplicates <= 1  # at most the one in flight at the stop
                if silenced:
                    g3 = svc.engine.states["g3"]
                    assert g3.status is Status.OFF
                    assert g3.status_since is not None and down <= g3.status_since.timestamp() < up
                    lines = [
                        h
                        for h in await svc.reads.history("g3", limit=20)
                        if h.at.timestamp() >= down
                    ]
                    times = [h.at for h in reversed(lines)]
                    assert times == sorted(times) and all(h.source == "agent" for h in lines)
                    assert any(h.status == "OFF" and h.at.timestamp() < up for h in lines)
    finally:
        await runner.stop()
        await client.close()
        await queue.close()
        sweeper.close()
