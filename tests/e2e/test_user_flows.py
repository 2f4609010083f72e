"""The real `ontwatch run` process as users meet it: import, simulate, commands, buttons, location."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import (
    GROUP,
    HOTSPOT,
    FakeBotProcess,
    ServiceProcess,
    bot_env,
    figure,
    request,
    wait_until,
)
from tests.process import cli

pytestmark = pytest.mark.e2e
TECH = 5001  # a technician's private chat, on the allowed list
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIVE = ["WARNING", "RECOVERED", "WARNING", "RECOVERED", "CRITICAL"]


@dataclass
class Running:
    """A running service with the hotspot inventory imported, and its fake Telegram."""

    svc: ServiceProcess
    fake: FakeBotProcess
    env: dict[str, str]
    log: Path

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request to the service's HTTP API."""
        return request(self.svc.base, method, path, body)

    def say(self, chat: int, text: str, **kw: Any) -> None:
        """A user writes text in a chat."""
        self.fake.control("push_message", chat_id=chat, text=text, **kw)

    def replies(self, chat: int, method: str = "sendMessage") -> list[dict[str, Any]]:
        """What the bot sent to a chat with one method."""
        return self.fake.sent(chat, method)

    def next_reply(self, chat: int, before: int, method: str = "sendMessage") -> dict[str, Any]:
        """Wait (bounded) for the bot's next call of this kind to the chat."""
        calls = wait_until(
            lambda: (c := self.replies(chat, method))[before:] and c, 20, f"{method} to {chat}"
        )
        return calls[before]


@pytest.fixture
def running(tmp_path: Path, fake_bot: FakeBotProcess, tile_url: str) -> Iterator[Running]:
    """The service with the bot on the fake, the 417-ONT hotspot export imported via the CLI."""
    env = bot_env(tmp_path, fake_bot, tile_url, ONTWATCH_ALLOWED_CHATS=str(TECH))
    log = tmp_path / "service.log"
    svc = ServiceProcess(env, log=log)
    try:
        wait_until(fake_bot.connected, 20, "bot connected")
        done = cli("import", str(HOTSPOT), env=env)
        assert done.returncode == 0, done.stderr
        assert "417 imported" in done.stdout and "0 refused" in done.stdout
        yield Running(svc, fake_bot, env, log)
    finally:
        assert svc.stop() == 0


def blocks_about(texts: list[str], ont_label: str) -> list[str]:
    """The severity word of every alert block about one ONT, in the order they were shown."""
    out = []
    for text in texts:
        for block in text.split("\n\n"):
            if ont_label in block:
                m = re.search(r"\b(WARNING|RECOVERED|CRITICAL|FLAPPING)\b", block)
                out.append(m.group(1) if m else f"?{block[:40]}")
    return out


def test_import_then_simulate_reaches_the_group_in_order(running: Running) -> None:
    """`ontwatch simulate 1`: five alerts for ONT 1 reach the alert group, in order, once each."""
    code, stats = running.api("GET", "/api/stats")
    assert code == 200 and stats["total"] == 417
    done = cli("simulate", "1", "--delay", "0.3", env=running.env)
    assert done.returncode == 0, done.stderr
    assert "through its API" in done.stdout and done.stdout.count("step ") == 5
    label = "Baciro (id 1)"
    wait_until(lambda: len(blocks_about(running.fake.texts(GROUP), label)) >= 5, 20, "five alerts")
    time.sleep(1.0)  # bounded grace: a duplicate would arrive now
    seen = blocks_about(running.fake.texts(GROUP), label)
    figure("E2E simulate", alerts=len(seen), order="/".join(seen))
    assert seen == FIVE
    for call in running.replies(GROUP):
        if label in running.fake.visible(call):
            data = [
                b["callback_data"]
                for row in call["params"]["reply_markup"]["inline_keyboard"]
                for b in row
            ]
            assert data == ["a:1", "m:1", "p:1", "l:1"]
    code, ont = running.api("GET", "/api/onts/1")
    assert code == 200 and ont["status"] == "OFF" and ont["rto_count"] == 3
    assert ont["severity"] == "critical" and ont["incident"]["acked_by"] is None
    assert [h["status"] for h in ont["history"][:5]] == ["OFF", "ON", "OFF", "ON", "OFF"]


def test_commands_map_ont_and_location(running: Running, tile_url: str) -> None:
    """/status, /offline, /map, /ont ID and a shared location answer with the right data."""
    _, stats = running.api("GET", "/api/stats")
    _, offline = running.api("GET", "/api/onts?status=OFF")
    assert offline, "the hotspot export has OFF ONTs"

    n = len(running.replies(TECH))
    running.say(TECH, "/status")
    status = running.fake.visible(running.next_reply(TECH, n))
    assert str(stats["total"]) in status and str(stats["offline"]) in status

    n = len(running.replies(TECH))
    running.say(TECH, "/offline")
    text = running.fake.visible(running.next_reply(TECH, n))
    assert offline[0]["name"] in text

    n = len(running.replies(TECH, "sendPhoto"))
    running.say(TECH, "/map")
    photo = running.next_reply(TECH, n, "sendPhoto")
    file_id = photo["result"]["photo"][-1]["file_id"]
    png = running.fake.file(file_id)
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000

    _, one = running.api("GET", "/api/onts/1")
    n, n_loc = len(running.replies(TECH)), len(running.replies(TECH, "sendLocation"))
    running.say(TECH, "/ont 1")
    details = running.fake.visible(running.next_reply(TECH, n))
    assert "Baciro" in details and "(id 1)" in details
    pin = running.next_reply(TECH, n_loc, "sendLocation")["params"]
    assert (pin["latitude"], pin["longitude"]) == pytest.approx((one["lat"], one["lon"]))
    # The pin is followed by its directions link (replies are paced: about 1 a second a chat).
    assert "(id 1)" in running.fake.visible(running.next_reply(TECH, n + 1))

    target = next(o for o in offline if o["lat"] is not None)
    n = len(running.replies(TECH))
    running.fake.control("push_location", chat_id=TECH, lat=target["lat"], lon=target["lon"])
    nearest = running.fake.visible(running.next_reply(TECH, n))
    assert target["name"] in nearest
    figure(
        "E2E commands", status_total=stats["total"], offline=len(offline), map_png_bytes=len(png)
    )


def test_ack_and_mute_buttons_act_on_the_ont(running: Running) -> None:
    """Ack on the alert message sets acked_by; Mute 1h silences the next problem, not the recovery."""
    label = "Baciro (id 1)"
    code, _ = running.api("POST", "/api/ont-status/1", {"status": "OFF", "rto_count": 3})
    assert code == 200
    alert = wait_until(
        lambda: [c for c in running.replies(GROUP) if label in running.fake.visible(c)],
        20,
        "critical alert",
    )[0]
    buttons = {
        b["text"]: b["callback_data"]
        for row in alert["params"]["reply_markup"]["inline_keyboard"]
        for b in row
    }
    ack, mute = buttons["✅ Ack"], buttons["🔕 Mute 1h"]
    n = len(running.replies(GROUP))
    running.fake.control(
        "push_callback",
        chat_id=GROUP,
        data=ack,
        message_id=alert["message_id"],
        user_id=TECH,
        username="budi_teknisi",
    )
    confirm = running.fake.visible(running.next_reply(GROUP, n))
    assert "(id 1)" in confirm
    _, ont = running.api("GET", "/api/onts/1")
    assert ont["incident"]["acked_by"] and "budi_teknisi" in ont["incident"]["acked_by"]

    n = len(running.replies(GROUP))
    running.fake.control(
        "push_callback",
        chat_id=GROUP,
        data=mute,
        message_id=alert["message_id"],
        user_id=TECH,
        username="budi_teknisi",
    )
    muted = running.fake.visible(running.next_reply(GROUP, n))
    assert "Muted" in muted or "muted" in muted
    # Resolved messages are never lost, even muted; the next problem is silenced.
    before = blocks_about(running.fake.texts(GROUP), label)
    assert running.api("POST", "/api/ont-status/1", {"status": "ON", "rto_count": 0})[0] == 200
    wait_until(
        lambda: len(blocks_about(running.fake.texts(GROUP), label)) > len(before), 20, "recovery"
    )
    assert running.api("POST", "/api/ont-status/1", {"status": "OFF", "rto_count": 1})[0] == 200
    _, notes = running.api("GET", "/api/notifications?ont_id=1&limit=5")
    time.sleep(2.0)  # bounded: group wait 0.2 s + pacing 1 s; a message would be here by now
    after = blocks_about(running.fake.texts(GROUP), label)
    assert after == [*before, "RECOVERED"]
    n = len(running.replies(TECH))
    running.say(TECH, "/ont 1")
    assert "Muted until" in running.fake.visible(running.next_reply(TECH, n))
    figure("E2E buttons", acked_by=ont["incident"]["acked_by"], after_mute=len(after) - len(before))
    assert notes and notes[0]["ont_id"] == "1"
