"""What the engine needs from outside, as Protocols; storage/ and ontwatch/ provide them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from monitor.model import Event, Ont, OntState, Reason, Severity, Source, Status
from monitor.outages import MassOutage

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One applied observation or state change, for an ONT's history."""

    ont_id: str
    at: datetime
    source: Source
    status: Status
    rto_count: int
    severity: Severity
    reason: Reason


@dataclass(frozen=True, slots=True)
class Mute:
    """A silence on one ONT (target "ont:<id>") or one area ("area:<name>")."""

    target: str
    until: datetime
    by: str = ""


@dataclass(slots=True)
class Batch:
    """Everything one group commit writes, in one transaction."""

    onts: dict[str, Ont] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    states: dict[str, OntState] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)
    alerts: list[tuple[Event, Ont | None, tuple[int, ...]]] = field(default_factory=list)
    mutes: dict[str, Mute | None] = field(default_factory=dict)  # None = remove
    outages: dict[str, MassOutage | None] = field(default_factory=dict)  # by area; None = ended
    # ONTs whose undelivered opened/escalated messages are now folded into a mass outage
    folded: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(
            self.onts
            or self.deleted
            or self.states
            or self.history
            or self.alerts
            or self.mutes
            or self.outages
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the engine loads at start-up."""

    onts: list[Ont]
    states: list[OntState]
    mutes: list[Mute] = field(default_factory=list)
    outages: list[MassOutage] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Notification:
    """A stored notification (one event)."""

    id: int
    created_at: datetime
    kind: str
    severity: str
    ont_id: str
    area: str
    message: str
    payload: dict[str, Any]
    read: bool


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One line of an ONT's history."""

    id: int
    ont_id: str
    at: datetime
    source: str
    status: str
    rto_count: int
    severity: str
    reason: Reason  # an old stored text reads back as a legacy reason


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One undelivered message-to-be: a stored event for one chat."""

    id: int
    notification_id: int
    chat_id: int
    attempts: int
    event: Event
    payload: dict[str, Any]  # the stored event JSON, with an "ont" dict when about one ONT


@dataclass(frozen=True, slots=True)
class Subscription:
    """A chat that wants the alerts of one area from a minimum severity up."""

    chat_id: int
    area: str
    min_severity: str = "warning"


class StoreDown(RuntimeError):
    """The store cannot write now (disk full, I/O error, locked, corrupt): no batch would succeed.

    Store.commit raises it for faults of the storage itself; any other exception from commit
    is taken as caused by the batch's data, and the engine retries the jobs apart to find it.
    """


class Store(Protocol):
    """Durable state behind the engine."""

    async def load(self) -> Snapshot:
        """Inventory, live states, mutes and open mass outages, at start-up."""
        ...

    async def commit(self, batch: Batch) -> Sequence[int]:
        """Write the batch in one transaction; raise if it could not be made durable.

        Returns the ids given to the batch's notifications, in the order of batch.alerts.
        """
        ...


class Router(Protocol):
    """Which chats receive an event."""

    def chats_for(self, event: Event) -> tuple[int, ...]:
        """Chat ids that must get a message for this event."""
        ...


class StaticRouter:
    """Every notified event goes to the same alert chats."""

    def __init__(self, chats: Sequence[int]) -> None:
        self._chats = tuple(chats)

    def chats_for(self, event: Event) -> tuple[int, ...]:
        """All alert chats, when the event is to be told at all."""
        return self._chats if event.notify else ()


class AlertSink(Protocol):
    """Told about events after they are durably stored (e.g. to log them or wake delivery)."""

    def committed(self, events: Sequence[tuple[Event, Ont | None]]) -> None:
        """Called once per commit with its events."""
        ...


class ReadModel(Protocol):
    """What the API and the bot read."""

    async def onts(
        self, *, status: Status | None = None, area: str | None = None
    ) -> list[tuple[Ont, OntState]]:
        """ONTs with their state."""
        ...

    async def ont(self, ont_id: str) -> tuple[Ont, OntState] | None:
        """One ONT with its state."""
        ...

    async def history(self, ont_id: str | None = None, limit: int = 50) -> list[HistoryRow]:
        """Newest history first."""
        ...

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
        """Newest notifications first; before = only ids below it (keyset paging)."""
        ...

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
        """How many notifications match the filters."""
        ...

    async def unread_count(self) -> int:
        """How many notifications are unread."""
        ...

    async def notifications_by_id(self, ids: list[int]) -> list[Notification]:
        """These stored notifications, oldest first."""
        ...

    async def unread_horizon(self) -> tuple[int, int]:
        """The unread count and the highest notification id, from one snapshot."""
        ...

    async def stats(self) -> dict[str, Any]:
        """Counts for the dashboard."""
        ...

    async def mark_read(self, notification_id: int | None = None) -> int:
        """Mark one or all notifications read."""
        ...

    async def notification_exists(self, notification_id: int) -> bool:
        """Whether the notification exists."""
        ...


class AgentBoard(Protocol):
    """The probe agents as the read side sees them (monitor.agents.AgentDesk)."""

    def statuses(self) -> Sequence[Any]:
        """Every configured agent's monitor.agents.AgentStatus, in name order."""
        ...

    def assigned(self) -> frozenset[str]:
        """Ids of the ONTs an agent sweeps (the central prober leaves them alone)."""
        ...

    async def refresh(self) -> None:
        """Bring assigned() up to date with the inventory committed so far."""
        ...
