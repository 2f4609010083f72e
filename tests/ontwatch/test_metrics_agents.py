"""/metrics: per probe agent families, read from the view at scrape time."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.agents import AgentStatus, SweepStats
from monitor.engine import Engine
from monitor.model import Observation, Ont, Source, Status
from monitor.view import EngineView
from ontwatch import metrics
from storage.database import Database
from storage.store import SqliteStore
from tests.conftest import ManualClock
from tests.process import ServiceProcess, cli, free_port, service_env


class Board:
    """What engine.agents offers the read side (the desk's AgentBoard), with fixed statuses."""

    def __init__(self, statuses: Sequence[AgentStatus]) -> None:
        self.list = list(statuses)

    def statuses(self) -> list[AgentStatus]:
        return list(self.list)

    def assigned(self) -> frozenset[str]:
        return frozenset()

    async def refresh(self) -> None:
        """Nothing to bring up to date: the assignment is fixed."""


@pytest.fixture
async def engine(db: Database, clock: ManualClock) -> AsyncIterator[Engine]:
    eng = Engine(SqliteStore(db), clock=clock)
    await eng.start()
    onts = [Ont(id=str(i), name=f"ONT {i}", area="A", ip=f"127.0.3.{i}") for i in (1, 2)]
    await eng.upsert(
        onts, [Observation.push(o.id, Status.ON, 0, clock(), Source.IMPORT) for o in onts]
    )
    yield eng
    await eng.stop()


def scrape(
    engine: Engine, clock: ManualClock
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """One scrape, parsed back: (sample name, sorted labels) -> value."""
    collector = metrics.OntwatchCollector(
        EngineView(engine), engine, None, None, metrics.Scrape(0, 0.0, {}, now=clock())
    )
    body, _ = metrics.render(collector)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def one(name: str, agent: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted({"agent": agent, **labels}.items()))


async def test_no_agent_no_agent_metrics(engine: Engine, clock: ManualClock) -> None:
    samples = scrape(engine, clock)
    assert ("ontwatch_onts", (("status", "ON"),)) in samples
    assert not [k for k in samples if k[0].startswith("ontwatch_agent")]


async def test_agents_at_scrape_time(engine: Engine, clock: ManualClock) -> None:
    now = clock()
    sweep = SweepStats(at=now, duration=0.84, targets=1240, replied=1239, silent=1)
    board = Board(
        [
            AgentStatus(
                name="POP-1",
                onts=1240,
                last_contact=now - timedelta(seconds=4),
                sweep=sweep,
                queue_depth=3,
                skew_s=-2.5,
                accepted=5000,
                stale=7,
                refused=2,
                reports=40,
            ),
            AgentStatus(
                name='POP "2"',
                onts=880,
                last_contact=now - timedelta(minutes=2),
                lost=True,
                lost_since=now - timedelta(seconds=100),
            ),
            AgentStatus(name="POP-3", onts=4),  # never heard from
            AgentStatus(name="POP-4", onts=0, revoked=True, last_contact=now),
        ]
    )
    engine.agents = board
    s = scrape(engine, clock)
    assert s[one("ontwatch_agent_up", "POP-1")] == 1
    assert s[one("ontwatch_agent_up", 'POP "2"')] == 0
    assert s[one("ontwatch_agent_up", "POP-3")] == 0
    assert s[one("ontwatch_agent_state", 'POP "2"', state="lost")] == 1
    assert s[one("ontwatch_agent_state", 'POP "2"', state="ok")] == 0
    assert s[one("ontwatch_agent_state", "POP-3", state="waiting")] == 1
    assert one("ontwatch_agent_up", "POP-4") not in s  # revoked: no longer a target
    assert s[one("ontwatch_agent_state", "POP-4", state="revoked")] == 1
    assert s[one("ontwatch_agent_onts", "POP-1")] == 1240
    assert s[one("ontwatch_agent_onts", 'POP "2"')] == 880
    assert s[one("ontwatch_agent_last_contact_seconds", "POP-1")] == 4
    assert s[one("ontwatch_agent_last_contact_seconds", 'POP "2"')] == 120
    assert one("ontwatch_agent_last_contact_seconds", "POP-3") not in s
    assert s[one("ontwatch_agent_sweep_seconds", "POP-1")] == pytest.approx(0.84)
    assert s[one("ontwatch_agent_sweep_held", "POP-1")] == 0
    assert s[one("ontwatch_agent_queue_depth", "POP-1")] == 3
    assert s[one("ontwatch_agent_skew_seconds", "POP-1")] == -2.5
    assert s[one("ontwatch_agent_refused_total", "POP-1")] == 2
    assert s[one("ontwatch_agent_stale_total", "POP-1")] == 7
    assert s[one("ontwatch_agent_accepted_total", "POP-1")] == 5000
    assert s[one("ontwatch_agent_reports_total", "POP-1")] == 40
    # read at each scrape: time passes, the agent comes back
    clock.advance(seconds=10)
    board.list[1] = AgentStatus(name='POP "2"', onts=880, last_contact=clock())
    s = scrape(engine, clock)
    assert s[one("ontwatch_agent_last_contact_seconds", "POP-1")] == 14
    assert s[one("ontwatch_agent_up", 'POP "2"')] == 1
    assert s[one("ontwatch_agent_state", 'POP "2"', state="ok")] == 1


async def test_engine_stale_counter(engine: Engine, clock: ManualClock) -> None:
    """A late agent observation (older than the ONT's last) is counted, by source."""
    if not hasattr(engine, "stale"):
        pytest.fail("the engine has no stale counter")
    await engine.ingest(Observation.agent("1", 0, clock()))
    await engine.ingest(Observation.agent("1", 3, clock() - timedelta(seconds=30)))
    s = scrape(engine, clock)
    assert s[("ontwatch_stale_observations_total", (("source", Source.AGENT.value),))] == 1


async def test_metrics_of_the_real_desk(db: Database, engine: Engine, clock: ManualClock) -> None:
    """The desk on the same database: refused (a foreign ONT) and stale counted per agent."""
    from monitor.agents import AgentDesk, AgentReport
    from storage.agents import Agents

    table = Agents(db)
    await table.add("POP-1", ["A"], [], clock())
    await table.add("POP-2", [], ["127.0.99.0/24"], clock())
    desk = AgentDesk(table, engine, clock, lost_after=3.0, default_interval=5.0)
    await desk.start()
    engine.agents = desk
    try:
        now = clock.advance(seconds=5)  # after the import's observations
        sweep = SweepStats(at=now, duration=1.25, targets=2, replied=1, silent=1)
        obs = [("1", now, 0), ("2", now - timedelta(seconds=1), 1)]
        first = AgentReport("e1", 1, now, 5.0, "", True, sweep, 0, None, 0, obs)
        assert (await desk.report("POP-1", first)).accepted == 2
        late = [("1", now - timedelta(seconds=20), 3)]
        second = AgentReport("e1", 2, now, 5.0, "", False, sweep, 6, None, 0, late)
        assert (await desk.report("POP-1", second)).stale == 1
        foreign = AgentReport("e9", 1, now, 5.0, "", True, None, 0, None, 0, [("1", now, 0)])
        assert (await desk.report("POP-2", foreign)).refused == 1
        clock.advance(seconds=2)
        s = scrape(engine, clock)
        assert s[one("ontwatch_agent_up", "POP-1")] == 1
        assert s[one("ontwatch_agent_onts", "POP-1")] == 2
        assert s[one("ontwatch_agent_onts", "POP-2")] == 0
        assert s[one("ontwatch_agent_last_contact_seconds", "POP-1")] == 2
        assert s[one("ontwatch_agent_sweep_seconds", "POP-1")] == 1.25
        assert s[one("ontwatch_agent_queue_depth", "POP-1")] == 6
        assert s[one("ontwatch_agent_stale_total", "POP-1")] == 1
        assert s[one("ontwatch_agent_accepted_total", "POP-1")] == 2
        assert s[one("ontwatch_agent_reports_total", "POP-1")] == 2
        assert s[one("ontwatch_agent_refused_total", "POP-2")] == 1
        assert s[one("ontwatch_agent_refused_total", "POP-1")] == 0
        assert s[("ontwatch_stale_observations_total", (("source", "agent"),))] == 1
        clock.advance(seconds=30)
        assert "POP-1" in await desk.check()
        s = scrape(engine, clock)
        assert s[one("ontwatch_agent_up", "POP-1")] == 0
        assert s[one("ontwatch_agent_state", "POP-1", state="lost")] == 1
        assert s[("ontwatch_onts", (("status", "UNKNOWN"),))] == 2  # unobserved, not OFF
    finally:
        await desk.stop()


def test_metrics_of_the_service_process(tmp_path: Path) -> None:
    """`ontwatch run` with an agent added by the CLI: its report shows at /metrics."""
    env = service_env(tmp_path / "m.db", free_port())
    token_file = tmp_path / "agent.token"
    added = cli(
        "agents", "add", "POP-1", "--area", "Baciro", "--token-file", str(token_file), env=env
    )
    assert added.returncode == 0, added.stderr
    svc = ServiceProcess(env, log=tmp_path / "m.log")
    try:
        onts = [{"id": str(i), "area": "Baciro", "ip": f"127.0.5.{i}"} for i in (1, 2)]
        code, _ = svc.request("POST", "/api/onts", onts)
        assert code in (200, 201)
        text = scrape_text(svc)
        assert 'ontwatch_agent_up{agent="POP-1"} 0.0' in text  # never heard from
        assert 'ontwatch_agent_state{agent="POP-1",state="waiting"} 1.0' in text
        now = time.time()
        body = {
            "epoch": "m1", "seq": 1, "sent_at": now, "interval": 5.0, "assignment": "",
            "full": True, "queue": {"depth": 9, "oldest": None, "dropped": 0},
            "sweep": {"at": now, "duration": 0.25, "targets": 2, "replied": 2, "silent": 0},
            "obs": [["1", now, 0], ["2", now, 0], ["77", now, 0]],
        }  # fmt: skip
        req = urllib.request.Request(
            svc.base + "/api/agent/report", data=json.dumps(body).encode(), method="POST"
        )
        req.add_header("Content-Type", "application/json")
        req.add_header("Authorization", "Bearer " + token_file.read_text().strip())
        with urllib.request.urlopen(req, timeout=10) as r:
            assert json.loads(r.read())["refused"] == 1  # 77 is nobody's (or unknown)
        text = scrape_text(svc)
        assert 'ontwatch_agent_up{agent="POP-1"} 1.0' in text
        assert 'ontwatch_agent_onts{agent="POP-1"} 2.0' in text
        assert 'ontwatch_agent_sweep_seconds{agent="POP-1"} 0.25' in text
        assert 'ontwatch_agent_queue_depth{agent="POP-1"} 9.0' in text
        assert 'ontwatch_agent_refused_total{agent="POP-1"} 1.0' in text
        assert "ontwatch_agent_last_contact_seconds{" in text
    finally:
        svc.stop()


def scrape_text(svc: ServiceProcess) -> str:
    with urllib.request.urlopen(svc.base + "/metrics", timeout=10) as r:
        return r.read().decode()


async def test_metrics_of_the_quick_confirmation(engine: Engine, clock: ManualClock) -> None:
    """A real prober on loopback: an ONT silenced by nftables gets its second echo at once,
    counted at /metrics (the cost of confirming OFF within one round)."""
    from monitor.prober import Prober
    from monitor.sweep import Sweeper
    from tests.netfilter import is_loopback, missing_privileges, nft_table, silence_rule

    why = missing_privileges()
    if why is not None:
        pytest.skip(why)
    sweeper = Sweeper(timeout=0.3, allowed=is_loopback)  # tests probe loopback only
    try:
        prober = Prober(engine, sweeper, interval=5, clock=clock)
        await prober.sweep_once()  # ONTs 1 and 2 answer
        s = scrape_with(engine, clock, prober)
        assert s[("ontwatch_sweep_retries_total", ())] == 0
        assert s[("ontwatch_sweep_retried", ())] == 0
        with nft_table(silence_rule("127.0.3.2")):
            clock.advance(seconds=5)
            await prober.sweep_once()
        s = scrape_with(engine, clock, prober)
        # the silent ONT's second echo, and one canary: ONT 1, which just answered
        assert s[("ontwatch_sweep_retries_total", ())] == 2
        assert s[("ontwatch_sweep_retried", ())] == 1
        assert s[("ontwatch_onts", (("status", "OFF"),))] == 1  # confirmed in one round
    finally:
        sweeper.close()


def scrape_with(engine: Engine, clock: ManualClock, prober: object) -> dict[Any, float]:
    collector = metrics.OntwatchCollector(
        EngineView(engine), engine, prober, None, metrics.Scrape(0, 0.0, {}, now=clock())
    )  # type: ignore[arg-type]
    body, _ = metrics.render(collector)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
