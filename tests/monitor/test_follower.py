"""The follower: a writer-less standby engine kept equal to a real leader's, on one SQLite file.

The leader is a real Engine writing a real database; the standby opens the same file with its
own connections (as a second process would) and follows it. The follow logic does not depend
on the backend; the PostgreSQL listen path is tested in test_follower_pg.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.engine import Engine
from monitor.feed import Commit, FeedItem
from monitor.follower import Follower
from monitor.model import Observation, Ont, Status
from monitor.ports import StaticRouter
from monitor.view import EngineView
from storage.database import Database
from storage.dialect import POSTGRESQL
from storage.follow import FollowReads, commit_listener, listen_on
from storage.store import SqliteStore
from tests.conftest import ManualClock, sample_onts


@dataclass
class Pair:
    """A leader engine and a standby following it, with what each one's feed published."""

    leader: Engine
    standby: Engine
    follower: Follower
    led: list[Commit] = field(default_factory=list)
    followed: list[Commit] = field(default_factory=list)


def _collect(into: list[Commit]) -> Callable[[FeedItem], None]:
    def take(item: FeedItem) -> None:
        if isinstance(item, Commit):
            into.append(item)

    return take


async def second_connection(db: Any) -> Any:
    """Another opened Database on the same storage, as a second instance would have."""
    if db.kind == POSTGRESQL:
        from storage.pg import PgDatabase

        return await PgDatabase(db.url).open()
    return await Database(db.path).open()


@pytest.fixture
async def pair(db: Any, clock: ManualClock) -> AsyncIterator[Pair]:
    """A leader on the db fixture's backend; a standby following it on connections of its own."""
    leader = Engine(SqliteStore(db), clock=clock, router=StaticRouter([-100]))
    await leader.start()
    standby_db = await second_connection(db)
    standby = Engine(SqliteStore(standby_db), clock=clock)
    reads = FollowReads(standby_db)
    follower = Follower(standby, reads, reads, poll_every=0.05, min_interval=0.05)
    p = Pair(leader, standby, follower)
    leader.feed.subscribe(_collect(p.led))
    standby.feed.subscribe(_collect(p.followed))
    yield p
    await follower.stop()
    await leader.stop()
    await standby_db.close()


def assert_same_view(leader: Engine, standby: Engine) -> None:
    """Everything the read side sees, and the engine's indexes, are equal."""
    a, b = EngineView(leader), EngineView(standby)
    assert b.items() == a.items()
    assert b.mutes() == a.mutes()
    assert b.outages() == a.outages()
    assert b.counts() == a.counts()
    # the leader's writer may leave an emptied area behind in an index: the same as none
    assert _nonempty(standby.area_index) == _nonempty(leader.area_index)
    assert _nonempty(standby.down_index) == _nonempty(leader.down_index)


def _nonempty(index: dict[str, Any]) -> dict[str, Any]:
    return {area: members for area, members in index.items() if members}


async def test_start_loads_the_stored_state_without_a_writer(
    pair: Pair, clock: ManualClock
) -> None:
    await pair.leader.upsert(sample_onts(4))
    await pair.leader.ingest(Observation.push("2", Status.OFF, 3, clock()))
    await pair.leader.mute("ont:3", clock() + timedelta(hours=1), "budi")
    await pair.follower.start()
    assert_same_view(pair.leader, pair.standby)
    assert not pair.standby.writer_alive()
    assert pair.follower.last_notice == max(n.id for c in pair.led for n in c.notices)
    with pytest.raises(RuntimeError, match="not started"):
        await pair.standby.ingest(Observation.push("1", Status.OFF, 0, clock()))


async def test_each_kind_of_change_is_followed_and_published(
    pair: Pair, clock: ManualClock
) -> None:
    await pair.follower.start()
    await pair.follower.stop()  # no background reloads: the test calls reload() itself
    # an ONT added
    await pair.leader.upsert(sample_onts(3))
    commit = await pair.follower.reload()
    assert commit is not None and [o.id for o, _ in commit.changed] == ["1", "2", "3"]
    assert_same_view(pair.leader, pair.standby)
    # a state changed, with a notification: the very notices the leader published
    clock.advance(seconds=5)
    await pair.leader.ingest(Observation.push("2", Status.OFF, 1, clock()))
    commit = await pair.follower.reload()
    assert commit is not None
    assert [(o.id, s.status) for o, s in commit.changed] == [("2", Status.OFF)]
    assert commit.notices == pair.led[-1].notices and commit.notices
    assert_same_view(pair.leader, pair.standby)
    # a mute (nothing else changes)
    await pair.leader.mute("area:Baciro", clock() + timedelta(hours=1), "budi")
    commit = await pair.follower.reload()
    assert commit is not None and not commit.changed and not commit.notices
    assert pair.standby.is_muted(pair.standby.onts["1"], clock())
    assert_same_view(pair.leader, pair.standby)
    # a deletion
    await pair.leader.delete("3")
    commit = await pair.follower.reload()
    assert commit is not None and commit.deleted == ("3",) and not commit.changed
    assert_same_view(pair.leader, pair.standby)
    # nothing new: nothing published
    published = len(pair.followed)
    assert await pair.follower.reload() is None
    assert len(pair.followed) == published


async def test_a_mass_outage_opens_and_ends_on_the_standby(pair: Pair, clock: ManualClock) -> None:
    await pair.leader.upsert(sample_onts(10, area="Gowok"))
    await pair.follower.start()
    await pair.follower.stop()  # no background reloads: the test calls reload() itself
    clock.advance(seconds=1)
    await pair.leader.ingest_many(
        [Observation.push(str(i), Status.OFF, 0, clock()) for i in range(1, 7)]
    )
    assert pair.leader.outages, "the leader should have opened a mass outage"
    commit = await pair.follower.reload()
    assert commit is not None and commit.areas == ("Gowok",)
    assert [n.id for n in commit.notices] == [n.id for n in pair.led[-1].notices]
    assert_same_view(pair.leader, pair.standby)
    clock.advance(seconds=30)
    await pair.leader.ingest_many(
        [Observation.push(str(i), Status.ON, 0, clock()) for i in range(1, 7)]
    )
    assert not pair.leader.outages
    commit = await pair.follower.reload()
    assert commit is not None and commit.areas == ("Gowok",)
    assert_same_view(pair.leader, pair.standby)


async def test_notifications_come_in_pages_in_order_without_repeats(
    pair: Pair, clock: ManualClock
) -> None:
    await pair.leader.upsert(sample_onts(5))
    await pair.follower.start()
    pair.follower.notice_page = 2
    for i in range(1, 6):
        clock.advance(seconds=1)
        await pair.leader.ingest(Observation.push(str(i), Status.OFF, 1, clock()))
    stored = [n.id for c in pair.led for n in c.notices]
    # the follower polls in the background (every 0.05 s): each reload takes one page
    await wait_for(lambda: pair.follower.last_notice == stored[-1])
    pages = [[n.id for n in c.notices] for c in pair.followed if c.notices]
    assert [i for page in pages for i in page] == stored and len(stored) >= 5
    assert max(len(page) for page in pages) == 2


async def wait_for(check: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait until check() holds, at most `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_polling_follows_commits_and_reloads_are_debounced(
    pair: Pair, clock: ManualClock
) -> None:
    await pair.leader.upsert(sample_onts(20))
    pair.follower.min_interval = 0.2
    await pair.follower.start()
    before = pair.follower.reloads
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(40):  # 40 commits, each announced, within about a second
        clock.advance(seconds=1)
        status = Status.OFF if i % 2 == 0 else Status.ON
        await pair.leader.ingest(Observation.push(str(i % 20 + 1), status, 0, clock()))
        pair.follower.wake()
        await asyncio.sleep(0.025)
    await wait_for(lambda: EngineView(pair.standby).items() == EngineView(pair.leader).items())
    elapsed = loop.time() - started
    reloads = pair.follower.reloads - before
    assert 1 <= reloads <= elapsed / 0.2 + 2, (reloads, elapsed)
    assert_same_view(pair.leader, pair.standby)
    stored = [n.id for c in pair.led for n in c.notices]
    assert [n.id for c in pair.followed for n in c.notices] == stored


async def test_a_failing_read_keeps_the_state_and_recovers(pair: Pair, clock: ManualClock) -> None:
    await pair.leader.upsert(sample_onts(2))
    await pair.follower.start()
    real_load = pair.follower.store.load
    failures = 0

    async def broken() -> object:
        nonlocal failures
        failures += 1
        raise OSError("disk gone")

    pair.follower.store.load = broken  # type: ignore[method-assign]
    await pair.leader.ingest(Observation.push("1", Status.OFF, 1, clock()))
    await wait_for(lambda: failures >= 2)
    assert pair.follower.failing is not None and "disk gone" in pair.follower.failing
    assert pair.standby.states["1"].status is Status.UNKNOWN  # held as it was
    pair.follower.store.load = real_load  # type: ignore[method-assign]
    await wait_for(lambda: pair.standby.states["1"].status is Status.OFF)
    assert pair.follower.failing is None and pair.follower.running()


class Listener:
    """The listen port, driven by the test: up until cut, then refused until allowed again."""

    def __init__(self) -> None:
        self.attempts = 0
        self.allowed = True
        self.wakes: list[Callable[[], None]] = []
        self._cut = asyncio.Event()

    async def __call__(self, wake: Callable[[], None]) -> None:
        self.attempts += 1
        if not self.allowed:
            raise ConnectionError("connection refused")
        self._cut.clear()
        self.wakes.append(wake)
        wake()  # LISTEN is in effect
        await self._cut.wait()

    def announce(self) -> None:
        self.wakes[-1]()

    def cut(self) -> None:
        self.allowed = False
        self._cut.set()


async def test_listen_dropping_falls_back_to_polling_then_listens_again(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "shared.db"
    leader_db = await Database(path).open()
    leader = Engine(SqliteStore(leader_db), clock=clock)
    await leader.start()
    await leader.upsert(sample_onts(3))
    standby_db = await Database(path).open()
    standby = Engine(SqliteStore(standby_db), clock=clock)
    reads = FollowReads(standby_db)
    listener = Listener()
    follower = Follower(
        standby,
        reads,
        reads,
        listener,
        poll_every=0.05,
        safety_every=60,
        retry_every=0.3,
        min_interval=0.02,
    )
    try:
        await follower.start()
        await wait_for(lambda: follower.listening)
        # Listening: a commit is seen when announced, not by polling.
        await leader.ingest(Observation.push("1", Status.OFF, 0, clock()))
        await asyncio.sleep(0.3)
        assert standby.states["1"].status is Status.UNKNOWN
        listener.announce()
        await wait_for(lambda: standby.states["1"].status is Status.OFF)
        # The connection drops and cannot be made again: polling follows the leader.
        listener.cut()
        await wait_for(lambda: not follower.listening)
        await leader.ingest(Observation.push("2", Status.OFF, 0, clock()))
        await wait_for(lambda: standby.states["2"].status is Status.OFF)
        await wait_for(lambda: listener.attempts >= 3)  # retried, refused
        assert not follower.listening
        # It comes back: listening again.
        listener.allowed = True
        await wait_for(lambda: follower.listening)
        await leader.ingest(Observation.push("3", Status.OFF, 0, clock()))
        listener.announce()
        await wait_for(lambda: standby.states["3"].status is Status.OFF)
        assert_same_view(leader, standby)
    finally:
        await follower.stop()
        await leader.stop()
        await standby_db.close()
        await leader_db.close()


async def test_promote_publishes_the_last_state_and_stops_following(
    pair: Pair, clock: ManualClock
) -> None:
    await pair.leader.upsert(sample_onts(2))
    await pair.follower.start()
    await pair.leader.ingest(Observation.push("1", Status.OFF, 0, clock()))
    await pair.follower.promote()
    assert not pair.follower.running()
    assert pair.followed and pair.followed[-1].changed[0][0].id == "1"
    assert_same_view(pair.leader, pair.standby)
    await pair.leader.stop()
    await pair.standby.start()  # the new leader's writer
    await pair.standby.upsert([Ont(id="9", area="Baciro")])
    assert pair.standby.writer_alive() and "9" in pair.standby.onts
    await pair.standby.stop()


# -- PostgreSQL: the real NOTIFY path ---------------------------------------------------------


@dataclass
class PgPair:
    leader: Engine
    standby: Engine
    follower: Follower
    admin: Any  # a superuser psycopg connection (autocommit), for the test's own statements
    listen_url: str  # the follower's listen connection logs in as a role of its own


@pytest.fixture
async def pg_pair(pg_migrated_url: str, clock: ManualClock) -> AsyncIterator[PgPair]:
    import psycopg

    from storage.pg import PgDatabase

    admin = await psycopg.AsyncConnection.connect(pg_migrated_url, autocommit=True)
    role = "listen_" + pg_migrated_url.rsplit("/", 1)[1]
    await admin.execute(f"CREATE ROLE {role} LOGIN")
    listen_url = pg_migrated_url.replace("://ontwatch@", f"://{role}@", 1)
    leader_db = await PgDatabase(pg_migrated_url).open()
    leader = Engine(SqliteStore(leader_db), clock=clock)
    await leader.start()
    await leader.upsert(sample_onts(3))
    standby_db = await PgDatabase(pg_migrated_url).open()
    standby = Engine(SqliteStore(standby_db), clock=clock)
    reads = FollowReads(standby_db)
    follower = Follower(
        standby,
        reads,
        reads,
        listen_on(listen_url),
        poll_every=0.05,
        safety_every=60,  # while listening, only a NOTIFY makes it reload
        retry_every=0.3,
        min_interval=0.02,
    )
    try:
        yield PgPair(leader, standby, follower, admin, listen_url)
    finally:
        await follower.stop()
        await leader.stop()
        await standby_db.close()
        await leader_db.close()
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
        )
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()


def flip(pair: PgPair, clock: ManualClock, ont_id: str) -> Observation:
    clock.advance(seconds=1)
    old = pair.leader.states[ont_id].status
    return Observation.push(ont_id, Status.OFF if old is not Status.OFF else Status.ON, 0, clock())


async def test_pg_the_leaders_commits_are_heard(pg_pair: PgPair, clock: ManualClock) -> None:
    p = pg_pair
    assert commit_listener(p.standby.store.db) is not None  # type: ignore[attr-defined]
    await p.follower.start()
    await wait_for(lambda: p.follower.listening)
    for ont_id in ("1", "2", "3", "1"):
        await p.leader.ingest(flip(p, clock, ont_id))
        await wait_for(lambda: EngineView(p.standby).items() == EngineView(p.leader).items())
    assert p.follower.listening
    assert_same_view(p.leader, p.standby)


async def test_pg_listen_connection_lost_polls_then_listens_again(
    pg_pair: PgPair, clock: ManualClock
) -> None:
    p = pg_pair
    role = p.listen_url.split("://", 1)[1].split("@", 1)[0]
    await p.follower.start()
    await wait_for(lambda: p.follower.listening)
    # The listen connection is killed and its role may not connect again for now.
    await p.admin.execute(f"ALTER ROLE {role} CONNECTION LIMIT 0")
    await p.admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
    )
    await wait_for(lambda: not p.follower.listening)
    await asyncio.sleep(0.7)  # at least one more refused attempt
    assert not p.follower.listening
    await p.leader.ingest(flip(p, clock, "2"))
    await wait_for(lambda: EngineView(p.standby).items() == EngineView(p.leader).items())
    # Allowed again: it listens again, and NOTIFY drives the reloads once more.
    await p.admin.execute(f"ALTER ROLE {role} CONNECTION LIMIT -1")
    await wait_for(lambda: p.follower.listening)
    await p.leader.ingest(flip(p, clock, "3"))
    await wait_for(lambda: EngineView(p.standby).items() == EngineView(p.leader).items())
    assert_same_view(p.leader, p.standby)


# -- the standby's pages and stream -----------------------------------------------------------


async def test_a_standbys_event_stream_and_reads_follow_the_leader(
    pair: Pair, clock: ManualClock
) -> None:
    """A real aiohttp app on the standby (its engine, its own connections): the leader's
    commit arrives on the standby's /api/events as on the leader's, and its JSON reads agree."""
    import aiohttp
    from aiohttp import web

    from api.app import create_app
    from storage.queries import Queries
    from tests.api.conftest import make_deps
    from tests.web.sse_client import SseReader
    from web.events import EventHub, HubConfig

    await pair.leader.upsert(sample_onts(3))
    await pair.follower.start()
    reads = Queries(pair.follower.store.db)  # type: ignore[attr-defined]
    app = create_app(make_deps(pair.standby, reads, clock, None))
    hub = EventHub(
        EngineView(pair.standby),
        reads,
        lang="en",
        config=HubConfig(flush_interval=0.02, heartbeat=5.0),
    )
    hub.install(app)
    await hub.start()
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{base}/api/events") as stream,
        ):
            sse = SseReader(stream.content)
            assert (await sse.frame()).event == "hello"
            clock.advance(seconds=5)
            await pair.leader.ingest(Observation.push("2", Status.OFF, 1, clock()))
            frames = await sse.until("notifications")
            onts = [o for f in frames if f.event == "onts" for o in f.data["onts"]]
            assert [(o["id"], o["status"]) for o in onts] == [("2", "OFF")]
            notes = [n for f in frames if f.event == "notifications" for n in f.data["items"]]
            assert [n["id"] for n in notes] == [n.id for n in pair.led[-1].notices]
            async with http.get(f"{base}/api/onts/2") as r:
                assert r.status == 200 and (await r.json())["status"] == "OFF"
    finally:
        await runner.cleanup()
        await hub.stop()
