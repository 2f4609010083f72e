"""What a standby's follower reads: the stored state, cheaply, and the notifications after an id.

A standby reloads the whole state on every commit the leader makes (monitor/follower.py).
Decoding 10,000 state rows (ISO times, JSON incidents) costs ~35-95 ms, so the reader keeps each row as fetched next to the object decoded from it and decodes again
only the rows whose stored values changed: an unchanged row gives back the very same object,
which also lets the follower's diff compare by identity first.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from monitor.feed import Notice
from monitor.model import Ont
from monitor.outages import MassOutage
from monitor.ports import Mute, Snapshot
from storage.codec import STATE_COLUMNS, event_from_payload, ont_from_row, parse_ts, state_from_row
from storage.database import Database
from storage.dialect import POSTGRESQL, begin_snapshot
from storage.store import ONT_COLUMNS

V = TypeVar("V")

COMMIT_CHANNEL = (
    "ontwatch_commit"  # the leader NOTIFYs it in every engine commit (storage/store.py)
)
LISTEN_CONNECT_S = 10
FETCH_ROWS = 2000  # rows decoded per call on the writer's thread (the loop gets the GIL between)
_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}

_ONTS = f"SELECT {ONT_COLUMNS} FROM onts"
_STATES = f"SELECT {STATE_COLUMNS} FROM ont_state"
_MUTES = "SELECT target, until, by FROM mutes"
_OUTAGES = (
    "SELECT area, started_at, members, last_notified_at, acked_at, acked_by FROM mass_outages"
)
_NOTICES = "SELECT id, payload FROM notifications WHERE id > ? ORDER BY id LIMIT ?"
_LAST_NOTICE = "SELECT COALESCE(MAX(id), 0) FROM notifications"


class _Decoded(Generic[V]):
    """Rows as last fetched (keyed by their first column) with the objects decoded from them."""

    def __init__(self, decode: Callable[[Any], V]) -> None:
        self._decode = decode
        self._held: dict[Hashable, tuple[Any, V]] = {}

    def objects(self, rows: list[Any]) -> list[V]:
        """The objects of these rows: the held one where the row is unchanged, else decoded."""
        held, fresh = self._held, {}
        out = []
        for row in rows:
            key = row[0]
            hit = held.get(key)
            if hit is None or hit[0] != row:
                hit = (row, self._decode(row))
            fresh[key] = hit
            out.append(hit[1])
        self._held = fresh  # rows gone from the table are let go
        return out


def _mute(row: Any) -> Mute:
    until = parse_ts(row[1])
    assert until is not None
    return Mute(row[0], until, row[2])


def _outage(row: Any) -> MassOutage:
    area, started, members, notified, acked, by = row
    return MassOutage(
        area,
        parse_ts(started),  # type: ignore[arg-type]
        frozenset(json.loads(members)),
        parse_ts(notified),
        parse_ts(acked),
        by,
    )


def _rows(cur: Any) -> list[Any]:
    """Every row, taken FETCH_ROWS at a time: psycopg turns a whole fetchall into Python
    objects in one call that holds the GIL (100,000 states stalled the loop ~100 ms)."""
    out: list[Any] = []
    while chunk := cur.fetchmany(FETCH_ROWS):
        out += chunk
    return out


def _notices_after(conn: Any, after: int, limit: int) -> list[Notice]:
    return [_notice(r) for r in conn.execute(_NOTICES, (after, limit)).fetchall()]


def _notice(row: Any) -> Notice:
    payload = json.loads(row[1])
    ont = payload.get("ont")
    return Notice(row[0], event_from_payload(payload), Ont(**ont) if ont else None)


class FollowReads:
    """monitor.follower's StateSource and NoticeLog, on either backend's Database seam."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._onts: _Decoded[Ont] = _Decoded(ont_from_row)
        self._states = _Decoded(state_from_row)
        self._mutes = _Decoded(_mute)
        self._outages = _Decoded(_outage)

    async def load(self) -> Snapshot:
        """Inventory, states, mutes and open mass outages as stored now (as Store.load).

        Read and decoded on the writer's thread, which a standby does not use otherwise: on
        the event loop, psycopg's decoding of 10,000 rows took ~30 ms and decoding the states
        once the leader changed them all (a whole network back up) ~35 ms more, time every
        page and stream the standby serves would have waited.
        """
        return await self.db.run_in_writer(self._read, begin_snapshot(self.db.kind))

    def _read(self, conn: Any, begin: str) -> Snapshot:
        """The four tables in one snapshot, decoded (on the writer's thread)."""
        conn.execute(begin)
        try:
            onts, states, mutes, outages = (
                _rows(conn.execute(sql)) for sql in (_ONTS, _STATES, _MUTES, _OUTAGES)
            )
        finally:
            conn.execute("COMMIT")  # read only: nothing to keep or lose
        return Snapshot(
            self._onts.objects(onts),
            self._states.objects(states),
            self._mutes.objects(mutes),
            self._outages.objects(outages),
        )

    async def notices_after(self, after: int, limit: int) -> list[Notice]:
        """Stored notifications with an id above after, oldest first, at most limit."""
        return await self.db.run_in_writer(_notices_after, after, limit)

    async def last_notice_id(self) -> int:
        """The highest notification id stored (0 when none)."""
        rows = await self.db.fetchall(_LAST_NOTICE)
        return int(rows[0][0])


def commit_listener(db: Any) -> Callable[[Callable[[], None]], Awaitable[None]] | None:
    """monitor.follower's listen(wake) on db's PostgreSQL, or None for SQLite (no NOTIFY).

    Not PgDatabase.listen: that one reconnects by itself, so the follower could not tell its
    connection was down and would not poll meanwhile. This one LISTENs on a connection of its
    own, calls wake() once LISTEN is in effect and at every commit the leader announces, and
    returns or raises as soon as the connection is lost (TCP keepalives find a silent peer
    within ~25 s); the follower then polls and calls it again.
    """
    if getattr(db, "kind", None) != POSTGRESQL:
        return None
    return listen_on(db.url)


def listen_on(url: str) -> Callable[[Callable[[], None]], Awaitable[None]]:
    """listen(wake) on the commit channel of the PostgreSQL at url (see commit_listener)."""

    async def listen(wake: Callable[[], None]) -> None:
        import psycopg  # only with PostgreSQL, as storage/pg.py

        conn = await psycopg.AsyncConnection.connect(
            url, autocommit=True, connect_timeout=LISTEN_CONNECT_S, **_KEEPALIVES
        )
        async with conn:
            await conn.execute(f"LISTEN {COMMIT_CHANNEL}")
            wake()
            async for _ in conn.notifies():
                wake()

    return listen
