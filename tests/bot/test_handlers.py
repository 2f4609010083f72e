"""Every command through real PTB and the fake Bot API; assertions on what the bot sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import keyboards
from maps.render import MapRenderer
from monitor.model import EventKind, Ont, Status
from tests.fakes.bot_api import parse_html
from tests.fakes.tile_server import TileServer

from .conftest import GROUP, STRANGER, USER, Harness, Start

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


async def offline_two(h: Harness) -> None:
    await h.push("1", Status.OFF, 0)
    h.clock.advance(minutes=30)
    await h.push("3", Status.OFF, 2)
    h.clock.advance(minutes=15)


async def test_commands_menu_set_in_both_languages(start_bot: Start) -> None:
    h = await start_bot()
    keys = list(h.fake.commands)
    assert any('"id"' in k for k in keys) and any('"en"' in k for k in keys)
    names = [c["command"] for c in next(iter(h.fake.commands.values()))]
    assert {"start", "status", "offline", "map", "ont", "mute", "subscribe", "lang"} <= set(names)


async def test_start_shows_chat_id_and_access(start_bot: Start) -> None:
    h = await start_bot()
    sent = await h.command("/start")
    assert str(USER) in sent.visible_text and "allowed" in sent.visible_text
    group = await h.command("/start", chat=GROUP)
    assert "alert chat" in group.visible_text


async def test_stranger_gets_one_refusal_with_chat_id_and_no_data(start_bot: Start) -> None:
    h = await start_bot()
    await offline_two(h)
    sent = await h.command("/offline", chat=STRANGER)
    assert str(STRANGER) in sent.visible_text
    assert "Baciro" not in sent.visible_text and "Pos" not in sent.visible_text
    # The next tries (commands, a location, a button) get no second message.
    h.fake.push_message(STRANGER, "/status")
    h.fake.push_location(STRANGER, -7.79, 110.38)
    h.fake.push_callback(STRANGER, keyboards.encode(keyboards.ACK, "1"), 1)
    await h.fake.wait_for(lambda c: c.method.lower() == "answercallbackquery", timeout=10)
    assert len(h.fake.messages_to(STRANGER)) == 1
    answer = h.fake.calls("answerCallbackQuery")[-1]
    assert str(STRANGER) in answer.params["text"]
    # The button did not act on the ONT.
    assert h.engine.states["1"].incident is not None
    assert h.engine.states["1"].incident.acked_at is None


async def test_allowed_user_in_a_foreign_group_is_answered(start_bot: Start) -> None:
    h = await start_bot()
    sent = await h.command("/help", chat=-555, user_id=USER)
    assert "/status" in sent.visible_text


async def test_help_in_english_and_indonesian(start_bot: Start) -> None:
    h = await start_bot()
    assert "Commands" in (await h.command("/help")).visible_text
    assert "Bahasa: Indonesia" in (await h.command("/lang id")).visible_text
    sent = await h.command("/help")
    assert "Perintah" in sent.visible_text
    bad = await h.command("/lang fr")
    assert "/lang id|en" in bad.visible_text


async def test_status_counts_and_worst_areas(start_bot: Start) -> None:
    h = await start_bot()
    await offline_two(h)
    text = (await h.command("/status")).visible_text
    assert "Total 4" in text and "offline 2" in text and "online 2" in text
    assert "Worst areas" in text and "Baciro: 1/2 offline" in text
    assert "Kota Baru: 1/2 offline" in text


async def test_offline_longest_first_and_html_name_escaped(start_bot: Start) -> None:
    h = await start_bot()
    await offline_two(h)
    sent = await h.command("/offline")
    text = sent.visible_text
    assert text.index("Baciro RT 1") < text.index('Pos <RT 01> & "RW" 02')
    assert "(45 min)" in text and "(15 min)" in text and "rto 2" in text
    assert "&lt;RT 01&gt;" in sent.text  # escaped in what was sent, shown plainly


async def test_offline_paginates_with_edit(start_bot: Start) -> None:
    from monitor.model import Ont

    onts = [Ont(id=str(i), name=f"ONT {i}", area="A") for i in range(1, 26)]
    h = await start_bot(onts=onts)
    for i in range(1, 26):
        await h.push(str(i), Status.OFF, 0)
        h.clock.advance(minutes=1)
    sent = await h.command("/offline")
    assert "page 1/3" in sent.visible_text
    assert sent.callback_data == ["o:1", "o:2"]
    h.fake.push_callback(USER, "o:2", sent.message_id)
    # (the fake edits its stored message in place, so look at the edit call itself)
    edit = await h.fake.wait_for(lambda c: c.method == "editMessageText", timeout=10)
    assert "page 2/3" in edit.params["text"]
    assert "ONT 11" in edit.params["text"] and "ONT 1 " not in edit.params["text"]
    assert edit.callback_data == ["o:1", "o:2", "o:3"]


async def test_ont_details_history_location_and_buttons(start_bot: Start) -> None:
    h = await start_bot()
    await h.push("3", Status.OFF, 2)
    sent = await h.command("/ont 3")
    assert 'Pos <RT 01> & "RW" 02' in sent.visible_text
    assert "Jl. <b>Mawar</b> & co" in sent.visible_text
    assert "History" in sent.visible_text and "OFF rto 2" in sent.visible_text
    assert sent.callback_data == ["a:3", "m:3", "p:3", "l:3"]
    pin = await h.fake.wait_for(lambda c: c.method == "sendLocation", timeout=10)
    assert pin.params["latitude"] == pytest.approx(-7.78)
    link = await h.fake.wait_for_message(USER, "Google Maps", timeout=10)
    assert "destination=-7.780000,110.370000" in link.text
    assert "&amp;destination" in link.text


async def test_ont_unknown_and_missing_arg(start_bot: Start) -> None:
    h = await start_bot()
    assert "No ONT with id <nope>" in (await h.command("/ont <nope>")).visible_text
    assert "Usage: /ont ID" in (await h.command("/ont")).visible_text


async def test_history_all_and_one(start_bot: Start) -> None:
    h = await start_bot()
    await h.push("2", Status.OFF, 1)
    text = (await h.command("/history")).visible_text
    assert "2: OFF rto 1" in text
    one = (await h.command("/history 2")).visible_text
    assert "Baciro RT 2 (id 2)" in one and "OFF rto 1" in one
    assert "No ONT with id 99" in (await h.command("/history 99")).visible_text


async def test_ack_command_and_button(start_bot: Start) -> None:
    h = await start_bot()
    await h.push("1", Status.OFF, 0)
    assert "no open incident" in (await h.command("/ack 2")).visible_text
    assert "acknowledged" in (await h.command("/ack 1")).visible_text
    assert h.engine.states["1"].incident.acked_by == f"Tester {USER} ({USER})"
    again = await h.command("/ack 1")
    assert "already acknowledged" in again.visible_text
    assert "No ONT with id 42" in (await h.command("/ack 42")).visible_text


async def test_mute_ont_and_area_and_bad_duration(start_bot: Start) -> None:
    h = await start_bot()
    sent = await h.command("/mute 1 30m")
    assert "muted until" in sent.visible_text and "(30 min)" in sent.visible_text
    assert h.engine.mutes["ont:1"].until == h.clock() + __import__("datetime").timedelta(minutes=30)
    area = await h.command("/mute kota baru 2d")
    assert "Area Kota Baru muted" in area.visible_text
    assert "area:Kota Baru" in h.engine.mutes
    bad = await h.command("/mute 2 soon")
    assert "Cannot read the duration soon" in bad.visible_text and "30m" in bad.visible_text
    assert "ont:2" not in h.engine.mutes
    too_long = await h.command("/mute 2 90d")
    assert "at most 30d" in too_long.visible_text and "ont:2" not in h.engine.mutes
    unknown = await h.command("/mute Nowhere 1h")
    assert "neither an ONT id nor an area" in unknown.visible_text
    assert "Usage: /mute" in (await h.command("/mute 1")).visible_text


async def test_unmute_lists_and_lifts(start_bot: Start) -> None:
    h = await start_bot()
    assert "Nothing is muted" in (await h.command("/unmute")).visible_text
    await h.command("/mute baciro 1h")
    listing = await h.command("/unmute")
    assert "Area Baciro until" in listing.visible_text
    assert "silence lifted" in (await h.command("/unmute BACIRO")).visible_text
    assert "area:Baciro" not in h.engine.mutes
    assert "is not muted" in (await h.command("/unmute 1")).visible_text


async def test_subscribe_routes_area_alerts_to_the_chat(start_bot: Start) -> None:
    h = await start_bot()
    sent = await h.command("/subscribe kota baru critical")
    assert "Kota Baru" in sent.visible_text and "CRITICAL" in sent.visible_text
    assert "Unknown area" in (await h.command("/subscribe Mars")).visible_text
    assert "Unknown level" in (await h.command("/subscribe Baciro urgent")).visible_text
    assert "Usage" in (await h.command("/subscribe")).visible_text
    # warning in Kota Baru: not for this chat (min critical); critical: yes, and its recovery.
    await h.push("3", Status.OFF, 1)
    await h.push("3", Status.OFF, 3)
    await h.push("3", Status.ON, 0)
    await h.fake.wait_for_message(USER, "RECOVERED", timeout=10)
    told = "\n".join(t for t in h.fake.texts_to(USER) if "Pos <RT 01>" in t)
    assert "WARNING" not in told  # below this chat's minimum
    assert told.index("escalated to CRITICAL") < told.index("RECOVERED")
    stored = await h.runtime.subs.all()
    assert [(s.chat_id, s.area, s.min_severity) for s in stored] == [
        (USER, "Kota Baru", "critical")
    ]
    done = await h.command("/unsubscribe")
    assert "Kota Baru" in done.visible_text
    assert h.runtime.router.subscribers("Kota Baru") == {}
    assert "No subscriptions" in (await h.command("/unsubscribe")).visible_text


async def test_location_lists_nearest_offline_with_navigation(start_bot: Start) -> None:
    h = await start_bot()
    await offline_two(h)
    h.fake.push_location(USER, -7.7901, 110.3801)
    sent = await h.fake.wait_for_message(USER, "Nearest offline", timeout=10)
    text = sent.visible_text
    assert text.index("Baciro RT 1") < text.index("Pos <RT 01>")
    assert (
        "https://www.google.com/maps/dir/?api=1&amp;destination=-7.790000,110.380000" in sent.text
    )
    parse_html(sent.text)  # well-formed HTML for Telegram


async def test_map_sends_a_photo(start_bot: Start, tmp_path: Path) -> None:
    async with TileServer() as tiles:
        renderer = MapRenderer(tiles.url_template, tmp_path / "tiles", user_agent="ontwatch-test")
        try:
            h = await start_bot(renderer=renderer)
            await offline_two(h)
            h.fake.push_message(USER, "/map offline")
            photo = await h.fake.wait_for(lambda c: c.method == "sendPhoto", timeout=20)
            assert photo.photo is not None and photo.photo.startswith(b"\x89PNG")
            assert "2 offline of 2" in photo.visible_text
            assert tiles.count > 0  # drawn on the local tiles
            bad = await h.command("/map Atlantis")
            assert "neither an area nor an ONT id" in bad.visible_text
        finally:
            await renderer.close()


class BrokenRenderer:
    """A map renderer that fails, as maps does when it cannot draw."""

    async def render(self, *args: object, **kw: object) -> bytes:
        raise RuntimeError("no tiles, no fallback")


async def test_map_falls_back_to_text(start_bot: Start) -> None:
    h = await start_bot(renderer=BrokenRenderer())
    await offline_two(h)
    sent = await h.command("/map baciro")
    assert sent.method == "sendMessage"
    assert "map is not available" in sent.visible_text and "Baciro RT 1" in sent.visible_text


async def test_buttons_with_long_id_fit_and_act(start_bot: Start) -> None:
    h = await start_bot()
    long_id = "X" * 80
    await h.push(long_id, Status.OFF, 0)
    alert = await h.fake.wait_for_message(GROUP, "Long id ONT", timeout=10)
    assert all(len(d.encode()) <= 64 for d in alert.callback_data)
    ack = next(d for d in alert.callback_data if d.startswith("a:"))
    h.fake.push_callback(GROUP, ack, alert.message_id, user_id=USER)
    await h.fake.wait_for_message(GROUP, "acknowledged", timeout=10)
    assert h.engine.states[long_id].incident.acked_at is not None
    mute = next(d for d in alert.callback_data if d.startswith("m:"))
    h.fake.push_callback(GROUP, mute, alert.message_id)
    await h.fake.wait_for_message(GROUP, "muted until", timeout=10)
    assert f"ont:{long_id}" in h.engine.mutes


async def test_location_button_sends_pin(start_bot: Start) -> None:
    h = await start_bot()
    h.fake.push_callback(USER, "l:2", 1)
    pin = await h.fake.wait_for(lambda c: c.method == "sendLocation", timeout=10)
    assert pin.params["longitude"] == pytest.approx(110.381)
    h.fake.push_callback(USER, "a:gone", 1)
    await h.fake.wait_for(
        lambda c: c.method == "answerCallbackQuery" and "no longer" in c.params.get("text", ""),
        timeout=10,
    )


async def test_mass_outage_reminds_until_acknowledged_by_button_or_command(
    start_bot: Start,
) -> None:
    six = [
        Ont(id=str(i), name=f"Gejayan {i}", area="Gejayan", ip=f"127.0.3.{i}") for i in range(1, 7)
    ] + [Ont(id="7", name="Sagan 7", area="Sagan", ip="127.0.3.7")]
    h = await start_bot(onts=six)
    for i in range(1, 4):  # 3 of 6: half the area
        await h.push(str(i), Status.OFF, 0)
    alert = await h.fake.wait_for_message(GROUP, "MASS OUTAGE", timeout=10)
    assert alert.callback_data == ["aa:Gejayan", "ma:Gejayan", "pa:Gejayan"]
    h.clock.advance(minutes=61)
    assert [e.kind for e in await h.engine.tick() if not e.ont_id] == [EventKind.REMINDER]
    reminder = await h.fake.wait_for_message(GROUP, "Reminder: MASS OUTAGE", timeout=10)
    assert "3 ONTs still down after 1 h 1 min" in reminder.visible_text
    assert "Gejayan 1 (id 1)" in reminder.visible_text
    h.fake.push_callback(GROUP, "aa:Gejayan", reminder.message_id, user_id=USER)
    await h.fake.wait_for_message(GROUP, "Mass outage in Gejayan acknowledged", timeout=10)
    assert h.engine.outages["Gejayan"].acked_by == f"Tester {USER} ({USER})"
    status = (await h.command("/status")).visible_text
    assert "Mass outages" in status and "Gejayan: 3 ONTs since" in status
    assert f"acknowledged by Tester {USER}" in status
    assert "already acknowledged by Tester" in (await h.command("/ack gejayan")).visible_text
    assert "No open mass outage in Sagan" in (await h.command("/ack sagan")).visible_text
    h.clock.advance(minutes=61)
    assert [e for e in await h.engine.tick() if not e.ont_id] == []
    assert await h.runtime.sink.idle(10)
    assert sum("Reminder: MASS OUTAGE" in t for t in h.fake.texts_to(GROUP)) == 1
