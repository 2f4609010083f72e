"""Which chats get an event: the alert chats plus chats subscribed to the event's area."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from monitor.model import Event, EventKind, Severity
from monitor.ports import Subscription

# Follow-ups of something already told: they go to every subscriber of the area whatever its
# minimum severity, so whoever got the opening also gets the all-clear (never lost).
FOLLOW_UPS = frozenset(
    {
        EventKind.RESOLVED,
        EventKind.REMINDER,
        EventKind.MASS_OUTAGE_RESOLVED,
        EventKind.FLAPPING_ENDED,
    }
)


class SubscriptionRouter:
    """monitor.ports.Router: alert chats, then area subscribers; updated in memory by /subscribe."""

    def __init__(self, alert_chats: Sequence[int], subscriptions: Iterable[Subscription] = ()):
        self.alert_chats = tuple(dict.fromkeys(alert_chats))
        # area (casefolded) -> chat -> min severity
        self._subs: dict[str, dict[int, Severity]] = {}
        for sub in subscriptions:
            self.add(sub)

    def add(self, sub: Subscription) -> None:
        """Add or change a subscription."""
        self._subs.setdefault(sub.area.casefold(), {})[sub.chat_id] = Severity(sub.min_severity)

    def remove(self, chat_id: int, area: str) -> None:
        """Forget a subscription."""
        chats = self._subs.get(area.casefold())
        if chats is not None:
            chats.pop(chat_id, None)
            if not chats:
                del self._subs[area.casefold()]

    def subscribers(self, area: str) -> dict[int, Severity]:
        """Chats subscribed to an area, with their minimum severity."""
        return dict(self._subs.get(area.casefold(), {}))

    def chats_for(self, event: Event) -> tuple[int, ...]:
        """Chat ids that must get a message for this event (none when notify is False)."""
        if not event.notify:
            return ()
        chats = list(self.alert_chats)
        if event.area:
            for chat, minimum in self._subs.get(event.area.casefold(), {}).items():
                if event.kind in FOLLOW_UPS or event.severity.rank >= minimum.rank:
                    chats.append(chat)
        return tuple(dict.fromkeys(chats))
