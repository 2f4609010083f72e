"""Alert composition: escaping, Telegram's size limit, big batches as one message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.alerts import compose
from bot.limits import MAX_TEXT, split, trim
from monitor.model import Event, EventKind, Ont, Reason, ReasonCode, Severity, Status
from monitor.ports import OutboxRow
from storage.codec import event_payload
from tests.fakes.bot_api import parse_html

TZ = ZoneInfo("Asia/Jakarta")
AT = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
NASTY = Ont(id="3", name='Pos <RT 01> & "RW" 02', area="A&B <x>", lat=-7.7, lon=110.3)


def row(i: int, event: Event, ont: Ont | None) -> OutboxRow:
    return OutboxRow(i, i, -100, 0, event, event_payload(event, ont))


def opened(ont: Ont) -> Event:
    return Event(
        EventKind.OPENED,
        Severity.WARNING,
        AT,
        Reason(ReasonCode.WENT_OFF),
        ont.id,
        ont.area,
        Status.OFF,
        0,
    )


def test_single_alert_escaped_with_buttons() -> None:
    (msg,) = compose(-100, [row(1, opened(NASTY), NASTY)], "en", TZ, lambda _: None)
    visible, _ = parse_html(msg.text)
    assert 'Pos <RT 01> & "RW" 02' in visible and "A&B <x>" in visible and "08:00 WIB" in visible
    assert msg.row_ids == (1,)
    assert msg.markup is not None


def test_resolved_states_duration_in_both_languages() -> None:
    ev = Event(
        EventKind.RESOLVED,
        Severity.WARNING,
        AT,
        Reason(ReasonCode.RECOVERED),
        "3",
        "A",
        Status.ON,
        0,
        duration=timedelta(hours=2, minutes=15),
    )
    (en,) = compose(-100, [row(1, ev, NASTY)], "en", TZ, lambda _: None)
    (id_,) = compose(-100, [row(1, ev, NASTY)], "id", TZ, lambda _: None)
    assert "RECOVERED" in en.text and "2 h 15 min" in en.text
    assert "PULIH" in id_.text and "2 jam 15 mnt" in id_.text


def test_five_hundred_events_are_one_message_within_the_limit() -> None:
    onts = [Ont(id=str(i), name=f"Rumah <{i}>", area="Baciro") for i in range(500)]
    rows = [row(i + 1, opened(o), o) for i, o in enumerate(onts)]
    (msg,) = compose(-100, rows, "en", TZ, lambda _: None)
    assert len(msg.text) <= MAX_TEXT and len(msg.row_ids) == 500
    visible, _ = parse_html(msg.text)
    assert "500 changes" in visible and "more (see /offline)" in visible


def test_mass_outage_lists_first_members_and_counts_the_rest() -> None:
    members = tuple(str(i) for i in range(40))
    ev = Event(
        EventKind.MASS_OUTAGE,
        Severity.CRITICAL,
        AT,
        Reason.of(ReasonCode.MASS_OUTAGE, count=40, size=50, window_s=120),
        area="Baciro",
        members=members,
    )
    names = {str(i): Ont(id=str(i), name=f"RT <{i}>", area="Baciro") for i in range(40)}
    (msg,) = compose(-100, [row(1, ev, None)], "en", TZ, names.get)
    visible, _ = parse_html(msg.text)
    assert "MASS OUTAGE" in visible and "RT <0> (id 0)" in visible and "and 25 more" in visible
    assert "40 of 50 ONTs OFF within 2 min" in visible
    assert msg.markup is not None  # mute area / map area


def test_area_reminder_in_both_languages_with_the_area_buttons() -> None:
    ev = Event(
        EventKind.REMINDER,
        Severity.CRITICAL,
        AT,
        Reason.of(ReasonCode.AREA_REMINDER, down=3, size=6, open_s=7500),
        area="A&B <x>",
        status=Status.OFF,
        members=("1", "2", "3"),
        duration=timedelta(hours=2, minutes=5),
    )
    names = {str(i): Ont(id=str(i), name=f"RT <{i}>", area="A&B <x>") for i in range(1, 4)}
    (en,) = compose(-100, [row(1, ev, None)], "en", TZ, names.get)
    (id_,) = compose(-100, [row(1, ev, None)], "id", TZ, names.get)
    visible, _ = parse_html(en.text)
    assert (
        "Reminder: MASS OUTAGE · A&B <x>" in visible
        and "3 ONTs still down after 2 h 5 min" in visible
    )
    assert "RT <3> (id 3)" in visible
    assert "Pengingat GANGGUAN MASSAL" in id_.text and "sudah 2 jam 5 mnt" in id_.text
    assert en.markup is not None
    data = [b.callback_data for r in en.markup.inline_keyboard for b in r]
    assert data == ["aa:A&B <x>", "ma:A&B <x>", "pa:A&B <x>"]


def test_trim_and_split_respect_the_limit_and_keep_html_valid() -> None:
    text = "<b>x</b> " + "&amp; " * 2000
    cut = trim(text, 100)
    assert len(cut) <= 100
    parse_html(cut)
    parts = split("\n".join(f"<b>line {i}</b> &lt;" for i in range(1000)))
    assert len(parts) > 1 and all(len(p) <= MAX_TEXT for p in parts)
    for p in parts:
        parse_html(p)
