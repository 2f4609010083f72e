"""The commit feed: what each durable change did, told to live readers after it is stored.

The engine publishes one `Commit` per group commit (state changes and the notifications it
stored, with their ids); the read-flag writes publish `ReadMark`. Subscribers are plain
callables run on the event loop: they must return at once (queue the item, never await or
block), so a slow reader can never slow the writer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from monitor.model import Event, Ont, OntState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Notice:
    """A notification as stored: its id, the event and the ONT it is about (if any)."""

    id: int
    event: Event
    ont: Ont | None


@dataclass(frozen=True, slots=True)
class Commit:
    """One durable commit: ONTs whose inventory or state changed, removed ONTs, notifications."""

    seq: int
    at: datetime
    changed: tuple[tuple[Ont, OntState], ...] = ()
    deleted: tuple[str, ...] = ()
    notices: tuple[Notice, ...] = ()
    areas: tuple[str, ...] = ()  # areas whose mass outage opened, changed or ended

    @property
    def events(self) -> list[tuple[Event, Ont | None]]:
        """The committed events with their ONTs, in order (what alert sinks take)."""
        return [(n.event, n.ont) for n in self.notices]


@dataclass(frozen=True, slots=True)
class ReadMark:
    """Notifications marked read: these ids, or every one when ids is None."""

    at: datetime
    ids: tuple[int, ...] | None = None
    count: int = 0


FeedItem = Commit | ReadMark
Subscriber = Callable[[FeedItem], None]


class Feed:
    """Fan-out of feed items to subscribers; one failing subscriber never stops the others."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self.seq = 0  # the last commit's sequence number

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Start telling subscriber every item; returns the function that stops it."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def next_seq(self) -> int:
        """The sequence number of the commit being published."""
        self.seq += 1
        return self.seq

    def publish(self, item: FeedItem) -> None:
        """Tell every subscriber, in subscription order."""
        for subscriber in list(self._subscribers):
            try:
                subscriber(item)
            except Exception:
                log.exception("feed subscriber %r failed", subscriber)
