"""Read-side queries (on the reader connection) and the notification read-flag writes."""

from __future__ import annotations

import json
from typing import Any

from monitor.model import Ont, OntState, Status
from monitor.ports import HistoryRow, Notification
from storage.codec import (
    STATE_COLUMNS,
    ont_from_row,
    parse_ts,
    reason_from_stored,
    state_from_row,
)
from storage.database import Database
from storage.dialect import POSTGRESQL, SQLITE, all_digits
from storage.store import ONT_COLUMNS

_JOINED = (
    f"SELECT {', '.join('o.' + c.strip() for c in ONT_COLUMNS.split(','))}, "
    f"{', '.join('s.' + c.strip() for c in STATE_COLUMNS.split(','))} "
    "FROM onts o JOIN ont_state s ON s.ont_id = o.id"
)
_N_ONT = len(ONT_COLUMNS.split(","))


# ONT id order: ids of ASCII digits first, as numbers (of any length: by length without
# leading zeros, then as text), then every other id as text. id_cursor_key is the same key.
def _id_order(kind: str) -> tuple[str, ...]:
    numeric = all_digits("o.id", kind)
    return (
        f"CASE WHEN {numeric} THEN 0 ELSE 1 END",
        f"CASE WHEN {numeric} THEN length(ltrim(o.id, '0')) ELSE 0 END",
        f"CASE WHEN {numeric} THEN ltrim(o.id, '0') ELSE '' END",
        "o.id",
    )


_ID_ORDER = {kind: _id_order(kind) for kind in (SQLITE, POSTGRESQL)}


def id_cursor_key(ont_id: str) -> tuple[int, int, str, str]:
    """The sort key of an ONT id, as the database computes it in _ID_ORDER."""
    if ont_id.isascii() and ont_id.isdigit():
        trimmed = ont_id.lstrip("0")
        return 0, len(trimmed), trimmed, ont_id
    return 1, 0, "", ont_id


def _pair(row: Any) -> tuple[Ont, OntState]:
    return ont_from_row(row[:_N_ONT]), state_from_row(row[_N_ONT:])


def _notification(r: Any) -> Notification:
    created = parse_ts(r[1])
    assert created is not None
    return Notification(r[0], created, r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), bool(r[8]))


def _notification_filter(
    *,
    unread: bool,
    ont_id: str | None,
    severity: str | None,
    area: str | None,
    kind: str | None,
    before: int | None,
) -> tuple[str, list[Any]]:
    """The WHERE clause (with its leading space, or empty) and parameters of a filter."""
    where, params = [], []
    if unread:
        where.append("read = 0")
    equal = (("ont_id", ont_id), ("severity", severity), ("area", area), ("kind", kind))
    for column, value in equal:
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if before is not None:
        where.append("id < ?")
        params.append(before)
    return (" WHERE " + " AND ".join(where) if where else ""), params


class Queries:
    """What the API, the bot and the CLI read."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def onts(
        self,
        *,
        status: Status | None = None,
        area: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[tuple[Ont, OntState]]:
        """ONTs with their state, optionally filtered, in id order (numeric ids as numbers).

        Paged by a cursor: `after` is the last id of the previous page, `limit` the page size;
        the order is computed by the database (an index-friendly key), never by sorting everything.
        """
        where, params = [], []
        if status is not None:
            where.append("s.status = ?")
            params.append(status.value)
        if area is not None:
            where.append("o.area = ?")
            params.append(area)
        order = _ID_ORDER[self.db.kind]
        if after is not None:
            where.append(f"({', '.join(order)}) > (?, ?, ?, ?)")
            params.extend(id_cursor_key(after))
        sql = _JOINED + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY " + ", ".join(order)
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_pair(r) for r in await self.db.fetchall(sql, params)]

    async def ont(self, ont_id: str) -> tuple[Ont, OntState] | None:
        """One ONT with its state."""
        rows = await self.db.fetchall(_JOINED + " WHERE o.id = ?", (ont_id,))
        return _pair(rows[0]) if rows else None

    async def history(
        self, ont_id: str | None = None, limit: int = 50, before: int | None = None
    ) -> list[HistoryRow]:
        """Newest history lines first, of one ONT or of all; `before` pages (a line's id)."""
        sql = "SELECT id, ont_id, at, source, status, rto_count, severity, reason FROM history"
        where: list[str] = []
        params: list[Any] = []
        if ont_id is not None:
            where.append("ont_id = ?")
            params.append(ont_id)
        if before is not None:
            where.append("id < ?")
            params.append(before)
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [
            HistoryRow(r[0], r[1], parse_ts(r[2]), r[3], r[4], r[5], r[6], reason_from_stored(r[7]))  # type: ignore[arg-type]
            for r in await self.db.fetchall(sql, params)
        ]

    async def notifications(
        self,
        *,
        unread: bool = False,
        limit: int = 100,
        ont_id: str | None = None,
        severity: str | None = None,
        area: str | None = None,
        kind: str | None = None,
        before: int | None = None,
    ) -> list[Notification]:
        """Notifications, newest first; `before` is a keyset cursor (ids below it)."""
        where, params = _notification_filter(
            unread=unread, ont_id=ont_id, severity=severity, area=area, kind=kind, before=before
        )
        sql = (
            "SELECT id, created_at, kind, severity, ont_id, area, message, payload, read "
            "FROM notifications" + where + " ORDER BY id DESC LIMIT ?"
        )
        params.append(limit)
        return [_notification(r) for r in await self.db.fetchall(sql, params)]

    async def notification_count(
        self,
        *,
        unread: bool = False,
        ont_id: str | None = None,
        severity: str | None = None,
        area: str | None = None,
        kind: str | None = None,
        before: int | None = None,
    ) -> int:
        """How many notifications match the same filters as notifications()."""
        where, params = _notification_filter(
            unread=unread, ont_id=ont_id, severity=severity, area=area, kind=kind, before=before
        )
        rows = await self.db.fetchall("SELECT COUNT(*) FROM notifications" + where, params)
        return int(rows[0][0])

    async def unread_count(self) -> int:
        """How many notifications are unread."""
        rows = await self.db.fetchall("SELECT COUNT(*) FROM notifications WHERE read = 0")
        return int(rows[0][0])

    async def unread_horizon(self) -> tuple[int, int]:
        """The unread count and the highest notification id, read together (one snapshot)."""
        rows = await self.db.fetchall(
            "SELECT (SELECT COUNT(*) FROM notifications WHERE read = 0), "
            "(SELECT COALESCE(MAX(id), 0) FROM notifications)"
        )
        return int(rows[0][0]), int(rows[0][1])

    async def notifications_by_id(self, ids: list[int]) -> list[Notification]:
        """The stored notifications with these ids, oldest first (missing ids are skipped)."""
        out: list[Notification] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            sql = (
                "SELECT id, created_at, kind, severity, ont_id, area, message, payload, read "
                f"FROM notifications WHERE id IN ({', '.join('?' * len(chunk))}) ORDER BY id"
            )
            out += [_notification(r) for r in await self.db.fetchall(sql, chunk)]
        out.sort(key=lambda n: n.id)
        return out

    async def stats(self) -> dict[str, Any]:
        """The dashboard's numbers: totals by status, unread, by severity and by area."""
        by_status = dict(
            await self.db.fetchall("SELECT status, COUNT(*) FROM ont_state GROUP BY status")
        )
        by_severity = dict(
            await self.db.fetchall("SELECT severity, COUNT(*) FROM ont_state GROUP BY severity")
        )
        (unread,) = (await self.db.fetchall("SELECT COUNT(*) FROM notifications WHERE read = 0"))[0]
        areas = await self.db.fetchall(
            "SELECT o.area, COUNT(*), "
            "SUM(CASE WHEN s.status = 'ON' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN s.status = 'OFF' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN s.status = 'UNKNOWN' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN s.severity = 'critical' THEN 1 ELSE 0 END) "
            "FROM onts o JOIN ont_state s ON s.ont_id = o.id GROUP BY o.area ORDER BY o.area"
        )
        online, offline = by_status.get("ON", 0), by_status.get("OFF", 0)
        unknown = by_status.get("UNKNOWN", 0)
        return {
            "total": online + offline + unknown,
            "online": online,
            "offline": offline,
            "unknown": unknown,
            "unread": unread,
            "by_severity": {k: by_severity.get(k, 0) for k in ("ok", "warning", "critical")},
            "by_area": {
                a: {"total": t, "online": on, "offline": off, "unknown": unk, "critical": crit}
                for a, t, on, off, unk, crit in areas
            },
        }

    async def mark_read(self, notification_id: int | None = None) -> int:
        """Mark one notification (or all) read; returns how many changed."""
        async with self.db.transaction() as conn:
            if notification_id is None:
                cur = await conn.execute("UPDATE notifications SET read = 1 WHERE read = 0")
            else:
                cur = await conn.execute(
                    "UPDATE notifications SET read = 1 WHERE id = ? AND read = 0",
                    (notification_id,),
                )
            return cur.rowcount

    async def notification_exists(self, notification_id: int) -> bool:
        """Whether a notification with this id is stored."""
        rows = await self.db.fetchall(
            "SELECT 1 FROM notifications WHERE id = ?", (notification_id,)
        )
        return bool(rows)
