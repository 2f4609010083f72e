"""What the bot needs from storage, as Protocols; storage/outbox.py provides them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Protocol

from monitor.ports import OutboxRow, Subscription


class Outbox(Protocol):
    """Pending messages and what delivery did with them."""

    async def pending(self, chat_id: int | None = None, limit: int = 1000) -> list[OutboxRow]:
        """Pending rows in order, optionally of one chat."""
        ...

    async def pending_chats(self) -> list[int]:
        """Chats with pending rows."""
        ...

    async def mark_sent(self, ids: Sequence[int], message_id: int | None, at: datetime) -> None:
        """Rows delivered as one message."""
        ...

    async def mark_failed(self, ids: Sequence[int], reason: str, at: datetime) -> None:
        """Rows that can never be delivered, and why."""
        ...

    async def record_attempt(self, ids: Sequence[int], error: str, next_at: datetime) -> None:
        """A failed attempt, to be retried."""
        ...

    async def claim(self, ids: Sequence[int], epoch: int, at: datetime) -> bool:
        """Claim rows under the leader's epoch before sending; False: a newer epoch holds one."""
        ...

    async def in_flight(self, epoch: int) -> list[int]:
        """Pending rows claimed by this epoch or an older one (an earlier run's sends)."""
        ...


class ChatLanguages(Protocol):
    """Per-chat language choice."""

    async def langs(self) -> dict[int, str]:
        """Every chat's chosen language."""
        ...

    async def set_lang(self, chat_id: int, lang: str) -> None:
        """Store a chat's language."""
        ...


class AreaSubscriptions(Protocol):
    """Chats' area subscriptions."""

    async def all(self) -> list[Subscription]:
        """Every subscription."""
        ...

    async def subscribe(self, sub: Subscription) -> None:
        """Add or change one."""
        ...

    async def unsubscribe(self, chat_id: int, area: str | None = None) -> list[str]:
        """Remove one (or all of a chat's); the areas removed."""
        ...


class MessageIds(Protocol):
    """Message ids the bot keeps: incident thread roots, each chat's pinned status message."""

    async def threads(self, chat_id: int) -> list[tuple[str, int, datetime, bool]]:
        """A chat's open threads: (key, root message id, when sent, root carries it alone)."""
        ...

    async def set_threads(
        self,
        chat_id: int,
        opened: Sequence[tuple[str, int, bool]],
        ended: Sequence[str],
        at: datetime,
    ) -> None:
        """Store new roots and forget ended threads."""
        ...

    async def status_message(self, chat_id: int) -> tuple[int, str] | None:
        """The chat's status message id and its text."""
        ...

    async def set_status_message(
        self, chat_id: int, message_id: int | None, text: str, at: datetime
    ) -> None:
        """Store (or, with None, forget) the chat's status message."""
        ...


@dataclass(frozen=True, slots=True)
class BotStores:
    """The bot's storage, wired by ontwatch/."""

    outbox: Outbox
    prefs: ChatLanguages
    subs: AreaSubscriptions
    messages: MessageIds | None = None


@dataclass(frozen=True, slots=True)
class BotConfig:
    """The settings the bot uses (built from ontwatch's Settings by the wiring)."""

    token: str
    api_url: str
    alert_chats: tuple[int, ...]
    allowed: frozenset[int]
    lang: str
    tz: tzinfo
    group_wait: float
    status_message: bool = True  # a pinned, self-updating status message in each alert group
    status_message_off: frozenset[int] = frozenset()  # alert groups that want none
    status_every: float = 30.0  # seconds: the status message is edited at most this often
    edit_window: float = 300.0  # seconds: an escalation this soon edits the opening message
