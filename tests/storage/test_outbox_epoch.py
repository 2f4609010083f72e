"""Outbox claims under the leader's epoch (storage.outbox), on every backend of the `db` fixture.

A row is claimed before each send in its own commit; a new leader finds the rows an older
epoch claimed and never marked sent (in flight at the takeover) and may claim them again; a
row a newer epoch holds is refused to an older one. Sent rows are never claimed again.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from monitor.engine import Engine
from monitor.model import Observation, Source, Status
from storage.codec import ts
from storage.outbox import OutboxStore
from tests.conftest import ManualClock, sample_onts


async def three_rows(db: Any, engine: Engine, clock: ManualClock) -> list[int]:
    """Three pending outbox rows (three ONTs going OFF far apart), their ids in order."""
    onts = sample_onts(3)
    await engine.upsert(
        onts, [Observation.push(o.id, Status.ON, 0, clock(), source=Source.IMPORT) for o in onts]
    )
    for o in onts:
        clock.advance(minutes=5)
        await engine.ingest(Observation.push(o.id, Status.OFF, 1, clock(), source=Source.PUSH))
    ids = [r.id for r in await OutboxStore(db).pending()]
    assert len(ids) == 3
    return ids


def by_id(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {r["id"]: r for r in rows}


async def test_claim_records_the_epoch_and_in_flight_lists_unmarked_claims(
    db: Any, engine: Engine, clock: ManualClock
) -> None:
    store = OutboxStore(db)
    a, b, c = await three_rows(db, engine, clock)
    assert await store.in_flight(1) == []  # never claimed: not in flight
    assert await store.claim([a, b], 1, clock())
    await store.mark_sent([a], 42, clock())
    rows = by_id(await store.rows())
    assert rows[a]["claimed_epoch"] == 1 and rows[a]["state"] == "sent"
    assert rows[b]["claimed_epoch"] == 1 and rows[b]["claimed_at"] is not None
    assert rows[c]["claimed_epoch"] is None and rows[c]["claimed_at"] is None
    assert await store.in_flight(2) == [b]  # claimed by epoch 1, not marked: sent again
    assert await store.in_flight(1) == [b]  # a restart under the same epoch (SQLite: 0)
    assert await store.in_flight(0) == []  # claimed by a newer epoch than the asker's


async def test_a_newer_epoch_takes_the_claim_and_an_older_one_is_refused(
    db: Any, engine: Engine, clock: ManualClock
) -> None:
    store = OutboxStore(db)
    a, b, c = await three_rows(db, engine, clock)
    assert await store.claim([a], 1, clock())
    clock.advance(seconds=30)
    assert await store.claim([a, b], 2, clock())  # the takeover moves the claim
    rows = by_id(await store.rows())
    assert rows[a]["claimed_epoch"] == 2 and rows[b]["claimed_epoch"] == 2
    assert not await store.claim([a, c], 1, clock())  # the old leader: a is not its to send
    rows = by_id(await store.rows())
    assert rows[a]["claimed_epoch"] == 2
    assert rows[c]["claimed_epoch"] is None  # all or nothing: the refused claim wrote nothing
    assert await store.in_flight(1) == []


async def test_sent_and_failed_rows_are_never_claimed_again(
    db: Any, engine: Engine, clock: ManualClock
) -> None:
    store = OutboxStore(db)
    a, b, c = await three_rows(db, engine, clock)
    assert await store.claim([a, b], 1, clock())
    await store.mark_sent([a], 7, clock())
    await store.mark_failed([b], "chat not found", clock())
    assert await store.claim([a, b], 2, clock())  # nothing of another epoch's: no refusal
    rows = by_id(await store.rows())
    assert (rows[a]["state"], rows[a]["claimed_epoch"]) == ("sent", 1)
    assert (rows[b]["state"], rows[b]["claimed_epoch"]) == ("failed", 1)
    assert await store.in_flight(2) == []
    assert await store.claim([], 2, clock())
    claimed_at = clock() + timedelta(seconds=1)
    assert await store.claim([c], 2, claimed_at)
    assert by_id(await store.rows())[c]["claimed_at"] == ts(claimed_at)


async def test_a_claim_cancelled_at_any_await_leaves_the_writer_usable(
    db: Any, engine: Engine, clock: ManualClock
) -> None:
    """A delivery is cancelled (stop, kill of a lane) wherever it waits, claims included.

    Cancelled while awaiting its BEGIN, a transaction used to stay open on SQLite's writer
    and every later write failed with "cannot start a transaction within a transaction".
    """
    store = OutboxStore(db)
    a, b, _ = await three_rows(db, engine, clock)
    for steps in range(6):  # cancel after 0, 1, ... loop turns: at each await of the claim
        task = asyncio.create_task(store.claim([a], 1, clock()))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert await store.claim([b], 1, clock())  # the next write works
    await store.mark_sent([b], 9, clock())
    assert by_id(await store.rows())[b]["state"] == "sent"
    assert await store.in_flight(1) in ([], [a])
