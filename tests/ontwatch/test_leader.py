"""One leader among instances on one PostgreSQL (tests/pg.py): takeover, standby 503, fencing.

In-process: two real Services (HTTP on free loopback ports) on one database with a 1 s lease.
A crashed leader is stood in for by halting its role manager (no more renewals, no release)
while its engine still runs: that is what a frozen or cut-off leader looks like to the
database. As processes: two real `ontwatch run`, the leader frozen with SIGSTOP past its
lease, then resumed: it writes nothing and exits 75.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from ontwatch.leader import EXIT_LOST_LEASE, LEADER, STANDBY
from ontwatch.service import Service
from ontwatch.settings import load_settings
from tests.process import ROOT, free_port

TTL = 1.0
TAKEOVER_LIMIT = TTL + TTL / 3 + 1.0  # one lease plus one renewal period, plus slack
DEAD_TILES = "http://127.0.0.1:9/{z}/{x}/{y}.png"
ONT = {"id": "7", "name": "Baciro 7", "ip": "127.0.7.7", "area": "Baciro"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ONTWATCH_* or TELEGRAM_* variable of the machine leaks into these tests."""
    for key in list(os.environ):
        if key.startswith(("ONTWATCH_", "TELEGRAM_")):
            monkeypatch.delenv(key)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tile cache (./data with PostgreSQL) goes to the test's directory."""
    monkeypatch.chdir(tmp_path)


@asynccontextmanager
async def running(url: str, name: str, **more: Any) -> AsyncIterator[Service]:
    settings = load_settings(
        db=url,
        http_port=free_port(),
        probe=False,
        tile_url=DEAD_TILES,
        instance=name,
        lease_seconds=TTL,
        **more,
    )
    svc = Service(settings)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


async def wait_for(check: Callable[[], Any], within: float, step: float = 0.05) -> float:
    """Seconds until check() is true (fails after `within`)."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        if check():
            return time.monotonic() - start
        await asyncio.sleep(step)
    raise AssertionError(f"not within {within} s")


async def call(svc: Service, method: str, path: str, body: Any = None) -> tuple[int, Any, Any]:
    url = f"http://127.0.0.1:{svc.port}{path}"
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, json=body, timeout=aiohttp.ClientTimeout(total=10)) as resp,
    ):
        return resp.status, await resp.json(content_type=None), resp.headers


def role(svc: Service) -> str:
    return svc.leadership().role


def history_rows(url: str, ont_id: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM history WHERE ont_id = %s", (ont_id,)).fetchone()
        return int(row[0]) if row else 0


async def test_one_leader_and_a_standby_that_answers_writes_503(pg_url: str) -> None:
    async with running(pg_url, "a") as a:
        await wait_for(lambda: role(a) == LEADER, 5)
        async with running(pg_url, "b") as b:
            await asyncio.sleep(TTL / 2)  # b has tried the lease at least once
            assert (role(a), role(b)) == (LEADER, STANDBY)
            status, body, _ = await call(a, "POST", "/api/onts", ONT)
            assert status == 201, body
            status, body, headers = await call(
                b, "POST", "/api/ont-status/7", {"status": "OFF", "rto_count": 1}
            )
            assert status == 503
            assert headers["Retry-After"] == "2"
            assert body["leader"] == "a" and "standby" in body["error"]
            status, body, _ = await call(b, "POST", "/api/agent/report", {})
            assert status == 503 and body["leader"] == "a"
            status, body, _ = await call(b, "GET", "/api/agent/assignment")
            assert status == 503 and body["leader"] == "a"  # the agents' desk is the leader's
            # reads are served by the standby (its follower caught up with a's commit)
            await wait_for(lambda: b.engine is not None and "7" in b.engine.onts, 5)
            status, body, _ = await call(b, "GET", "/api/onts/7")
            assert status == 200 and body["name"] == "Baciro 7"
            status, health, _ = await call(b, "GET", "/healthz")
            assert status == 200, health
            assert (health["role"], health["leader"], health["epoch"]) == ("standby", "a", 1)
            status, health, _ = await call(a, "GET", "/healthz")
            assert (health["role"], health["leader"], health["instance"]) == ("leader", "a", "a")
            assert health["leader_since"]
            text_a = await metrics(a)
            text_b = await metrics(b)
            assert 'ontwatch_leader{instance="a"} 1.0' in text_a
            assert 'ontwatch_leader{instance="b"} 0.0' in text_b
            assert "ontwatch_leader_since_seconds" in text_b


async def metrics(svc: Service) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{svc.port}/metrics") as resp,
    ):
        return await resp.text()


async def test_graceful_stop_releases_and_the_standby_takes_over_at_once(pg_url: str) -> None:
    async with running(pg_url, "a") as a, running(pg_url, "b") as b:
        await wait_for(lambda: role(a) == LEADER, 5)
        await asyncio.sleep(TTL / 2)
        assert role(b) == STANDBY
        stopped = time.monotonic()
        await a.stop()
        await wait_for(lambda: role(b) == LEADER and b.engine.writer_alive(), 5)
        took = time.monotonic() - stopped
        assert took < TTL  # released: no need to wait the lease out
        status, body, _ = await call(b, "POST", "/api/onts", ONT)
        assert status == 201, body
        assert b.leadership().epoch == 2


async def test_takeover_after_the_leader_stops_renewing_and_the_old_leader_writes_nothing(
    pg_url: str,
) -> None:
    async with running(pg_url, "a") as a, running(pg_url, "b") as b:
        await wait_for(lambda: role(a) == LEADER, 5)
        status, body, _ = await call(a, "POST", "/api/onts", ONT)
        assert status == 201, body
        assert a.role is not None
        await a.role.halt()  # a is frozen or cut off: no renewals, no release
        halted = time.monotonic()
        await wait_for(lambda: role(b) == LEADER and b.engine.writer_alive(), TAKEOVER_LIMIT + 1)
        assert time.monotonic() - halted <= TAKEOVER_LIMIT
        assert "7" in b.engine.onts  # the new leader loaded the state from the database
        before = history_rows(pg_url, "7")
        # the old leader's engine still runs, but its write is refused by the fence
        status, body, _ = await call(a, "POST", "/api/ont-status/7", {"status": "OFF"})
        assert status == 503, body
        assert history_rows(pg_url, "7") == before
        assert a.lease_lost.is_set() and a.exit_code == EXIT_LOST_LEASE
        # the new leader writes
        status, body, _ = await call(b, "POST", "/api/ont-status/7", {"status": "OFF"})
        assert status == 200, body
        assert history_rows(pg_url, "7") == before + 1


async def test_telegram_is_polled_by_the_leader_only(pg_url: str) -> None:
    """One getUpdates consumer per bot: the standby's bot starts only when it takes over."""
    from tests.fakes.bot_api import FakeBotApi

    async with FakeBotApi() as fake:
        bot = {"telegram_bot_token": "1:T", "telegram_api_url": fake.url, "alert_chats": "-100"}
        async with running(pg_url, "a") as a:
            await wait_for(lambda: role(a) == LEADER, 5)
            async with running(pg_url, "b", **bot) as b:
                await asyncio.sleep(2 * TTL)
                assert role(b) == STANDBY and b.bot is None
                assert fake.requests == []  # the standby never called the Bot API
                await a.stop()
                await wait_for(lambda: role(b) == LEADER and b.bot is not None, 5)
                # polling's bootstrap (getUpdates itself is logged when its long poll ends)
                await wait_for(lambda: any(r.method == "deleteWebhook" for r in fake.requests), 10)


async def test_the_lease_is_renewed_while_the_duties_start(pg_url: str) -> None:
    """Starting the duties may take longer than the lease (a large state, the bot): the
    renewals run meanwhile, so the new leader keeps its lease and nobody else gets it."""
    from ontwatch.leader import RoleManager
    from storage.leadership import Lease

    lost: list[str] = []
    started = asyncio.Event()

    async def slow_duties(epoch: int) -> None:
        await asyncio.sleep(3 * TTL)
        started.set()

    manager = RoleManager(
        await Lease(pg_url, "a", TTL).open(), become_leader=slow_duties, on_lost=lost.append
    )
    other = await Lease(pg_url, "b", TTL).open()
    manager.start()
    try:
        await asyncio.wait_for(started.wait(), 10)
        assert lost == []
        assert await other.acquire() is None
        assert manager.leadership().role == LEADER
    finally:
        await manager.stop()
        await other.close()


async def _leading(pg_url: str, ttl: float, lost: list[str]) -> Any:
    from ontwatch.leader import RoleManager
    from storage.leadership import Lease

    led = asyncio.Event()

    async def duties(epoch: int) -> None:
        led.set()

    manager = RoleManager(
        await Lease(pg_url, "a", ttl).open(), become_leader=duties, on_lost=lost.append
    )
    manager.start()
    await asyncio.wait_for(led.wait(), 10)
    return manager


async def test_a_loop_busy_longer_than_the_lease_keeps_it(pg_url: str) -> None:
    """The renewals run on their own thread: a loop blocked for longer than the lease (a
    large bulk push being applied) does not lose it, and nobody else can take it."""
    from storage.leadership import Lease

    ttl, lost = 1.5, []
    manager = await _leading(pg_url, ttl, lost)
    other = await Lease(pg_url, "b", ttl).open()
    try:
        time.sleep(ttl * 1.6)  # noqa: ASYNC251 -- the loop busy (blocked), under HUNG_LEASES
        await asyncio.sleep(ttl / 2)  # the watcher runs again
        assert lost == [] and manager.leadership().role == LEADER
        assert await other.acquire() is None
    finally:
        await manager.stop()
        await other.close()


async def test_a_hung_loop_lets_the_lease_run_out(pg_url: str) -> None:
    """The loop silent for HUNG_LEASES leases: the renewer stops, the lease runs out, a
    standby may take it, and this manager then knows it lost it."""
    from ontwatch.leader import HUNG_LEASES
    from storage.leadership import Lease

    ttl, lost = 1.0, []
    manager = await _leading(pg_url, ttl, lost)
    other = await Lease(pg_url, "b", ttl).open()
    try:
        time.sleep((HUNG_LEASES + 1) * ttl + 0.5)  # noqa: ASYNC251 -- the loop hung
        assert await other.acquire() is not None
        await wait_for(lambda: lost != [], 5)
        assert manager.leadership().role != LEADER or manager.lost is not None
    finally:
        await manager.stop(release=False)
        await other.close()


async def test_a_stop_during_a_takeover_waits_for_its_duties_then_stops_them(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGTERM while a takeover is still starting the duties: the stop waits for them, then
    stops every one (it used to tear down under the starting duties: an AttributeError in
    the role task, and jobs started after the stop)."""
    async with running(pg_url, "a") as a, running(pg_url, "b") as b:
        await wait_for(lambda: role(a) == LEADER, 5)
        entered = asyncio.Event()
        start_desk = b._start_desk
        order: list[str] = []

        async def slow_desk() -> None:
            entered.set()
            await asyncio.sleep(1.0)
            await start_desk()
            order.append("duties started")

        monkeypatch.setattr(b, "_start_desk", slow_desk)
        await a.stop()
        await asyncio.wait_for(entered.wait(), 5)  # b's takeover is half-way
        caplog.clear()
        await b.stop()
        order.append("stopped")
        await asyncio.sleep(0.2)  # anything still starting would show now
        assert order == ["duties started", "stopped"]
        assert b.scheduler is None and b.prober is None and b.desk is None
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def _start(url: str, port: int, name: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONTWATCH_", "TELEGRAM_"))}
    env.update(
        ONTWATCH_DB=url,
        ONTWATCH_HTTP_HOST="127.0.0.1",
        ONTWATCH_HTTP_PORT=str(port),
        ONTWATCH_PROBE="off",
        ONTWATCH_INSTANCE=name,
        ONTWATCH_LEASE_SECONDS=str(TTL),
        ONTWATCH_TILE_URL=DEAD_TILES,
        PYTHONUNBUFFERED="1",
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ontwatch.cli", "run"],
            env=env,
            cwd=log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _health(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
            return dict(json.loads(resp.read()))
    except (OSError, ValueError):
        return {}


def _push(port: int, timeout: float) -> int:
    """POST one status push; the HTTP status, or 0 when no answer came."""
    data = json.dumps({"status": "OFF", "rto_count": 3}).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/ont-status/7",
        data=data,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def _wait(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {within} s")


def test_a_leader_frozen_past_its_lease_writes_nothing_after_it_resumes_and_exits_75(
    pg_url: str, tmp_path: Path
) -> None:
    """SIGSTOP longer than the lease: b takes over; a push queued at a meanwhile is refused
    when a resumes (nothing stored), and a exits with EXIT_LOST_LEASE."""
    port_a, port_b = free_port(), free_port()
    a = _start(pg_url, port_a, "a", tmp_path / "a.log")
    procs = [a]
    try:
        _wait(lambda: _health(port_a).get("role") == "leader", 30, "a leads")
        b = _start(pg_url, port_b, "b", tmp_path / "b.log")
        procs.append(b)
        _wait(lambda: _health(port_b).get("role") == "standby", 30, "b stands by")
        req = urllib.request.Request(
            f"http://127.0.0.1:{port_a}/api/onts",
            data=json.dumps(ONT).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 201
        os.kill(a.pid, signal.SIGSTOP)
        frozen = time.monotonic()
        _wait(lambda: _health(port_b).get("role") == "leader", TAKEOVER_LIMIT + 2, "b leads")
        assert time.monotonic() - frozen <= TAKEOVER_LIMIT + 1
        before = history_rows(pg_url, "7")
        # a push sent to the frozen a waits in its socket until a resumes
        with subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"from tests.ontwatch.test_leader import _push; print(_push({port_a}, 20))",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        ) as pusher:
            time.sleep(1.0)
            os.kill(a.pid, signal.SIGCONT)
            out, _ = pusher.communicate(timeout=30)
        assert out.strip() in {"503", "0"}, out  # refused, or the connection closed
        assert a.wait(20) == EXIT_LOST_LEASE
        assert history_rows(pg_url, "7") == before
        log = (tmp_path / "a.log").read_text()
        assert "lost the lease" in log
        assert _health(port_b).get("role") == "leader"
    finally:
        for proc in procs:
            if proc.poll() is None:
                with_cont(proc)
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def with_cont(proc: subprocess.Popen[bytes]) -> None:
    """A stopped process must be continued before it can act on SIGTERM."""
    with suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGCONT)


async def test_sqlite_is_always_the_leader_without_a_lease(tmp_path: Path) -> None:
    """SQLite: no lease, no standby refusal, /healthz as before; /metrics says it leads."""
    settings = load_settings(
        db=tmp_path / "ontwatch.db", http_port=free_port(), probe=False, tile_url=DEAD_TILES
    )
    svc = Service(settings)
    await svc.start()
    try:
        assert svc.role is None and role(svc) == LEADER
        status, body, _ = await call(svc, "POST", "/api/onts", ONT)
        assert status == 201, body
        status, health, _ = await call(svc, "GET", "/healthz")
        assert status == 200 and "role" not in health
        text = await metrics(svc)
        assert f'ontwatch_leader{{instance="{settings.instance_name}"}} 1.0' in text
    finally:
        await svc.stop()
    assert svc.exit_code == 0
