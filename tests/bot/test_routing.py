"""Routing: alert chats, plus area subscribers from their minimum severity; follow-ups to all."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.routing import SubscriptionRouter
from monitor.model import Event, EventKind, Severity
from monitor.ports import Subscription

AT = datetime(2026, 1, 1, tzinfo=UTC)


def ev(kind: EventKind, sev: Severity, area: str = "Baciro", notify: bool = True) -> Event:
    return Event(kind, sev, AT, "", "1", area, notify=notify)


def test_routes_by_area_and_severity() -> None:
    r = SubscriptionRouter([-1], [Subscription(5, "baciro", "critical"), Subscription(6, "Baciro")])
    assert r.chats_for(ev(EventKind.OPENED, Severity.WARNING)) == (-1, 6)
    assert r.chats_for(ev(EventKind.ESCALATED, Severity.CRITICAL)) == (-1, 5, 6)
    assert r.chats_for(ev(EventKind.RESOLVED, Severity.WARNING)) == (-1, 5, 6)
    assert r.chats_for(ev(EventKind.OPENED, Severity.CRITICAL, area="Other")) == (-1,)
    assert r.chats_for(ev(EventKind.OPENED, Severity.CRITICAL, notify=False)) == ()
    r.remove(5, "BACIRO")
    assert r.chats_for(ev(EventKind.ESCALATED, Severity.CRITICAL)) == (-1, 6)
