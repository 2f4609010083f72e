"""The leader's lease on PostgreSQL: one row with a fencing epoch (docs/postgresql.md).

Every time is the database's own `now()`, so the instances' clocks never matter. The lease
talks to PostgreSQL on a dedicated autocommit connection of its own: a renewal never waits
in the writer's queue behind a large group commit, and a takeover is one UPDATE that either
wins the row or does not. The row is created idempotently when the lease opens (CREATE TABLE
IF NOT EXISTS), not by the schema's migrations: it belongs to the running instances, not to
the data, so `migrate-db` and backups have nothing to copy for it.

Fencing: every write transaction of the leader starts with `Fence`'s SELECT … FOR KEY SHARE.
A takeover first locks the row FOR UPDATE, which conflicts with that lock, so it waits until
the transaction has committed; the leader's own renewal (an UPDATE of no key column) does not
conflict, so a long bulk write never starves the lease it runs under. A transaction that
starts after the lease moved or ran out finds no row and raises NotLeader before it has
written anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import psycopg.errors

from monitor.ports import StoreDown

log = logging.getLogger("ontwatch.leadership")

LEASE_TIMEOUT = 5.0  # seconds one lease statement may take before it counts as failed

CREATE_SQL = (
    "CREATE TABLE IF NOT EXISTS leadership ("
    " id smallint PRIMARY KEY CHECK (id = 1),"
    " holder text NOT NULL DEFAULT '',"
    " epoch bigint NOT NULL DEFAULT 0,"
    " since timestamptz NOT NULL DEFAULT now(),"
    " lease_until timestamptz NOT NULL DEFAULT now())"
)
SEED_SQL = "INSERT INTO leadership (id) VALUES (1) ON CONFLICT (id) DO NOTHING"
# The takeover's lock: FOR UPDATE waits for every fenced transaction (FOR KEY SHARE), which the
# UPDATE alone (FOR NO KEY UPDATE) would not. Both run in one transaction.
LOCK_SQL = "SELECT id FROM leadership WHERE id = 1 FOR UPDATE"
ACQUIRE_SQL = (
    "UPDATE leadership SET holder = %(me)s, epoch = epoch + 1, since = now(),"
    " lease_until = now() + make_interval(secs => %(ttl)s)"
    " WHERE id = 1 AND (lease_until < now() OR holder = %(me)s)"
    " RETURNING epoch"
)
RENEW_SQL = (
    "UPDATE leadership SET lease_until = now() + make_interval(secs => %(ttl)s)"
    " WHERE id = 1 AND holder = %(me)s AND epoch = %(epoch)s RETURNING epoch"
)
RELEASE_SQL = (
    "UPDATE leadership SET lease_until = now()"
    " WHERE id = 1 AND holder = %(me)s AND epoch = %(epoch)s AND lease_until > now()"
)
CURRENT_SQL = "SELECT holder, epoch, since, lease_until, now() FROM leadership WHERE id = 1"
# The key-share lock is held until the transaction ends: were the leader frozen inside one,
# the standby's takeover would wait for as long as it stays frozen. So the same statement
# bounds the transaction's idle time to the lease (set_config(..., true): this transaction
# only); PostgreSQL ends a session idle in it longer, releasing the lock. A live leader is
# never idle that long inside a transaction.
# The fenced transaction also carries the name FENCED_NAME + epoch (application_name, this
# transaction only): a leader frozen mid-statement (a pipelined group commit waiting for its
# client) is bounded by no timeout, so a standby that finds the lease expired but its
# takeover blocked by that lock ends the expired epoch's fenced sessions (END_EXPIRED_SQL).
# Nothing is lost: an uncommitted transaction was acknowledged to nobody.
FENCED_NAME = "ontwatch-fenced "
FENCE_SQL = (
    "SELECT set_config('idle_in_transaction_session_timeout', %s, true),"
    " set_config('application_name', %s, true) FROM leadership"
    " WHERE id = 1 AND holder = %s AND epoch = %s AND lease_until > now() FOR KEY SHARE"
)
END_EXPIRED_SQL = (
    "SELECT count(pg_terminate_backend(a.pid)) FROM pg_stat_activity a, leadership l"
    " WHERE l.id = 1 AND l.lease_until < now() AND a.datname = current_database()"
    f" AND a.application_name = '{FENCED_NAME}' || l.epoch AND a.pid <> pg_backend_pid()"
)


class NotLeader(StoreDown):
    """The lease is gone (expired, or taken by another instance): nothing may be written."""


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """The lease row as the database sees it now."""

    holder: str
    epoch: int
    since: datetime
    lease_until: datetime
    now: datetime  # the database's clock when it was read

    @property
    def active(self) -> bool:
        """Whether somebody holds an unexpired lease."""
        return bool(self.holder) and self.lease_until > self.now


class Fence:
    """PgDatabase.fence while this instance leads: refuses a write transaction once the lease
    is gone, and tells the role manager (on_lost) from whatever thread the writer runs on."""

    def __init__(
        self, instance: str, epoch: int, on_lost: Callable[[], None], *, idle_limit: float
    ) -> None:
        self.instance, self.epoch, self.on_lost = instance, epoch, on_lost
        self.sql = FENCE_SQL
        idle_ms = str(max(1, int(idle_limit * 1000)))
        self.params: tuple[str, str, str, int] = (idle_ms, f"{FENCED_NAME}{epoch}", instance, epoch)

    def __call__(self, conn: Any) -> None:
        """The fence on a synchronous connection, inside its open transaction: a psycopg
        Connection, or PgDatabase's writer wrapper (its `raw` psycopg connection: the
        wrapper's execute takes `?` parameters)."""
        raw: psycopg.Connection[Any] = getattr(conn, "raw", conn)
        self.check(raw.execute(self.sql, self.params).fetchall())

    async def run_async(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """The fence on an asynchronous connection, inside its open transaction."""
        cur = await conn.execute(self.sql, self.params)
        self.check(await cur.fetchall())

    def check(self, rows: Sequence[Any]) -> None:
        """Raise NotLeader (and tell on_lost) when the fence query found no row."""
        if rows:
            return
        self.on_lost()
        raise NotLeader(f"{self.instance} no longer holds the lease of epoch {self.epoch}")


class Lease:
    """Acquire, renew and release the one leadership row for `instance`."""

    # What a lease call raises when the database cannot answer (the role manager retries).
    errors: tuple[type[BaseException], ...] = (psycopg.Error, OSError, TimeoutError)

    def __init__(self, url: str, instance: str, ttl: float) -> None:
        self.url, self.instance, self.ttl = url, instance, float(ttl)
        self.epoch: int | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()

    def twin(self) -> Lease:
        """The same lease (instance, epoch) on a connection of its own, for another thread
        and event loop (the role manager's renewer)."""
        other = Lease(self.url, self.instance, self.ttl)
        other.epoch = self.epoch
        return other

    async def open(self) -> Lease:
        """Connect and make sure the row exists."""
        await self._run("SELECT 1", {})
        return self

    async def close(self) -> None:
        """Close the lease's connection (the lease itself runs out by its time)."""
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await self._conn.close()
            self._conn = None

    async def acquire(self) -> int | None:
        """Take the lease when it ran out (or is already ours): the new epoch, else None.

        The takeover waits at most lock_timeout for a fenced transaction of the old leader;
        if the lease has run out meanwhile, that leader is frozen or cut off inside it: its
        fenced sessions are ended and the takeover tried once more.
        """
        params = {"me": self.instance, "ttl": self.ttl}
        try:
            rows = await self._run(ACQUIRE_SQL, params, locked=True)
        except psycopg.errors.LockNotAvailable:
            if not await self._end_expired():
                return None
            await asyncio.sleep(0.1)  # the ended sessions' locks go with them
            try:
                rows = await self._run(ACQUIRE_SQL, params, locked=True)
            except psycopg.errors.LockNotAvailable:
                return None
        self.epoch = int(rows[0][0]) if rows else None
        return self.epoch

    async def _end_expired(self) -> int:
        """End the sessions fenced under an expired epoch (how many were ended)."""
        try:
            ended = int((await self._run(END_EXPIRED_SQL, {}))[0][0])
        except psycopg.errors.InsufficientPrivilege as exc:
            log.warning("cannot end the expired leader's sessions (%s): use one database role", exc)
            return 0
        if ended:
            log.warning("ended %d session(s) of the expired leader blocking the takeover", ended)
        return ended

    async def renew(self) -> bool:
        """Extend our lease by ttl; False when it is no longer ours (another epoch holds it)."""
        if self.epoch is None:
            return False
        params = {"me": self.instance, "ttl": self.ttl, "epoch": self.epoch}
        return bool(await self._run(RENEW_SQL, params))

    async def release(self) -> None:
        """End our lease now, so that a standby takes over at its next try."""
        if self.epoch is None:
            return
        params = {"me": self.instance, "epoch": self.epoch}
        await self._run(RELEASE_SQL, params, returns=False)
        self.epoch = None

    async def current(self) -> LeaseInfo:
        """Who holds the lease, its epoch, since when and until when."""
        holder, epoch, since, until, now = (await self._run(CURRENT_SQL, {}))[0]
        return LeaseInfo(holder, int(epoch), since, until, now)

    def fence(self, on_lost: Callable[[], None]) -> Fence:
        """The fence for the epoch we hold (acquire first)."""
        assert self.epoch is not None, "the lease is not held"
        return Fence(self.instance, self.epoch, on_lost, idle_limit=self.ttl)

    async def _run(
        self, sql: str, params: dict[str, Any], *, returns: bool = True, locked: bool = False
    ) -> list[Any]:
        """One statement on the lease connection (after LOCK_SQL in one transaction when
        `locked`), bounded in time; a broken connection is dropped so that the next call
        reconnects."""
        async with self._lock:
            work = self._execute(sql, params, returns, locked)
            try:
                return await asyncio.wait_for(work, LEASE_TIMEOUT)
            except psycopg.Error:
                if self._conn is None or self._conn.broken or self._conn.closed:
                    await self.close()  # a statement's error (a lock timeout) keeps it
                raise
            except (OSError, TimeoutError):
                await self.close()
                raise

    async def _execute(
        self, sql: str, params: dict[str, Any], returns: bool, locked: bool
    ) -> list[Any]:
        conn = await self._connection()
        if not locked:
            cur = await conn.execute(sql, params)
            return await cur.fetchall() if returns else []
        async with conn.transaction():
            await conn.execute(LOCK_SQL)
            cur = await conn.execute(sql, params)
            return await cur.fetchall() if returns else []

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            conn = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=int(LEASE_TIMEOUT)
            )
            try:
                await _create(conn)
                # a takeover waits for a fenced transaction at most a third of the lease
                await conn.execute(
                    "SELECT set_config('lock_timeout', %s, false)",
                    (str(max(1, int(self.ttl * 1000 / 3))),),
                )
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._conn


async def _create(conn: psycopg.AsyncConnection[Any]) -> None:
    """The table and its one row; two instances starting at once may race on CREATE TABLE
    IF NOT EXISTS (PostgreSQL then reports a duplicate), which means it exists."""
    raced = (
        psycopg.errors.UniqueViolation,
        psycopg.errors.DuplicateTable,
        psycopg.errors.DuplicateObject,  # 'type "leadership" already exists'
    )
    with contextlib.suppress(*raced):
        await conn.execute(CREATE_SQL)
    await conn.execute(SEED_SQL)
