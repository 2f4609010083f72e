"""Probe-agent alerts: rendered in both languages, routed to the alert chats (not to area
subscribers only), and delivered end to end through the fake Bot API as one message."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.alerts import compose
from bot.routing import SubscriptionRouter
from monitor.model import (
    Event,
    EventKind,
    Observation,
    Ont,
    Reason,
    ReasonCode,
    Severity,
    Status,
)
from monitor.ports import OutboxRow, Subscription
from storage.codec import event_from_payload, event_payload
from tests.bot.conftest import GROUP, USER, Start
from tests.fakes.bot_api import parse_html
from tests.i18n.language import english_in

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

TZ = ZoneInfo("Asia/Jakarta")
AT = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # 08:00 in Jakarta
R = Reason.of


def lost(onts: int = 1240, area: str = "") -> Event:
    why = R(ReasonCode.AGENT_LOST, agent="POP-2", onts=onts, silent_s=45)
    return Event(EventKind.AGENT_LOST, Severity.CRITICAL, AT, why, area=area, agent="POP-2")


def back() -> Event:
    why = R(ReasonCode.AGENT_BACK, agent="POP-2", onts=1240, away_s=200)
    return Event(EventKind.AGENT_BACK, Severity.OK, AT, why, agent="POP-2")


def blind() -> Event:
    why = R(ReasonCode.AGENT_BLIND, agent="POP-2", silent=1200, targets=1240)
    return Event(EventKind.MONITOR_OFFLINE, Severity.CRITICAL, AT, why, agent="POP-2")


def sees() -> Event:
    why = R(ReasonCode.AGENT_SEES, agent="POP-2", replied=1239, targets=1240)
    return Event(EventKind.MONITOR_ONLINE, Severity.OK, AT, why, agent="POP-2")


def stored_row(i: int, event: Event) -> OutboxRow:
    """The row as delivery reads it back: the Event rebuilt from the stored payload."""
    payload = event_payload(event, None)
    return OutboxRow(i, i, -100, 0, event_from_payload(payload), payload)


def text_of(event: Event, lang: str) -> str:
    (msg,) = compose(-100, [stored_row(1, event)], lang, TZ, lambda _: None)
    return parse_html(msg.text)[0]


# event, Indonesian, English (as the chat shows them)
CASES = [
    (
        lost(),
        "📡 AGEN PROBE HILANG · agen probe POP-2 hilang, 1.240 ONT tidak terpantau (diam 45 dtk)"
        " · 27-11-2026 08:00 WIB",
        "📡 PROBE AGENT LOST · probe agent POP-2 lost, 1,240 ONTs unobserved (silent 45 s)"
        " · 27-11-2026 08:00 WIB",
    ),
    (
        back(),
        "✅ Agen probe kembali · agen probe POP-2 kembali, 1.240 ONT terpantau lagi "
        "(hilang 3 mnt 20 dtk) · 27-11-2026 08:00 WIB",
        "✅ Probe agent back · probe agent POP-2 back, 1,240 ONTs observed again "
        "(away 3 min 20 s) · 27-11-2026 08:00 WIB",
    ),
    (
        blind(),
        "🛑 AGEN PROBE TIDAK MELIHAT ONT-NYA · agen probe POP-2 tidak bisa menjangkau ONT-nya: "
        "1.200 dari 1.240 alamat diam dalam satu sapuan; alarm ONT-nya ditahan sampai ada "
        "balasan lagi · 27-11-2026 08:00 WIB",
        "🛑 PROBE AGENT CANNOT SEE ITS ONTS · probe agent POP-2 cannot reach its ONTs: 1,200 of "
        "1,240 addresses silent in one sweep; their alerts are held until replies come back"
        " · 27-11-2026 08:00 WIB",
    ),
    (
        sees(),
        "✅ Agen probe melihat ONT-nya lagi · agen probe POP-2 menjangkau ONT-nya lagi "
        "(1.239 dari 1.240 membalas) · 27-11-2026 08:00 WIB",
        "✅ The probe agent sees its ONTs again · probe agent POP-2 reaches its ONTs again "
        "(1,239 of 1,240 replied) · 27-11-2026 08:00 WIB",
    ),
]


@pytest.mark.parametrize(
    ("event", "id_text", "en_text"), CASES, ids=["lost", "back", "blind", "sees"]
)
def test_agent_alert_texts(event: Event, id_text: str, en_text: str) -> None:
    assert text_of(event, "id") == id_text
    assert text_of(event, "en") == en_text
    assert english_in(id_text) == [], id_text


def test_the_agent_name_round_trips_through_the_stored_payload() -> None:
    for event in (lost(), back(), blind(), sees()):
        assert event_from_payload(event_payload(event, None)) == event
    # A payload written without the "agent" key still gets it from the reason.
    payload = event_payload(lost(), None)
    del payload["agent"]
    assert event_from_payload(payload).agent == "POP-2"
    assert "agent" not in event_payload(
        Event(EventKind.OPENED, Severity.WARNING, AT, R(ReasonCode.WENT_OFF), "1"), None
    )


def test_the_agent_name_is_escaped() -> None:
    why = R(ReasonCode.AGENT_LOST, agent="<b>POP&2</b>", onts=3, silent_s=30)
    event = Event(EventKind.AGENT_LOST, Severity.CRITICAL, AT, why, agent="<b>POP&2</b>")
    (msg,) = compose(-100, [stored_row(1, event)], "en", TZ, lambda _: None)
    assert "&lt;b&gt;POP&amp;2&lt;/b&gt;" in msg.text
    assert "<b>POP" not in msg.text


def test_a_big_batch_shows_the_agent_lost_in_full() -> None:
    """Among hundreds of ONT lines, the agent's alert keeps its whole text (it is the news)."""
    onts = {str(i): Ont(id=str(i), name=f"Rumah {i}", area="Baciro") for i in range(1, 400)}
    rows = [
        OutboxRow(
            i,
            i,
            -100,
            0,
            ev := Event(
                EventKind.OPENED,
                Severity.WARNING,
                AT,
                R(ReasonCode.WENT_OFF),
                str(i),
                "Baciro",
                status=Status.OFF,
                rto_count=2,
            ),
            event_payload(ev, onts[str(i)]),
        )
        for i in range(1, 300)
    ]
    rows.insert(10, stored_row(1000, lost()))
    (msg,) = compose(-100, rows, "en", TZ, onts.get)
    text = parse_html(msg.text)[0]
    assert "PROBE AGENT LOST · probe agent POP-2 lost, 1,240 ONTs unobserved" in text
    assert "300 changes" in text


def test_agent_events_go_to_the_alert_chats() -> None:
    router = SubscriptionRouter([-1, -2], [Subscription(5, "Baciro"), Subscription(6, "Baciro")])
    for event in (lost(), back(), blind(), sees()):
        assert router.chats_for(event) == (-1, -2)
    # Even if an agent event named an area, the alert chats get it (subscribers as usual).
    assert router.chats_for(lost(area="Baciro"))[:2] == (-1, -2)
    assert (
        router.chats_for(
            Event(
                EventKind.AGENT_LOST,
                Severity.CRITICAL,
                AT,
                R(ReasonCode.AGENT_LOST),
                agent="POP-2",
                notify=False,
            )
        )
        == ()
    )


async def test_lost_agent_is_one_alert_and_no_per_ont_messages(start_bot: Start) -> None:
    """Through the real pipeline: the desk's two calls (announce, mark_unobserved) give the
    alert group one "agent lost" message; the ONTs' subscriber gets nothing; the ONTs are
    UNKNOWN. When the agent's replay brings an ONT back OFF, that is an ordinary alert."""
    h = await start_bot(lang="id")
    await h.command("/subscribe Baciro")
    before_user = len(h.fake.texts_to(USER))
    h.clock.advance(seconds=30)
    ids = ["1", "2"]
    await h.engine.announce(replace(lost(onts=len(ids)), at=h.clock()))
    assert await h.engine.mark_unobserved(ids, agent="POP-2") == 2
    await h.fake.wait_for_message(GROUP, "AGEN PROBE HILANG", timeout=10)
    assert await h.runtime.sink.idle(10)
    group = [t for t in h.fake.texts_to(GROUP) if "POP-2" in t]
    assert len(group) == 1 and "2 ONT tidak terpantau" in group[0]
    assert len(h.fake.texts_to(USER)) == before_user  # no per-ONT message to the subscriber
    assert {h.engine.states[i].status for i in ids} == {Status.UNKNOWN}
    # The agent is back and replays: ONT 1 went silent while it was away.
    at = h.clock()
    h.clock.advance(seconds=5)
    await h.engine.ingest_many([Observation.agent("1", 3, at), Observation.agent("2", 0, at)])
    await h.fake.wait_for_message(GROUP, "Baciro RT 1", timeout=10)
    await asyncio.sleep(0)
    assert h.engine.states["1"].status is Status.OFF
    assert h.engine.states["2"].status is Status.ON
