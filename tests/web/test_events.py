"""GET /api/events on a real aiohttp server (free loopback port), a real engine and SQLite file.

Clients read the raw stream (tests/web/sse_client.py), as a browser's EventSource would.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from api.app import create_app
from monitor.engine import Engine
from monitor.feed import Commit
from monitor.model import Ont, OntState
from monitor.view import EngineView
from storage.queries import Queries
from tests.api.conftest import make_deps
from tests.conftest import ManualClock, sample_onts
from tests.web.sse_client import SseFrame, SseReader
from web.events import NOTICES_PER_FLUSH, EventHub, HubConfig
from web.frames import Frame, Ring

FAST = HubConfig(flush_interval=0.02, heartbeat=5.0)


@dataclass
class Live:
    """A running service: base URL, hub, engine and an HTTP session."""

    base: str
    hub: EventHub
    engine: Engine
    reads: Queries
    session: aiohttp.ClientSession

    @asynccontextmanager
    async def stream(self, query: str = "", **headers: str) -> AsyncIterator[SseReader]:
        """An open event stream; its reader."""
        async with self.session.get(f"{self.base}/api/events{query}", headers=headers) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/event-stream")
            yield SseReader(r.content)

    async def push(self, ont_id: str, status: str, rto: int = 0) -> dict[str, Any]:
        url = f"{self.base}/api/ont-status/{ont_id}"
        async with self.session.post(url, json={"status": status, "rto_count": rto}) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def bulk(self, updates: list[dict[str, Any]]) -> dict[str, Any]:
        async with self.session.post(f"{self.base}/api/ont-status", json=updates) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def get(self, path: str) -> Any:
        async with self.session.get(f"{self.base}{path}") as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def post(self, path: str) -> Any:
        async with self.session.post(f"{self.base}{path}") as r:
            assert r.status == 200, await r.text()
            return await r.json()


LiveFactory = Callable[..., Awaitable[Live]]


@pytest.fixture
async def live_factory(
    engine: Engine, reads: Queries, clock: ManualClock
) -> AsyncIterator[LiveFactory]:
    runners: list[tuple[web.AppRunner, EventHub, aiohttp.ClientSession]] = []

    async def make(config: HubConfig = FAST, onts: int = 3) -> Live:
        await engine.upsert(sample_onts(onts))
        app = create_app(make_deps(engine, reads, clock, None))
        hub = EventHub(EngineView(engine), reads, lang="id", config=config)
        hub.install(app)
        await hub.start()
        runner = web.AppRunner(app, shutdown_timeout=2)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        runners.append((runner, hub, session))
        return Live(f"http://127.0.0.1:{port}", hub, engine, reads, session)

    yield make
    for runner, hub, session in runners:
        await session.close()
        await runner.cleanup()
        await hub.stop()


@pytest.fixture
async def live(live_factory: LiveFactory) -> Live:
    return await live_factory()


def by_event(frames: list[SseFrame], event: str) -> list[SseFrame]:
    return [f for f in frames if f.event == event]


# -- the ring ---------------------------------------------------------------------------


def _ring(n: int, max_frames: int = 4, max_bytes: int = 10**6, start: int = 100) -> Ring:
    ring = Ring(max_frames, max_bytes, start)
    for i in range(n):
        ring.append(Frame(start + 1 + i, "stats", {"n": i}, "id"))
    return ring


@pytest.mark.parametrize(
    ("n", "last_id", "want"),
    [
        (0, 100, []),  # nothing happened since
        (0, 99, None),  # before the ring, which is empty
        (3, 100, [101, 102, 103]),  # everything
        (3, 102, [103]),
        (3, 103, []),
        (3, 104, None),  # never given out (e.g. before a restart)
        (6, 101, None),  # 102 was forgotten (the ring keeps 4)
        (6, 102, [103, 104, 105, 106]),  # exactly the ring
        (6, -1, None),  # a malformed Last-Event-ID
    ],
)
def test_ring_after(n: int, last_id: int, want: list[int] | None) -> None:
    got = _ring(n).after(last_id)
    assert (None if got is None else [f.id for f in got]) == want


def test_ring_bounded_by_bytes() -> None:
    one = Frame(101, "stats", {"n": 0}, "id").size
    ring = _ring(10, max_frames=100, max_bytes=3 * one)
    assert len(ring.frames) == 3 and ring.bytes <= 3 * one
    assert ring.after(ring.last_id - 3) is not None and ring.after(ring.last_id - 4) is None


def test_ring_refuses_a_gap_in_ids() -> None:
    ring = _ring(2)
    with pytest.raises(ValueError):
        ring.append(Frame(ring.last_id + 2, "stats", {}, "id"))


# -- the stream -------------------------------------------------------------------------


async def test_hello_first_then_frames_after_a_push(live: Live) -> None:
    async with live.stream() as sse:
        hello = await sse.frame()
        assert hello.event == "hello" and hello.retry == 2000
        assert hello.data == {"resumed": False, "last_id": live.hub.last_id}
        await live.push("2", "OFF", 1)
        frames = await sse.until("stats")
        api_onts = {o["id"]: o for o in await live.get("/api/onts")}
        onts = by_event(frames, "onts")
        assert [o["id"] for f in onts for o in f.data["onts"]] == ["2"]
        assert onts[0].data["onts"][0] == api_onts["2"]  # the API's shape, the same values
        notes = by_event(frames, "notifications")[0].data["items"]
        api_notes = await live.get("/api/notifications")
        assert [n["id"] for n in notes] == [n["id"] for n in reversed(api_notes)]
        for got, want in zip(notes, reversed(api_notes), strict=True):
            assert {k: v for k, v in got.items() if k != "text"} == want
            assert got["text"] and "2" in got["text"]
        ids = [f.id for f in frames]
        assert ids == sorted(ids) and len(set(ids)) == len(ids) and ids[0] > hello.id


async def test_stats_follow_the_counts(live: Live) -> None:
    async with live.stream() as sse:
        await sse.frame()
        await live.push("1", "OFF", 3)
        stats = (await sse.until("stats"))[-1].data
        api = await live.get("/api/stats")
        for key in ("total", "online", "offline", "unknown", "unread", "by_severity"):
            assert stats[key] == api[key], key
        assert stats["offline"] == 1 and stats["by_severity"]["critical"] == 1
        await live.push("1", "ON", 0)
        stats = (await sse.until("stats"))[-1].data
        assert stats["offline"] == 0 and stats["unread"] == (await live.get("/api/stats"))["unread"]


async def test_stats_list_open_mass_outages(live_factory: LiveFactory) -> None:
    live = await live_factory(onts=12)
    async with live.stream() as sse:
        await sse.frame()
        await live.bulk([{"id": str(i), "status": "OFF", "rto_count": 0} for i in range(1, 13)])
        stats = None
        while not (stats and stats["outages"]):
            stats = (await sse.until("stats"))[-1].data
        outage = live.hub.view.outages()[0]
        assert stats["outages"] == [
            {
                "area": "Baciro",
                "count": len(outage.members),
                "started_at": outage.started_at.isoformat(),
                "acked": False,
            }
        ]


async def test_texts_in_the_stream_language(live: Live) -> None:
    async with live.stream("?lang=en") as en, live.stream("?lang=id") as id_:
        await en.frame(), await id_.frame()
        await live.push("3", "OFF", 0)
        en_note = by_event(await en.until("notifications"), "notifications")[0]
        id_note = by_event(await id_.until("notifications"), "notifications")[0]
        assert en_note.id == id_note.id
        assert en_note.data["items"][0]["text"] != id_note.data["items"][0]["text"]


async def test_bad_query_is_a_400_naming_it(live: Live) -> None:
    for query, name in (("?lang=fr", "lang"), ("?last_id=abc", "last_id")):
        async with live.session.get(f"{live.base}/api/events{query}") as r:
            assert r.status == 400
            assert name in (await r.json())["error"]


async def test_resume_gives_exactly_the_missed_frames(live: Live) -> None:
    async with live.stream() as watcher:
        await watcher.frame()
        async with live.stream() as leaving:
            seen = await leaving.frame()
            await live.push("1", "OFF", 0)
            first = await leaving.until("stats")
            last_seen = first[-1].id
        # the second client is gone; more happens
        await live.push("2", "OFF", 1)
        await live.push("1", "ON", 0)
        await live.push("3", "OFF", 3)
        await asyncio.sleep(0.3)  # every flush done
        everything = [await watcher.frame()]
        while everything[-1].id != live.hub.last_id:
            everything.append(await watcher.frame())
    assert seen.id < last_seen
    missed = [f for f in everything if f.id > last_seen]
    async with live.stream(**{"Last-Event-ID": str(last_seen)}) as back:
        hello = await back.frame()
        assert hello.event == "hello" and hello.data == {"resumed": True, "last_id": last_seen}
        resumed = [await back.frame() for _ in missed]
    assert [(f.id, f.event, f.data) for f in resumed] == [(f.id, f.event, f.data) for f in missed]
    assert missed and {f.event for f in missed} >= {"onts", "notifications", "stats"}


async def test_resume_from_last_id_query(live: Live) -> None:
    start = live.hub.last_id
    await live.push("1", "OFF", 0)
    await asyncio.sleep(0.2)
    async with live.stream(f"?last_id={start}") as sse:
        frames = await sse.until("stats")
    assert frames[0].data == {"resumed": True, "last_id": start}
    assert by_event(frames, "onts")[0].data["onts"][0]["id"] == "1"


async def test_too_old_or_unknown_id_gets_reload(live_factory: LiveFactory) -> None:
    live = await live_factory(HubConfig(flush_interval=0.0, ring_frames=3))
    old = live.hub.last_id
    for status in ("OFF", "ON", "OFF", "ON"):
        await live.push("1", status, 0)
        await asyncio.sleep(0.05)
    assert live.hub.last_id - old > 3
    for given in (str(old), str(live.hub.last_id + 5), "garbage"):
        async with live.stream(**{"Last-Event-ID": given}) as sse:
            hello, reload = await sse.frame(), await sse.frame()
        assert hello.event == "hello" and hello.data["resumed"] is False, given
        assert reload.event == "reload" and reload.data == {"reason": "gap"}, given
        assert reload.id == live.hub.last_id  # resuming from here misses nothing


async def test_bulk_outage_of_5000_arrives_in_a_few_frames(live_factory: LiveFactory) -> None:
    live = await live_factory(onts=5000)
    before = (await live.get("/api/notifications?limit=1") or [{"id": 0}])[0]["id"]
    async with live.stream() as sse:
        await sse.frame()
        answer = await live.bulk(
            [{"id": str(i), "status": "OFF", "rto_count": 0} for i in range(1, 5001)]
        )
        assert answer["applied"] == 5000
        seen: dict[str, dict[str, Any]] = {}
        onts_frames = 0
        notes: list[dict[str, Any]] = []
        more = 0
        while len(seen) < 5000 or not any(n["kind"] == "mass_outage" for n in notes):
            frame = await sse.frame(wait=20)
            if frame.event == "onts":
                onts_frames += 1
                seen.update({o["id"]: o for o in frame.data["onts"]})
            elif frame.event == "notifications":
                notes += frame.data["items"]
                more += frame.data["more"]
    assert all(o["status"] == "OFF" for o in seen.values())
    assert onts_frames <= 6, onts_frames
    # 5,000 folded member notices and one outage message: the told one is sent in full, the
    # folded ones only up to the flush's cap, the rest counted.
    stored = await live.get("/api/notifications?limit=1")
    assert len(notes) <= 2 * NOTICES_PER_FLUSH and more > 0
    assert len(notes) + more == stored[0]["id"] - before, (len(notes), more)
    assert [n["id"] for n in notes] == sorted(n["id"] for n in notes)


async def test_changes_to_one_ont_are_coalesced(live_factory: LiveFactory) -> None:
    live = await live_factory(HubConfig(flush_interval=0.5))
    async with live.stream() as sse:
        await sse.frame()
        for status in ("OFF", "ON", "OFF", "ON", "OFF"):
            await live.push("1", status, 2)
        await asyncio.sleep(1.2)  # every flush done
        frames = [await sse.frame()]
        while frames[-1].id != live.hub.last_id:
            frames.append(await sse.frame())
    onts = [o for f in by_event(frames, "onts") for o in f.data["onts"]]
    assert len(onts) < 5  # five pushes, fewer frames: merged by id within a flush
    assert onts[-1]["status"] == "OFF" and onts[-1]["rto_count"] == 2


async def test_heartbeats(live_factory: LiveFactory) -> None:
    live = await live_factory(HubConfig(flush_interval=0.02, heartbeat=0.1))
    async with live.stream() as sse:
        assert (await sse.block()).event == "hello"
        pings = [await sse.block(wait=2) for _ in range(3)]
    assert all(p.comments == ["ping"] and p.id is None for p in pings)


async def test_read_marks_and_unread_counts(live: Live) -> None:
    async with live.stream() as sse:
        await sse.frame()
        await live.push("1", "OFF", 0)
        await live.push("2", "OFF", 0)
        await sse.until("stats")
        notes = await live.get("/api/notifications")
        assert len(notes) >= 2
        answer = await live.post(f"/api/notifications/mark-read/{notes[0]['id']}")
        assert answer == {"marked": 1}
        read = by_event(await sse.until("read"), "read")[0].data
        assert read == {"ids": [notes[0]["id"]], "unread": len(notes) - 1}
        assert (await live.get("/api/stats"))["unread"] == len(notes) - 1
        await live.post("/api/notifications/mark-read")
        read = by_event(await sse.until("read"), "read")[0].data
        assert read == {"ids": None, "unread": 0}
        # marking again changes nothing: no frame
        assert await live.post("/api/notifications/mark-read") == {"marked": 0}


async def test_unread_count_stays_right_under_concurrent_commits_and_marks(
    live_factory: LiveFactory,
) -> None:
    live = await live_factory(HubConfig(flush_interval=0.01), onts=20)

    async def pushes() -> None:
        for round_ in range(6):
            status = "OFF" if round_ % 2 == 0 else "ON"
            await asyncio.gather(*(live.push(str(i), status, 0) for i in range(1, 21)))

    async def marks() -> None:
        for _ in range(15):
            await live.post("/api/notifications/mark-read")
            await asyncio.sleep(0.005)

    async with live.stream() as sse:
        await sse.frame()
        await asyncio.gather(pushes(), marks())
        await asyncio.gather(*(live.push(str(i), "OFF", 1) for i in range(1, 21)))
        await asyncio.sleep(0.2)
        truth = await live.reads.unread_count()
        assert truth > 0
        last_unread = None
        while last_unread != truth:
            frame = await sse.frame(wait=3)
            if frame.event in ("stats", "read"):
                last_unread = frame.data["unread"]
    assert live.hub.unread == truth


async def test_a_client_that_never_reads_is_dropped(live_factory: LiveFactory) -> None:
    live = await live_factory(HubConfig(flush_interval=0.0, queue_bursts=16), onts=300)
    host, port = live.base.removeprefix("http://").split(":")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((host, int(port)))
    raw.sendall(f"GET /api/events HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    try:
        async with live.stream() as reader:
            await reader.frame()
            for _ in range(500):  # until the raw client is attached
                if len(live.hub.clients) == 2:
                    break
                await asyncio.sleep(0.01)
            rounds = 0
            while live.hub.dropped == 0 and rounds < 100:
                status = "OFF" if rounds % 2 == 0 else "ON"
                answer = await asyncio.wait_for(
                    live.bulk([{"id": str(i), "status": status} for i in range(1, 301)]), 5
                )
                assert answer["applied"] == 300  # the push path keeps answering
                onts = 0
                while onts < 300:  # the reading client keeps getting everything
                    frame = await reader.frame()
                    onts += len(frame.data["onts"]) if frame.event == "onts" else 0
                rounds += 1
            assert live.hub.dropped == 1, rounds
            assert len(live.hub.clients) == 1
            await live.push("1", "OFF", 2)
            frames = await reader.until("onts")
            assert frames[-1].data["onts"][0]["rto_count"] == 2
    finally:
        raw.close()


async def test_streams_end_when_the_hub_stops(live: Live) -> None:
    async with live.stream() as sse:
        await sse.frame()
        await live.hub.stop()
        with pytest.raises(EOFError):
            await sse.frame(wait=3)
    assert not live.hub.clients


def _pairs(engine: Engine, ids: list[str]) -> list[tuple[Ont, OntState]]:
    return [p for i in ids if (p := engine.get(i)) is not None]


async def test_feed_callback_only_queues(live: Live) -> None:
    # the callback returns at once, even with thousands of items and nothing flushed yet
    loop = asyncio.get_running_loop()
    before = loop.time()
    pairs = _pairs(live.engine, ["1", "2", "3"])
    for seq in range(5000):
        live.hub._on_item(Commit(seq=seq, at=live.engine.clock(), changed=tuple(pairs)))
    assert loop.time() - before < 1.0
    async with live.stream(f"?last_id={live.hub.last_id}") as sse:
        frames = await sse.until("onts")
    assert len(frames[-1].data["onts"]) == 3  # 5,000 commits of the same ONTs: one frame


async def test_the_stream_is_in_the_openapi_document(live: Live) -> None:
    spec = await live.get("/api/openapi.json")
    op = spec["paths"]["/api/events"]["get"]
    assert op["summary"] != "/api/events"
    schema = op["responses"]["200"]["content"]["text/event-stream"]["schema"]
    events = set(schema["properties"]["event"]["enum"])
    async with live.stream() as sse:
        frames = [await sse.frame()]
        await live.push("2", "OFF", 1)
        frames += await sse.until("stats")
    for frame in frames:  # what the document promises of each event, on real frames
        assert frame.event in events and str(frame.id).isdigit(), frame
        assert isinstance(frame.data, dict)
    assert {f.event for f in frames} >= {"hello", "onts", "notifications", "stats"}


def test_the_service_serves_the_stream_and_stops_with_it_open(tmp_path: Path) -> None:
    import time

    from tests.process import ServiceProcess, free_port, service_env

    svc = ServiceProcess(service_env(tmp_path / "db.sqlite", free_port()), log=tmp_path / "log")
    try:
        raw = socket.create_connection(("127.0.0.1", svc.port), timeout=5)
        raw.sendall(b"GET /api/events?lang=en HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = b""
        while b"event: hello" not in head:
            head += raw.recv(4096)
        assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head
        started = time.monotonic()
        assert svc.stop() == 0
        assert time.monotonic() - started < 10  # the open stream does not hold the shutdown
        raw.close()
    finally:
        svc.stop()
