"""The lease with a fencing epoch, on a real PostgreSQL server (tests/pg.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest

from monitor.ports import StoreDown
from storage.leadership import Lease, NotLeader

TTL = 1.0  # seconds: short, so that expiry is seen within the test


@pytest.fixture
async def leases(pg_url: str) -> AsyncIterator[Callable[[str], Any]]:
    """A factory of opened leases on one database, all closed afterwards."""
    opened: list[Lease] = []

    async def make(name: str, ttl: float = TTL) -> Lease:
        lease = await Lease(pg_url, name, ttl).open()
        opened.append(lease)
        return lease

    yield make
    for lease in opened:
        await lease.close()


async def test_first_acquire_wins_and_the_other_waits(leases: Any) -> None:
    a, b = await leases("a"), await leases("b")
    first = await a.acquire()
    assert first is not None
    assert await b.acquire() is None
    info = await a.current()
    assert (info.holder, info.epoch, info.active) == ("a", first, True)
    assert info.lease_until > info.now


async def test_renew_keeps_the_lease_past_its_ttl(leases: Any) -> None:
    a, b = await leases("a"), await leases("b")
    epoch = await a.acquire()
    for _ in range(4):  # 4 × ttl/3 > ttl: without the renewals b would win
        await asyncio.sleep(TTL / 3)
        assert await a.renew()
        assert await b.acquire() is None
    assert (await a.current()).epoch == epoch


async def test_expired_lease_is_taken_with_a_new_epoch(leases: Any) -> None:
    a, b = await leases("a"), await leases("b")
    first = await a.acquire()
    assert first is not None
    await asyncio.sleep(TTL + 0.2)
    second = await b.acquire()
    assert second == first + 1
    assert not await a.renew()  # a's epoch is gone for good
    info = await b.current()
    assert (info.holder, info.epoch) == ("b", second)


async def test_release_lets_a_standby_take_over_at_once(leases: Any) -> None:
    a, b = await leases("a", ttl=60), await leases("b", ttl=60)
    first = await a.acquire()
    assert await b.acquire() is None
    await a.release()
    assert not (await a.current()).active
    assert await b.acquire() == (first or 0) + 1


async def test_reacquire_by_the_same_instance_bumps_the_epoch(leases: Any) -> None:
    """A restarted instance under the same name fences its older self."""
    a = await leases("a", ttl=60)
    first = await a.acquire()
    assert first is not None
    assert await a.acquire() == first + 1


async def test_fence_passes_for_the_holder_and_refuses_after_the_lease_moved(
    leases: Any, pg_url: str
) -> None:
    a, b = await leases("a"), await leases("b")
    await a.acquire()
    lost: list[str] = []
    fence = a.fence(lambda: lost.append("a"))
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        await fence.run_async(conn)  # inside a transaction: passes
        await conn.rollback()
        assert lost == []
        await asyncio.sleep(TTL + 0.2)
        with pytest.raises(NotLeader):  # expired, not yet taken: refused too
            await fence.run_async(conn)
        await conn.rollback()
        await b.acquire()
        with pytest.raises(StoreDown):  # NotLeader is the engine's StoreDown
            await fence.run_async(conn)
    assert lost == ["a", "a"]


def test_fence_on_a_synchronous_connection(pg_url: str) -> None:
    """The writer thread's connection (group commit) is synchronous."""

    async def take() -> Lease:
        lease = await Lease(pg_url, "a", 60).open()
        await lease.acquire()
        return lease

    lease = asyncio.run(take())
    fence = lease.fence(lambda: None)
    with psycopg.connect(pg_url) as conn:
        fence(conn)
        conn.rollback()
        asyncio.run(lease.release())
        with pytest.raises(NotLeader):
            fence(conn)
    asyncio.run(lease.close())


async def test_takeover_waits_for_a_fenced_transaction_to_commit(leases: Any, pg_url: str) -> None:
    """FOR KEY SHARE against the takeover's FOR UPDATE: a write that passed the fence commits
    before the epoch moves (the takeover waits for it, up to its lock_timeout of a third of
    the lease)."""
    ttl = 3.0
    a, b = await leases("a", ttl=ttl), await leases("b", ttl=ttl)
    await a.acquire()
    fence = a.fence(lambda: None)
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        await fence.run_async(conn)  # the row is share-locked until this transaction ends
        # a long statement (busy, not idle), ending just after the lease
        busy = asyncio.create_task(conn.execute("SELECT pg_sleep(%s)", (ttl + 0.4,)))
        await asyncio.sleep(ttl + 0.2)
        takeover = asyncio.create_task(b.acquire())
        await asyncio.sleep(0.1)
        assert not takeover.done()  # waits on the row lock
        await busy
        await conn.commit()  # committed under the old epoch, before the takeover
        assert await asyncio.wait_for(takeover, 5) is not None


async def test_renewal_never_waits_for_the_leaders_own_fenced_transaction(
    leases: Any, pg_url: str
) -> None:
    """A bulk write (one long fenced transaction) must not starve the lease it runs under:
    the renewal's UPDATE does not conflict with the fence's lock (with FOR SHARE it waited
    its lock_timeout and failed, and the leader gave up its lease in the middle of a push)."""
    ttl = 3.0
    a = await leases("a", ttl=ttl)
    await a.acquire()
    before = await a.current()
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        await a.fence(lambda: None).run_async(conn)  # held through the renewals below
        for _ in range(3):
            assert await asyncio.wait_for(a.renew(), ttl / 2)
        after = await a.current()
        await conn.commit()
    assert after.epoch == before.epoch and after.lease_until > before.lease_until


async def test_the_table_is_created_once_by_instances_starting_together(pg_url: str) -> None:
    # a long lease: a slow machine must not let a late acquire find the first one expired
    leases = await asyncio.gather(*(Lease(pg_url, f"i{n}", 60).open() for n in range(4)))
    won = [epoch for epoch in await asyncio.gather(*(le.acquire() for le in leases)) if epoch]
    assert len(won) == 1
    for lease in leases:
        await lease.close()


async def test_pg_database_writes_only_while_its_fence_passes(leases: Any, pg_url: str) -> None:
    """PgDatabase.fence runs at BEGIN on the writer: once the lease moved, nothing is written."""
    from storage.pg import PgDatabase
    from storage.probe import write_probe

    a, b = await leases("a"), await leases("b")
    await a.acquire()
    lost: list[str] = []
    db = await PgDatabase(pg_url).open()
    try:
        db.fence = a.fence(lambda: lost.append("a"))
        await write_probe(db, "first")
        await asyncio.sleep(TTL + 0.2)
        await b.acquire()
        with pytest.raises(NotLeader):
            await write_probe(db, "second")
        assert lost == ["a"]
        rows = await db.fetchall("SELECT value FROM meta WHERE key = 'healthz'")
        assert [tuple(r) for r in rows] == [("first",)]
    finally:
        await db.close()


async def test_a_transaction_left_idle_past_the_lease_cannot_block_the_takeover(
    leases: Any, pg_url: str
) -> None:
    """A leader frozen inside a fenced transaction: PostgreSQL ends that session after the
    lease's length idle, releasing the share lock, so the standby takes over."""
    a, b = await leases("a"), await leases("b")
    await a.acquire()
    fence = a.fence(lambda: None)
    conn = await psycopg.AsyncConnection.connect(pg_url)
    try:
        await fence.run_async(conn)  # then "frozen": idle in transaction, lock held
        started = asyncio.get_running_loop().time()
        epoch = None
        while epoch is None and asyncio.get_running_loop().time() - started < 3 * TTL + 3:
            epoch = await b.acquire()
            await asyncio.sleep(TTL / 3)
        assert epoch is not None
        assert asyncio.get_running_loop().time() - started <= 2 * TTL + 1.5
        with pytest.raises(psycopg.Error):  # the frozen session was ended
            await conn.execute("SELECT 1")
    finally:
        await conn.close()


async def test_a_standby_ends_the_expired_leaders_session_that_blocks_it(
    leases: Any, pg_url: str
) -> None:
    """A leader frozen mid-statement is bounded by no timeout: once the lease ran out, the
    standby's blocked takeover ends the sessions fenced under the expired epoch."""
    from storage.leadership import Fence

    a, b = await leases("a"), await leases("b")
    epoch = await a.acquire()
    assert epoch is not None
    fence = Fence("a", epoch, lambda: None, idle_limit=60)  # no idle limit to help
    conn = await psycopg.AsyncConnection.connect(pg_url)
    try:
        await fence.run_async(conn)  # the share lock, held
        loop = asyncio.get_running_loop()
        started = loop.time()
        taken = None
        while taken is None and loop.time() - started < 10:
            taken = await b.acquire()
            if taken is None:
                await asyncio.sleep(TTL / 3)
        assert taken == epoch + 1
        assert loop.time() - started <= TTL + TTL / 3 + 1.0
        with pytest.raises(psycopg.Error):  # its session was ended: nothing it held commits
            await conn.execute("SELECT 1")
    finally:
        await conn.close()


async def test_a_live_leaders_transaction_is_not_ended(leases: Any, pg_url: str) -> None:
    """While the lease is valid the standby only waits (lock_timeout) and ends nothing."""
    a, b = await leases("a", ttl=30), await leases("b", ttl=3)
    await a.acquire()
    conn = await psycopg.AsyncConnection.connect(pg_url)
    try:
        await a.fence(lambda: None).run_async(conn)
        assert await b.acquire() is None  # waited its lock_timeout, then gave up
        await conn.execute("SELECT 1")  # still alive
        await conn.commit()
    finally:
        await conn.close()
