"""The engine's Store: loading state at start-up and writing one batch per transaction."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from i18n import Lang
from monitor.outages import MassOutage
from monitor.ports import Batch, HistoryEntry, Mute, Snapshot, StoreDown
from monitor.summary import summarize
from storage.codec import (
    STATE_COLUMNS,
    event_payload,
    ont_from_row,
    ont_row,
    parse_ts,
    reason_json,
    state_from_row,
    state_row,
    ts,
)
from storage.database import Database
from storage.dialect import POSTGRESQL, begin_snapshot

ONT_COLUMNS = "id, name, customer_id, location, lat, lon, ip, area"
_STATE_UPDATE = ", ".join(
    f"{c}=excluded.{c}" for c in (c.strip() for c in STATE_COLUMNS.split(",")) if c != "ont_id"
)


class SqliteStore:
    """monitor.ports.Store on SQLite or PostgreSQL (the name is older than the second one)."""

    def __init__(self, db: Database, lang: Lang = "id") -> None:
        self.db = db
        self.lang = lang  # the service language: of the notifications' stored message

    async def load(self) -> Snapshot:
        """Inventory, states, mutes and open mass outages as stored (read on the writer)."""
        begin = begin_snapshot(self.db.kind)
        onts, states, mutes, outages = await self.db.run_in_writer(_load_rows, begin)
        return Snapshot(
            [ont_from_row(r) for r in onts],
            [state_from_row(r) for r in states],
            [Mute(t, parse_ts(u), b) for t, u, b in mutes],  # type: ignore[arg-type]
            [
                MassOutage(
                    a,
                    parse_ts(t),  # type: ignore[arg-type]
                    frozenset(json.loads(m)),
                    parse_ts(notified),
                    parse_ts(acked),
                    by,
                )
                for a, t, m, notified, acked, by in outages
            ],
        )

    async def commit(self, batch: Batch) -> list[int]:
        """Write everything in the batch in one transaction; the notifications' new ids.

        Faults of the database itself (disk full, I/O error, locked, corrupt) raise StoreDown;
        a value the database refuses (too large an integer, bad text, a constraint) raises as it is,
        which tells the engine that one job's data is at fault, not the store.
        """
        statements = self._statements(batch, datetime.now(UTC))
        notify = self.db.kind == POSTGRESQL  # standbys follow the commits (docs/postgresql.md)
        try:
            return await self.db.run_in_writer(_run_transaction, statements, notify)
        except StoreDown:
            raise
        except self.db.data_errors:
            raise
        except self.db.down_errors as exc:
            raise StoreDown(f"{type(exc).__name__}: {exc}") from exc

    def _statements(self, batch: Batch, now: datetime) -> list[tuple[str, list[tuple[Any, ...]]]]:
        out: list[tuple[str, list[tuple[Any, ...]]]] = []
        if batch.deleted:
            ids = [(i,) for i in batch.deleted]
            out.append(("DELETE FROM ont_state WHERE ont_id = ?", ids))
            out.append(("DELETE FROM onts WHERE id = ?", ids))
        if batch.onts:
            out.append(
                (
                    f"INSERT INTO onts ({ONT_COLUMNS}, updated_at) VALUES (?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(id) DO UPDATE SET name=excluded.name, "
                    "customer_id=excluded.customer_id, location=excluded.location, "
                    "lat=excluded.lat, lon=excluded.lon, ip=excluded.ip, area=excluded.area, "
                    "updated_at=excluded.updated_at",
                    [ont_row(o, now) for o in batch.onts.values()],
                )
            )
        if batch.states:
            out.append(
                (
                    f"INSERT INTO ont_state ({STATE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?) "
                    f"ON CONFLICT(ont_id) DO UPDATE SET {_STATE_UPDATE}",
                    [state_row(s) for s in batch.states.values()],
                )
            )
        if batch.history:
            out.append(
                (
                    "INSERT INTO history (ont_id, at, source, status, rto_count, severity, reason)"
                    " VALUES (?,?,?,?,?,?,?)",
                    _history_rows(batch.history),
                )
            )
        if batch.alerts:
            notifications, outbox = [], []
            for event, ont, chats in batch.alerts:
                notifications.append(
                    (
                        ts(event.at),
                        event.kind.value,
                        event.severity.value,
                        event.ont_id,
                        event.area,
                        summarize(event, ont, self.lang),
                        json.dumps(event_payload(event, ont)),
                        int(event.notify),
                        len(chats),
                    )
                )
                outbox.extend((chat, ts(now)) for chat in chats)
            out.append((_NOTIFY, notifications))
            out.append((_OUTBOX, outbox))
        if batch.folded:
            # Messages still waiting in the outbox are folded too: the outage message lists them.
            out.append(
                (
                    "UPDATE outbox SET state = 'folded' WHERE state = 'pending' AND notification_id IN"
                    " (SELECT id FROM notifications WHERE ont_id = ? AND kind IN ('opened', 'escalated'))",
                    [(i,) for i in sorted(batch.folded)],
                )
            )
        for area, outage in batch.outages.items():
            if outage is None:
                out.append(("DELETE FROM mass_outages WHERE area = ?", [(area,)]))
            else:
                out.append(
                    (
                        "INSERT INTO mass_outages (area, started_at, members,"
                        " last_notified_at, acked_at, acked_by) VALUES (?,?,?,?,?,?)"
                        " ON CONFLICT(area) DO UPDATE SET started_at=excluded.started_at,"
                        " members=excluded.members, last_notified_at=excluded.last_notified_at,"
                        " acked_at=excluded.acked_at, acked_by=excluded.acked_by",
                        [
                            (
                                area,
                                ts(outage.started_at),
                                json.dumps(sorted(outage.members)),
                                ts(outage.last_notified_at),
                                ts(outage.acked_at),
                                outage.acked_by,
                            )
                        ],
                    )
                )
        for target, mute in batch.mutes.items():
            if mute is None:
                out.append(("DELETE FROM mutes WHERE target = ?", [(target,)]))
            else:
                out.append(
                    (
                        "INSERT INTO mutes (target, until, by) VALUES (?,?,?) ON CONFLICT(target)"
                        " DO UPDATE SET until=excluded.until, by=excluded.by",
                        [(target, ts(mute.until), mute.by)],
                    )
                )
        return out


def _history_rows(history: list[HistoryEntry]) -> list[tuple[Any, ...]]:
    """History rows; a 20,000-update push repeats a few times and reasons: each encoded once."""
    stamps: dict[datetime, str | None] = {}
    reasons: dict[Any, str] = {}
    rows = []
    for h in history:
        stamp = stamps.get(h.at)
        if stamp is None:
            stamp = stamps[h.at] = ts(h.at)
        try:
            reason = reasons.get(h.reason)
            if reason is None:
                reason = reasons[h.reason] = reason_json(h.reason)
        except TypeError:  # an unhashable reason: encoded every time
            reason = reason_json(h.reason)
        row = (h.ont_id, stamp, h.source.value, h.status.value, h.rto_count, h.severity.value)
        rows.append((*row, reason))
    return rows


_NOTIFY = "notifications"
_OUTBOX = "outbox"


def _load_rows(conn: Any, begin: str) -> tuple[list[Any], ...]:
    """The rows load() decodes, read in one hop on the writer's thread, in one snapshot."""
    queries = (
        f"SELECT {ONT_COLUMNS} FROM onts",
        f"SELECT {STATE_COLUMNS} FROM ont_state",
        "SELECT target, until, by FROM mutes",
        "SELECT area, started_at, members, last_notified_at, acked_at, acked_by FROM mass_outages",
    )
    conn.execute(begin)
    try:
        return tuple(conn.execute(sql).fetchall() for sql in queries)
    finally:
        conn.execute("COMMIT")  # read only: nothing to keep or lose


# Delivered to PostgreSQL listeners at COMMIT only (NOTIFY is transactional): the highest
# notification id, so a standby knows how far the stored notifications go.
_COMMIT_NOTICE = (
    "SELECT pg_notify('ontwatch_commit', (SELECT COALESCE(MAX(id), 0) FROM notifications)::text)"
)


def _run_transaction(
    conn: Any, statements: list[tuple[str, list[tuple[Any, ...]]]], notify: bool = False
) -> list[int]:
    conn.execute("BEGIN IMMEDIATE")
    notification_ids: list[int] = []
    try:
        outbox_ids: list[int] = []
        for sql, rows in statements:
            if sql is _NOTIFY:
                (last,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM notifications").fetchone()
                numbered = [(last + i, *r[:-1]) for i, r in enumerate(rows, start=1)]
                conn.executemany(
                    "INSERT INTO notifications (id, created_at, kind, severity, ont_id, area,"
                    " message, payload, notify) VALUES (?,?,?,?,?,?,?,?,?)",
                    numbered,
                )
                notification_ids = [row[0] for row in numbered]
                outbox_ids = [last + i for i, r in enumerate(rows, start=1) for _ in range(r[-1])]
            elif sql is _OUTBOX:
                conn.executemany(
                    "INSERT INTO outbox (notification_id, chat_id, created_at) VALUES (?,?,?)",
                    [(nid, *r) for nid, r in zip(outbox_ids, rows, strict=True)],
                )
            else:
                conn.executemany(sql, rows)
        if notify:
            conn.execute(_COMMIT_NOTICE)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return notification_ids
