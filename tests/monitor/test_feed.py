"""The commit feed: what a real engine publishes after each durable commit, and fan-out rules."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor import marks
from monitor.engine import Engine
from monitor.feed import Commit, Feed, FeedItem, ReadMark
from monitor.model import Observation, Status
from storage.queries import Queries
from tests.conftest import ManualClock, sample_onts


@pytest.fixture
async def heard(engine: Engine) -> list[FeedItem]:
    items: list[FeedItem] = []
    engine.feed.subscribe(items.append)
    await engine.upsert(sample_onts(3))
    items.clear()
    return items


async def test_a_push_publishes_its_state_and_stored_notice(
    engine: Engine, reads: Queries, clock: ManualClock, heard: list[FeedItem]
) -> None:
    await engine.ingest(Observation.push("2", Status.OFF, 1, clock.now))
    (commit,) = heard
    assert isinstance(commit, Commit)
    assert [(o.id, s.status, s.rto_count) for o, s in commit.changed] == [("2", Status.OFF, 1)]
    stored = await reads.notifications()
    assert [n.id for n in commit.notices] == [n.id for n in stored]  # the stored ids
    assert commit.notices[0].ont is not None and commit.notices[0].ont.id == "2"
    assert commit.events == [(n.event, n.ont) for n in commit.notices]


async def test_sequence_numbers_grow(
    engine: Engine, clock: ManualClock, heard: list[FeedItem]
) -> None:
    for status in ("OFF", "ON", "OFF"):
        await engine.ingest(Observation.push("1", Status(status), 0, clock.advance(seconds=1)))
    seqs = [c.seq for c in heard if isinstance(c, Commit)]
    assert len(seqs) == 3 and seqs == sorted(seqs) and len(set(seqs)) == 3
    assert engine.feed.seq == seqs[-1]


async def test_delete_and_nothing_changed(
    engine: Engine, clock: ManualClock, heard: list[FeedItem]
) -> None:
    await engine.delete("3")
    (commit,) = heard
    assert isinstance(commit, Commit) and commit.deleted == ("3",) and not commit.changed
    heard.clear()
    await engine.ack("1", "nobody")  # nothing to acknowledge: no commit, nothing published
    assert heard == []


async def test_mass_outage_names_its_area(engine: Engine, clock: ManualClock) -> None:
    items: list[FeedItem] = []
    engine.feed.subscribe(items.append)
    await engine.upsert(sample_onts(12, area="Gedong"))
    await engine.ingest_many(
        [Observation.push(str(i), Status.OFF, 0, clock.now) for i in range(1, 13)]
    )
    assert any(isinstance(c, Commit) and "Gedong" in c.areas for c in items)


async def test_mark_read_publishes_after_the_write(
    engine: Engine, reads: Queries, clock: ManualClock, heard: list[FeedItem]
) -> None:
    await engine.ingest(Observation.push("1", Status.OFF, 0, clock.now))
    await engine.ingest(Observation.push("2", Status.OFF, 0, clock.now))
    ids = [n.id for n in await reads.notifications()]
    heard.clear()
    assert await marks.mark_read(reads, engine.feed, clock.now, ids[0]) == 1
    (mark,) = heard
    assert mark == ReadMark(at=clock.now, ids=(ids[0],), count=1)
    assert await reads.unread_count() == len(ids) - 1  # written before it was told
    assert await marks.mark_read(reads, engine.feed, clock.now, ids[0]) == 0
    assert len(heard) == 1  # nothing changed: nothing published
    assert await marks.mark_read(reads, engine.feed, clock.now + timedelta(seconds=1)) == 1
    assert heard[-1] == ReadMark(at=clock.now + timedelta(seconds=1), ids=None, count=1)


def test_a_failing_subscriber_does_not_stop_the_others() -> None:
    feed = Feed()
    got: list[FeedItem] = []

    def broken(item: FeedItem) -> None:
        raise RuntimeError("boom")

    feed.subscribe(broken)
    feed.subscribe(got.append)
    mark = ReadMark(at=ManualClock().now)
    feed.publish(mark)
    assert got == [mark]


def test_unsubscribe_stops_delivery() -> None:
    feed = Feed()
    got: list[FeedItem] = []
    stop = feed.subscribe(got.append)
    feed.publish(ReadMark(at=ManualClock().now))
    stop()
    stop()  # twice is harmless
    feed.publish(ReadMark(at=ManualClock().now))
    assert len(got) == 1
