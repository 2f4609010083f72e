"""The stream's running totals equal a full count of the engine after any run of commits."""

from __future__ import annotations

import random

from monitor.engine import Engine
from monitor.feed import Commit, FeedItem
from monitor.model import Observation, OntState, Status
from monitor.view import Counts, EngineView
from tests.conftest import ManualClock, sample_onts
from web.tally import Tally


def _totals(c: Counts) -> tuple[object, ...]:
    return (c.total, c.online, c.offline, c.unknown, c.by_severity)


async def test_tally_follows_the_feed(engine: Engine, clock: ManualClock) -> None:
    await engine.upsert(sample_onts(30))
    view = EngineView(engine)
    heard: list[FeedItem] = []
    engine.feed.subscribe(heard.append)
    tally = Tally(view.items())
    assert _totals(tally.counts()) == _totals(view.counts())
    rng = random.Random(9)
    for step in range(60):
        batch = [
            Observation.push(
                str(rng.randint(1, 30)),
                rng.choice([Status.ON, Status.OFF]),
                rng.choice([0, 1, 3]),
                clock.advance(seconds=1),
            )
            for _ in range(rng.randint(1, 8))
        ]
        await engine.ingest_many(batch)
        if step == 30:
            await engine.delete("7")
        for item in heard:
            if isinstance(item, Commit):
                for ont, state in item.changed:
                    tally.put(ont.id, state)
                for ont_id in item.deleted:
                    tally.remove(ont_id)
        heard.clear()
        assert _totals(tally.counts()) == _totals(view.counts()), step


def test_the_same_state_twice_counts_once() -> None:
    tally = Tally()
    ont = sample_onts(1)[0]
    state = OntState(ont.id)
    tally.put(ont.id, state)
    tally.put(ont.id, state)
    assert tally.counts().total == 1 and tally.counts().unknown == 1
    tally.remove(ont.id)
    tally.remove(ont.id)
    assert tally.counts().total == 0 and tally.counts().unknown == 0
