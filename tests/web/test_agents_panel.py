"""The dashboard's "Probe agents" panel: server-rendered rows and the stream's `agents` frame.

The page is rendered by aiohttp's test server on a real engine and SQLite file; the stream is
read raw from a real server on a free loopback port, as a browser's EventSource would.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Sequence
from datetime import timedelta

from aiohttp.test_utils import TestClient

from monitor.agents import AgentDesk, AgentReport, AgentStatus, SweepStats
from monitor.engine import Engine
from monitor.records import agent_json
from storage.agents import Agents
from storage.database import Database
from tests.conftest import ManualClock
from tests.i18n.language import english_in
from tests.web.test_events import Live, LiveFactory, by_event, live_factory  # noqa: F401
from tests.web.test_pages import HOSTILE, TZ, Tags, client, page, who  # noqa: F401 (fixtures)
from web.display import when
from web.events import HubConfig

FAST = HubConfig(flush_interval=0.02, heartbeat=5.0, agents_every=0.05)


class Board:
    """What engine.agents offers the read side (the desk's AgentBoard), with set statuses."""

    def __init__(self, statuses: Sequence[AgentStatus] = ()) -> None:
        self.list = list(statuses)

    def statuses(self) -> list[AgentStatus]:
        return list(self.list)

    def assigned(self) -> frozenset[str]:
        return frozenset()

    async def refresh(self) -> None:
        """Nothing to bring up to date: the assignment is fixed."""


def fleet(clock: ManualClock) -> list[AgentStatus]:
    now = clock()
    sweep = SweepStats(at=now, duration=0.84, targets=1240, replied=1240, silent=0)
    return [
        AgentStatus(
            name=HOSTILE,
            onts=1240,
            last_contact=now - timedelta(seconds=4),
            sweep=sweep,
            queue_depth=2,
        ),
        AgentStatus(
            name="POP-2",
            onts=880,
            last_contact=now - timedelta(minutes=3),
            lost=True,
            lost_since=now - timedelta(minutes=2),
        ),
        AgentStatus(name="POP-3", onts=0, revoked=True),
    ]


def rows(body: str) -> dict[str, dict[str, str | None]]:
    """The agents table's rows by agent name (attributes of each <tr>)."""
    start = body.index('<tbody id="agents-list">')
    section = body[start : body.index("</tbody>", start)]
    return {
        dict(attrs)["data-agent"] or "": dict(attrs)
        for tag, attrs in Tags.of(section)
        if tag == "tr"
    }


def panel_tag(body: str) -> dict[str, str | None]:
    return next(dict(a) for tag, a in Tags.of(body) if dict(a).get("id") == "agents-panel")


async def test_panel_hidden_without_agents(client: TestClient) -> None:  # noqa: F811
    body = await page(client, "/")
    assert "hidden" in panel_tag(body)
    assert rows(body) == {}


async def test_panel_rows_in_both_languages(
    client: TestClient,  # noqa: F811
    engine: Engine,
    clock: ManualClock,
) -> None:
    engine.agents = Board(fleet(clock))
    body = await page(client, "/", "en")
    assert "hidden" not in panel_tag(body)
    found = rows(body)
    assert list(found) == [HOSTILE, "POP-2", "POP-3"]  # the desk's (name) order
    assert found[HOSTILE]["class"] == "agent-ok" and found["POP-2"]["class"] == "agent-lost"
    assert found["POP-3"]["data-state"] == "revoked"
    assert HOSTILE not in body  # the name is escaped, never markup
    assert html.escape(HOSTILE, quote=False) in body
    text = html.unescape(body)
    assert "Probe agents" in text
    lost_since = when(clock() - timedelta(minutes=2), TZ)
    assert lost_since.endswith(" WIB")
    assert f"lost since {lost_since}" in text
    assert '<td class="contact">4 s ago</td>' in text and "3 min ago" in text
    assert '<td class="sweep">0.84 s</td>' in text and '<td class="queue">2</td>' in text
    assert '<td class="contact">never</td>' in text
    body_id = await page(client, "/", "id")
    text_id = html.unescape(body_id)
    start = text_id.index('id="agents-panel"')
    section = text_id[start : text_id.index("</section>", start)]
    assert "Agen probe" in section and f"hilang sejak {lost_since}" in section
    assert "4 dtk lalu" in section and "0,84 dtk" in section and "dicabut" in section
    shown = " ".join(part.split(">")[-1] for part in section.replace(HOSTILE, "").split("<"))
    assert english_in(shown) == []


async def test_page_texts_carry_the_agent_labels(
    client: TestClient,  # noqa: F811
) -> None:
    """dashboard.js builds rows from the frame with these labels (#page-texts)."""
    from tests.web.test_pages import json_block

    labels = json_block(await page(client, "/", "en"), "page-texts")
    assert labels["agent_lost"] == "lost since {since}" and labels["ago"] == "{dur} ago"
    for key in ("agent_ok", "agent_waiting", "agent_blind", "agent_revoked", "never", "unit_s"):
        assert labels[key]


async def test_agents_frame_when_they_change(
    live_factory: LiveFactory,  # noqa: F811
    engine: Engine,
    clock: ManualClock,
) -> None:
    board = Board()
    engine.agents = board
    live: Live = await live_factory(FAST)
    async with live.stream() as sse:
        assert (await sse.frame()).event == "hello"
        await asyncio.sleep(0.3)  # several looks: nothing configured, nothing sent
        await live.push("1", "OFF", 1)
        frames = await sse.until("stats")
        assert not by_event(frames, "agents")
        board.list = fleet(clock)
        frames = await sse.until("agents", wait=3)
        data = frames[-1].data
        assert data == {"agents": [agent_json(a) for a in board.list]}
        assert data["agents"][1]["state"] == "lost"
        assert data["agents"][0]["last_contact"] == board.list[0].last_contact.isoformat()
        # unchanged: no more agents frames; a report moves the last contact: one more
        await asyncio.sleep(0.3)
        await live.push("1", "ON", 0)
        frames = await sse.until("stats")
        assert not by_event(frames, "agents")
        clock.advance(seconds=5)
        board.list[1] = AgentStatus(name="POP-2", onts=880, last_contact=clock())
        frames = await sse.until("agents", wait=3)
        assert frames[-1].data["agents"][1]["state"] == "ok"
        assert frames[-1].data["agents"][1]["last_contact"] == clock().isoformat()


async def test_a_failing_desk_never_stops_the_stream(
    live_factory: LiveFactory,  # noqa: F811
    engine: Engine,
    clock: ManualClock,
) -> None:
    class Broken(Board):
        fail = False

        def statuses(self) -> list[AgentStatus]:
            if self.fail:
                raise RuntimeError("desk bug")
            return super().statuses()

    board = Broken()
    engine.agents = board
    live: Live = await live_factory(FAST)
    async with live.stream() as sse:
        await sse.frame()
        board.fail = True
        await asyncio.sleep(0.2)
        await live.push("2", "OFF", 1)
        assert by_event(await sse.until("stats"), "onts")
        board.fail = False
        board.list = fleet(clock)
        frames = await sse.until("agents", wait=3)
        assert len(frames[-1].data["agents"]) == 3


async def test_resume_after_a_missed_agents_frame(
    live_factory: LiveFactory,  # noqa: F811
    engine: Engine,
    clock: ManualClock,
) -> None:
    """A page that reconnects gets the `agents` frame it missed from the ring."""
    board = Board()
    engine.agents = board
    live: Live = await live_factory(FAST)
    last = live.hub.last_id
    board.list = fleet(clock)
    deadline = asyncio.get_running_loop().time() + 3
    while live.hub.last_id == last:
        assert asyncio.get_running_loop().time() < deadline, "no agents frame"
        await asyncio.sleep(0.02)
    async with live.stream(f"?last_id={last}") as sse:
        frames = await sse.until("agents")
    assert frames[0].data["resumed"] is True
    assert [a["name"] for a in frames[-1].data["agents"]] == [HOSTILE, "POP-2", "POP-3"]


async def real_desk(db: Database, engine: Engine, clock: ManualClock) -> AgentDesk:
    """The desk on the test's database, with POP-1 sweeping Baciro (sample_onts' area)."""
    table = Agents(db)
    await table.add("POP-1", ["Baciro"], [], clock())
    desk = AgentDesk(table, engine, clock, lost_after=3.0, default_interval=5.0)
    await desk.start()
    engine.agents = desk
    return desk


def sweep_report(seq: int, clock: ManualClock, ids: Sequence[str]) -> AgentReport:
    now = clock()
    sweep = SweepStats(at=now, duration=0.5, targets=len(ids), replied=len(ids), silent=0)
    obs = [(i, now, 0) for i in ids]
    return AgentReport("e1", seq, now, 5.0, "", seq == 1, sweep, 0, None, 0, obs)


async def test_panel_and_frames_of_the_real_desk(
    live_factory: LiveFactory,  # noqa: F811
    db: Database,
    engine: Engine,
    clock: ManualClock,
) -> None:
    live: Live = await live_factory(FAST)
    desk = await real_desk(db, engine, clock)
    try:
        async with live.stream() as sse:
            frames = await sse.until("agents", wait=3)  # configured: the first look sends it
            (agent,) = frames[-1].data["agents"]
            assert (agent["name"], agent["state"], agent["onts"]) == ("POP-1", "waiting", 3)
            clock.advance(seconds=1)
            await desk.report("POP-1", sweep_report(1, clock, ["1", "2", "3"]))
            (agent,) = (await sse.until("agents", wait=3))[-1].data["agents"]
            assert agent["state"] == "ok" and agent["last_contact"] == clock().isoformat()
            assert agent["sweep"]["duration"] == 0.5 and agent["reports"] == 1
            clock.advance(seconds=30)
            assert await desk.check() == ["POP-1"]
            (agent,) = (await sse.until("agents", wait=3))[-1].data["agents"]
            assert agent["state"] == "lost" and agent["lost_since"] == clock().isoformat()
            async with live.session.get(f"{live.base}/api/agents") as r:
                listed = await r.json()
            assert [a["name"] for a in listed] == ["POP-1"] and listed[0]["lost"] is True
    finally:
        await desk.stop()


async def test_panel_of_the_real_desk(
    client: TestClient,  # noqa: F811
    db: Database,
    engine: Engine,
    clock: ManualClock,
) -> None:
    desk = await real_desk(db, engine, clock)
    try:
        assert rows(await page(client, "/"))["POP-1"]["data-state"] == "waiting"
        clock.advance(seconds=1)
        await desk.report("POP-1", sweep_report(1, clock, ["1", "2", "3"]))
        clock.advance(seconds=4)
        body = await page(client, "/", "en")
        assert rows(body)["POP-1"]["class"] == "agent-ok"
        assert '<td class="onts">3</td>' in body and '<td class="contact">4 s ago</td>' in body
        clock.advance(seconds=30)
        assert await desk.check() == ["POP-1"]
        body = await page(client, "/", "en")
        assert rows(body)["POP-1"]["class"] == "agent-lost"
        assert f"lost since {when(clock(), TZ)}" in body
    finally:
        await desk.stop()
