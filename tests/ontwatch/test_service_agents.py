"""The real Service with probe agents: the desk is wired as engine.agents, its routes answer,
the CLI changes reach the running service, silence is one "agent lost", contacts survive a
restart. Everything on a free loopback port; ONT addresses in 127.0.0.0/8 (never probed:
ONTWATCH_PROBE is off, the agent here is the test itself)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitor.model import EventKind, Ont, Status
from ontwatch.service import Service, utcnow
from ontwatch.settings import SettingsError, load_settings
from storage.agents import Agents
from storage.database import Database
from tests.process import ROOT, free_port, service_env

DEAD_TILES = "http://127.0.0.1:9/{z}/{x}/{y}.png"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ONTWATCH_* or TELEGRAM_* variable of the machine leaks into these tests."""
    for key in list(os.environ):
        if key.startswith(("ONTWATCH_", "TELEGRAM_")):
            monkeypatch.delenv(key)


def inventory() -> list[Ont]:
    baciro = [
        Ont(id=str(i), name=f"Baciro {i}", area="Baciro", ip=f"127.0.1.{i}") for i in (1, 2, 3)
    ]
    return [*baciro, Ont(id="9", name="Bumijo 9", area="Bumijo", ip="127.0.9.9")]


async def add_agent(db_path: Path, name: str, areas: list[str]) -> str:
    """An agent configured before the service starts (the desk loads it at start)."""
    db = await Database(db_path).open()
    try:
        return await Agents(db).add(name, areas, [], utcnow())
    finally:
        await db.close()


@asynccontextmanager
async def running(db_path: Path, port: int, **settings: Any) -> AsyncIterator[Service]:
    config = {"db": db_path, "http_port": port, "probe": False, "tile_url": DEAD_TILES}
    svc = Service(load_settings(**config, **settings))
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


def report(seq: int, obs: list[list[Any]], *, interval: float = 5.0) -> dict[str, Any]:
    t = time.time()
    return {
        "epoch": "e1",
        "seq": seq,
        "sent_at": t,
        "interval": interval,
        "assignment": "",
        "full": seq == 1,
        "sweep": {"at": t, "duration": 0.25, "targets": 3, "replied": 3, "silent": 0},
        "queue": {"depth": 4, "oldest": None, "dropped": 0},
        "obs": obs,
    }


async def wait_for(check: Any, within: float, step: float = 0.2) -> Any:
    """Poll an async check until it gives a truthy value (bounded in time)."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(step)


async def agents_cli(port: int, db: Path, *args: str) -> tuple[int, str, str]:
    """`ontwatch agents ARGS` as a real process, while this loop keeps serving."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ontwatch.cli",
        "agents",
        *args,
        env=service_env(db, port),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_desk_is_wired_and_follows_the_cli(tmp_path: Path) -> None:
    db_path, port = tmp_path / "c.db", free_port()
    token = await add_agent(db_path, "POP-1", ["Baciro"])
    base = f"http://127.0.0.1:{port}"
    agent = {"Authorization": f"Bearer {token}"}
    async with running(db_path, port) as svc, aiohttp.ClientSession() as http:
        assert svc.engine is not None and svc.engine.agents is svc.desk is not None
        await svc.engine.upsert(inventory())

        async def listed() -> list[dict[str, Any]] | None:
            async with http.get(base + "/api/agents") as r:
                assert r.status == 200
                body = await r.json()
            return body if body and body[0]["onts"] == 3 else None

        (pop1,) = await wait_for(listed, 5)  # the plan follows the inventory's commit
        assert pop1["name"] == "POP-1" and pop1["areas"] == ["Baciro"] and not pop1["revoked"]
        assert svc.desk.assigned() == {"1", "2", "3"}  # the central prober leaves these alone

        async with http.get(base + "/api/agent/assignment", headers=agent) as r:
            assert r.status == 200
            assignment = await r.json()
        assert [t[0] for t in assignment["targets"]] == ["1", "2", "3"]
        seen = time.time() - 30  # observed half a minute ago (queued by the agent)
        body = report(1, [["1", seen, 0], ["2", seen, 0], ["3", seen, 2]])
        async with http.post(base + "/api/agent/report", json=body, headers=agent) as r:
            assert r.status == 200, await r.text()
            answer = await r.json()
        assert (answer["accepted"], answer["refused"], answer["duplicate"]) == (3, 0, False)
        state = svc.engine.states["3"]
        assert state.status is Status.OFF and abs(state.last_seen.timestamp() - seen) < 0.01

        code, out, err = await agents_cli(port, db_path)
        assert code == 0, err
        assert f"through the running service at {base}" in out
        row = next(line.split() for line in out.splitlines() if line.startswith("POP-1"))
        assert row[1] == "3" and row[-2:] == ["ok", "Baciro"] and "0.25" in row

        code, out, err = await agents_cli(port, db_path, "revoke", "POP-1")
        assert code == 0 and "revoked" in out, err

        async def refused() -> bool:
            async with http.get(base + "/api/agent/assignment", headers=agent) as r:
                return r.status == 401

        assert await wait_for(refused, 12)  # the desk reloads every 5 s; its cache lasts 5 s
        assert svc.desk.assigned() == frozenset()  # back to the central prober
        code, out, _ = await agents_cli(port, db_path, "--json")
        assert code == 0 and '"state": "revoked"' in out
    db = await Database(db_path).open()
    try:
        (row,) = await Agents(db).all()  # the desk saved the contact at stop
    finally:
        await db.close()
    assert row.config.revoked and (row.epoch, row.last_seq, row.interval) == ("e1", 1, 5.0)
    assert row.last_contact is not None


async def test_an_agent_added_while_running_is_let_in(tmp_path: Path) -> None:
    db_path, port = tmp_path / "c.db", free_port()
    async with running(db_path, port) as svc, aiohttp.ClientSession() as http:
        assert svc.engine is not None
        await svc.engine.upsert(inventory())
        token_file = tmp_path / "pop2.token"
        code, out, err = await agents_cli(
            port, db_path, "add", "POP-2", "--area", "Bumijo", "--token-file", str(token_file)
        )
        assert code == 0, err
        token = token_file.read_text().strip()
        assert token not in out and oct(token_file.stat().st_mode & 0o777) == "0o600"
        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(f"http://127.0.0.1:{port}/api/agent/assignment", headers=headers) as r:
            assert r.status == 200  # at once: an unknown token makes the desk reload
            assert (await r.json())["targets"] == [["9", "127.0.9.9"]]


async def test_silence_is_one_agent_lost_kept_over_a_restart(tmp_path: Path) -> None:
    """interval 1 s x 2 is below the 10 s floor: lost after 10 s, once, ONTs UNKNOWN not OFF."""
    db_path, port = tmp_path / "c.db", free_port()
    token = await add_agent(db_path, "POP-1", ["Baciro"])
    agent = {"Authorization": f"Bearer {token}"}
    base = f"http://127.0.0.1:{port}"
    async with running(db_path, port, agent_lost_after=2) as svc, aiohttp.ClientSession() as http:
        assert svc.engine is not None and svc.reads is not None
        await svc.engine.upsert(inventory())
        t = time.time()
        body = report(1, [["1", t, 0], ["2", t, 0], ["3", t, 0]], interval=1.0)
        async with http.post(base + "/api/agent/report", json=body, headers=agent) as r:
            assert r.status == 200, await r.text()
        started = time.monotonic()

        async def lost() -> list[Any]:
            return await svc.reads.notifications(kind=EventKind.AGENT_LOST.value)

        (alert,) = await wait_for(lost, 20, step=0.5)
        assert 9.5 <= time.monotonic() - started <= 18  # never before the 10 s floor
        assert {svc.engine.states[i].status for i in ("1", "2", "3")} == {Status.UNKNOWN}
        assert svc.engine.states["9"].status is not Status.OFF
        await asyncio.sleep(2.5)  # more checks: no second alert
        assert len(await lost()) == 1 and alert.severity == "critical"
    async with running(db_path, port, agent_lost_after=2) as svc, aiohttp.ClientSession() as http:
        assert svc.reads is not None
        async with http.get(base + "/api/agents") as r:
            (pop1,) = await r.json()
        assert pop1["lost"] and pop1["lost_since"] is not None  # kept by the database
        await asyncio.sleep(1.5)
        assert len(await svc.reads.notifications(kind=EventKind.AGENT_LOST.value)) == 1
        t = time.time()
        body = report(2, [["1", t, 0], ["2", t, 0], ["3", t, 0]], interval=1.0)
        async with http.post(base + "/api/agent/report", json=body, headers=agent) as r:
            assert r.status == 200 and (await r.json())["want_full"] is True
        back = await svc.reads.notifications(kind=EventKind.AGENT_BACK.value)
        assert len(back) == 1


@pytest.mark.parametrize("value", ["1", "0.5", "101", "many"])
def test_lost_after_out_of_range_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("ONTWATCH_AGENT_LOST_AFTER", value)
    with pytest.raises(SettingsError, match="ONTWATCH_AGENT_LOST_AFTER"):
        load_settings()


def test_lost_after_default_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().agent_lost_after == 3.0
    monkeypatch.setenv("ONTWATCH_AGENT_LOST_AFTER", "4.5")
    assert load_settings().agent_lost_after == 4.5
