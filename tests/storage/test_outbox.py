"""storage.outbox on a real SQLite file: subscriptions and chat languages persist."""

from __future__ import annotations

from storage.database import Database
from storage.outbox import ChatPrefs, OutboxStore, Subscription, Subscriptions


async def test_subscriptions_and_langs_persist(db: Database) -> None:
    subs = Subscriptions(db)
    await subs.subscribe(Subscription(5, "Baciro"))
    await subs.subscribe(Subscription(5, "Baciro", "critical"))
    await subs.subscribe(Subscription(5, "Kota"))
    assert [(s.area, s.min_severity) for s in await subs.all()] == [
        ("Baciro", "critical"),
        ("Kota", "warning"),
    ]
    assert await subs.unsubscribe(5, "Kota") == ["Kota"]
    assert await subs.unsubscribe(5) == ["Baciro"]
    prefs = ChatPrefs(db)
    await prefs.set_lang(5, "en")
    await prefs.set_lang(5, "id")
    assert await prefs.langs() == {5: "id"}
    assert await OutboxStore(db).pending() == []
