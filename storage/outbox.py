"""Outbox delivery state, per-chat preferences and area subscriptions (the bot's tables)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from monitor.ports import OutboxRow, Subscription
from storage.codec import event_from_payload, ts
from storage.database import Database


class OutboxStore:
    """Reads pending outbox rows and records what delivery did with them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def pending(self, chat_id: int | None = None, limit: int = 1000) -> list[OutboxRow]:
        """Pending rows in creation order (id order is the per-chat order), optionally one chat."""
        sql = (
            "SELECT o.id, o.notification_id, o.chat_id, o.attempts, n.payload "
            "FROM outbox o JOIN notifications n ON n.id = o.notification_id "
            "WHERE o.state = 'pending'"
        )
        params: list[Any] = []
        if chat_id is not None:
            sql += " AND o.chat_id = ?"
            params.append(chat_id)
        sql += " ORDER BY o.id LIMIT ?"
        params.append(limit)
        return [
            OutboxRow(r[0], r[1], r[2], r[3], event_from_payload(payload), payload)
            for r in await self.db.fetchall(sql, params)
            if (payload := json.loads(r[4])) is not None
        ]

    async def pending_chats(self) -> list[int]:
        """Chats that have pending rows, oldest row first."""
        rows = await self.db.fetchall(
            "SELECT chat_id, MIN(id) AS first FROM outbox WHERE state = 'pending' "
            "GROUP BY chat_id ORDER BY first"
        )
        return [r[0] for r in rows]

    async def mark_sent(self, ids: Sequence[int], message_id: int | None, at: datetime) -> None:
        """Record that Telegram accepted the message carrying these rows."""
        async with self.db.transaction() as conn:
            await conn.executemany(
                "UPDATE outbox SET state = 'sent', sent_at = ?, message_id = ?, "
                "attempts = attempts + 1 WHERE id = ? AND state = 'pending'",
                [(ts(at), message_id, i) for i in ids],
            )

    async def mark_failed(self, ids: Sequence[int], reason: str, at: datetime) -> None:
        """Give up on rows Telegram will never accept (chat not found, bot blocked, ...)."""
        async with self.db.transaction() as conn:
            await conn.executemany(
                "UPDATE outbox SET state = 'failed', last_error = ?, next_attempt_at = ?, "
                "attempts = attempts + 1 WHERE id = ? AND state = 'pending'",
                [(reason[:500], ts(at), i) for i in ids],
            )

    async def claim(self, ids: Sequence[int], epoch: int, at: datetime) -> bool:
        """Claim rows for a send under the leader's epoch, committed before the send goes out.

        All or nothing: when a newer epoch holds any of the rows (a newer leader took them
        over), nothing is written and the answer is False: they are not this leader's to send.
        On PostgreSQL the transaction is fenced by the lease, so a leader that lost it claims,
        and therefore sends, nothing. Rows no longer pending are left as they are.
        """
        if not ids:
            return True
        marks = ", ".join("?" * len(ids))
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                f"SELECT COUNT(*) FROM outbox WHERE id IN ({marks}) AND claimed_epoch > ?",
                (*ids, epoch),
            )
            (newer,) = await cur.fetchone()
            if newer:
                return False
            await conn.execute(
                "UPDATE outbox SET claimed_epoch = ?, claimed_at = ? "
                f"WHERE id IN ({marks}) AND state = 'pending' "
                "AND (claimed_epoch IS NULL OR claimed_epoch <= ?)",
                (epoch, ts(at), *ids, epoch),
            )
        return True

    async def in_flight(self, epoch: int) -> list[int]:
        """Pending rows claimed by this epoch or an older one, in id order.

        Read by a delivery as it starts: these were claimed by an earlier run (an older
        leader, or this instance before a restart) and never marked sent, so their message
        may already have gone out; they are sent again, once per takeover.
        """
        rows = await self.db.fetchall(
            "SELECT id FROM outbox WHERE state = 'pending' AND claimed_epoch <= ? ORDER BY id",
            (epoch,),
        )
        return [r[0] for r in rows]

    async def record_attempt(
        self, ids: Sequence[int], error: str, next_attempt_at: datetime
    ) -> None:
        """Count a failed attempt that will be retried, with the error and the next try."""
        async with self.db.transaction() as conn:
            await conn.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
                "WHERE id = ? AND state = 'pending'",
                [(error[:500], ts(next_attempt_at), i) for i in ids],
            )

    async def pending_age(self, now: datetime) -> tuple[int, float]:
        """Undelivered rows and the age in seconds of the oldest one (0 when none)."""
        rows = await self.db.fetchall(
            "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE state = 'pending'"
        )
        count, oldest = rows[0]
        age = (now - datetime.fromisoformat(oldest)).total_seconds() if oldest else 0.0
        return int(count), max(0.0, age)

    async def counts(self) -> dict[str, int]:
        """Rows by state, for metrics and tests."""
        return dict(await self.db.fetchall("SELECT state, COUNT(*) FROM outbox GROUP BY state"))

    async def rows(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Every row with its delivery fields (for tests and diagnostics)."""
        sql = (
            "SELECT id, notification_id, chat_id, state, attempts, last_error, sent_at, "
            "message_id, claimed_epoch, claimed_at FROM outbox"
        )
        params: list[Any] = []
        if chat_id is not None:
            sql += " WHERE chat_id = ?"
            params.append(chat_id)
        keys = ("id", "notification_id", "chat_id", "state", "attempts", "last_error")
        out = []
        for r in await self.db.fetchall(sql + " ORDER BY id", params):
            row = dict(
                zip((*keys, "sent_at", "message_id", "claimed_epoch", "claimed_at"), r, strict=True)
            )
            out.append(row)
        return out


class ChatPrefs:
    """Per-chat language choice."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def langs(self) -> dict[int, str]:
        """Every chat's chosen language."""
        rows = await self.db.fetchall("SELECT chat_id, lang FROM chat_prefs WHERE lang IS NOT NULL")
        return {r[0]: r[1] for r in rows}

    async def set_lang(self, chat_id: int, lang: str) -> None:
        """Store a chat's language."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO chat_prefs (chat_id, lang) VALUES (?, ?) "
                "ON CONFLICT(chat_id) DO UPDATE SET lang = excluded.lang",
                (chat_id, lang),
            )


class Subscriptions:
    """Area subscriptions of chats."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def all(self) -> list[Subscription]:
        """Every subscription."""
        rows = await self.db.fetchall(
            "SELECT chat_id, area, min_severity FROM subscriptions ORDER BY chat_id, area"
        )
        return [Subscription(r[0], r[1], r[2]) for r in rows]

    async def subscribe(self, sub: Subscription) -> None:
        """Add or change one subscription."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO subscriptions (chat_id, area, min_severity) VALUES (?, ?, ?) "
                "ON CONFLICT(chat_id, area) DO UPDATE SET min_severity = excluded.min_severity",
                (sub.chat_id, sub.area, sub.min_severity),
            )

    async def unsubscribe(self, chat_id: int, area: str | None = None) -> list[str]:
        """Remove one subscription (or all of the chat's); returns the areas removed."""
        async with self.db.transaction() as conn:
            if area is None:
                cur = await conn.execute(
                    "SELECT area FROM subscriptions WHERE chat_id = ?", (chat_id,)
                )
            else:
                cur = await conn.execute(
                    "SELECT area FROM subscriptions WHERE chat_id = ? AND area = ?",
                    (chat_id, area),
                )
            areas = [r[0] for r in await cur.fetchall()]
            await conn.executemany(
                "DELETE FROM subscriptions WHERE chat_id = ? AND area = ?",
                [(chat_id, a) for a in areas],
            )
        return areas


class BotMessages:
    """Message ids the bot keeps: incident thread roots and each chat's pinned status message."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def threads(self, chat_id: int) -> list[tuple[str, int, datetime, bool]]:
        """A chat's open threads: (key, root message id, when sent, root carries it alone)."""
        rows = await self.db.fetchall(
            "SELECT key, message_id, opened_at, single FROM bot_threads WHERE chat_id = ?",
            (chat_id,),
        )
        return [(r[0], r[1], datetime.fromisoformat(r[2]), bool(r[3])) for r in rows]

    async def set_threads(
        self,
        chat_id: int,
        opened: Sequence[tuple[str, int, bool]],
        ended: Sequence[str],
        at: datetime,
    ) -> None:
        """Store new roots (key, message id, single) and forget ended threads, at once."""
        async with self.db.transaction() as conn:
            await conn.executemany(
                "DELETE FROM bot_threads WHERE chat_id = ? AND key = ?",
                [(chat_id, k) for k in ended],
            )
            await conn.executemany(
                "INSERT INTO bot_threads (chat_id, key, message_id, opened_at, single) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(chat_id, key) DO UPDATE SET "
                "message_id = excluded.message_id, opened_at = excluded.opened_at, "
                "single = excluded.single",
                [(chat_id, k, m, ts(at), int(s)) for k, m, s in opened],
            )

    async def status_message(self, chat_id: int) -> tuple[int, str] | None:
        """The chat's status message id and the text it shows, if there is one."""
        rows = await self.db.fetchall(
            "SELECT message_id, text FROM bot_status_messages WHERE chat_id = ?", (chat_id,)
        )
        return (rows[0][0], rows[0][1]) if rows else None

    async def set_status_message(
        self, chat_id: int, message_id: int | None, text: str, at: datetime
    ) -> None:
        """Store the chat's status message (None: forget it, e.g. it was deleted)."""
        async with self.db.transaction() as conn:
            if message_id is None:
                await conn.execute("DELETE FROM bot_status_messages WHERE chat_id = ?", (chat_id,))
                return
            await conn.execute(
                "INSERT INTO bot_status_messages (chat_id, message_id, text, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(chat_id) DO UPDATE SET "
                "message_id = excluded.message_id, text = excluded.text, "
                "updated_at = excluded.updated_at",
                (chat_id, message_id, text, ts(at)),
            )
