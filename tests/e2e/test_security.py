"""Security checks on the real process: bearer token on writes, no bot token in logs, refusals."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.e2e.harness import (
    GROUP,
    HOTSPOT,
    TOKEN,
    FakeBotProcess,
    ServiceProcess,
    bot_env,
    figure,
    request,
    wait_until,
)
from tests.process import cli
from web.access import required_role

pytestmark = pytest.mark.e2e
API_TOKEN = "s3cret-api-token-for-tests"
TECH = 5001
STRANGER = 7777


def test_bearer_token_required_on_every_write_route(
    tmp_path: Path, fake_bot: FakeBotProcess, tile_url: str
) -> None:
    """Every POST/DELETE route of the OpenAPI document answers 401 without the right token."""
    env = bot_env(tmp_path, fake_bot, tile_url, ONTWATCH_API_TOKEN=API_TOKEN)
    svc = ServiceProcess(env, "--demo", log=tmp_path / "service.log")
    try:
        code, doc = request(svc.base, "GET", "/api/openapi.json")
        assert code == 200
        writes = [
            (method.upper(), path.replace("{id}", "1"))
            for path, ops in doc["paths"].items()
            for method in ops
            if method.upper() in {"POST", "DELETE", "PUT", "PATCH"}
            and required_role(method.upper(), path) is not None  # /login, /logout are public
        ]
        assert len(writes) >= 7
        _, before = request(svc.base, "GET", "/api/onts")
        refused = 0
        for method, path in writes:
            for token in (None, "wrong", API_TOKEN + "x", ""):
                code, body = request(
                    svc.base,
                    method,
                    path,
                    {"status": "OFF", "rto_count": 9, "id": "1"},
                    token=token,
                )
                assert code == 401, (method, path, token, code, body)
                assert body["error"] == "missing or wrong bearer token"
                refused += 1
        _, after = request(svc.base, "GET", "/api/onts")
        assert after == before
        code, _ = request(
            svc.base,
            "POST",
            "/api/ont-status/1",
            {"status": "OFF", "rto_count": 1},
            token=API_TOKEN,
        )
        assert code == 200  # the right token works, so the 401s above mean something
        figure("SECURITY bearer", write_routes=len(writes), refused=refused)
    finally:
        svc.stop()


def test_bot_token_never_in_the_log(
    tmp_path: Path, fake_bot: FakeBotProcess, tile_url: str
) -> None:
    """A run at INFO with commands, alerts and a Telegram outage never logs the token or its secret."""
    env = bot_env(tmp_path, fake_bot, tile_url, ONTWATCH_ALLOWED_CHATS=str(TECH))
    log = tmp_path / "service.log"
    svc = ServiceProcess(env, "--demo", log=log)
    try:
        wait_until(fake_bot.connected, 20, "bot connected")
        for text in ("/start", "/status", "/ont 1", "/offline"):
            fake_bot.control("push_message", chat_id=TECH, text=text)
        fake_bot.wait(count=4, timeout=20, chat_id=TECH, method="sendMessage")
        fake_bot.control("fail_with_status", status=502)
        assert svc.request("POST", "/api/ont-status/1", {"status": "OFF", "rto_count": 4})[0] == 200
        wait_until(
            lambda: any(r["status"] == 502 for r in fake_bot.control("requests")), 20, "a 502"
        )
        fake_bot.control("clear_faults")
        fake_bot.wait(count=1, timeout=20, chat_id=GROUP, method="sendMessage")
    finally:
        assert svc.stop() == 0
    text = log.read_text()
    secret = TOKEN.split(":", 1)[1]
    figure(
        "SECURITY log",
        log_bytes=len(text),
        token_hits=text.count(TOKEN),
        secret_hits=text.count(secret),
    )
    assert len(text) > 1000 and "connected" in text
    assert TOKEN not in text and secret not in text


def test_unauthorised_chat_gets_one_refusal_and_no_ont_data(
    tmp_path: Path, fake_bot: FakeBotProcess, tile_url: str
) -> None:
    """Commands, buttons and a location from a stranger: one refusal, no ONT data, no action."""
    env = bot_env(tmp_path, fake_bot, tile_url, ONTWATCH_ALLOWED_CHATS=str(TECH))
    svc = ServiceProcess(env, log=tmp_path / "service.log")
    try:
        wait_until(fake_bot.connected, 20, "bot connected")
        assert cli("import", str(HOTSPOT), env=env).returncode == 0
        assert svc.request("POST", "/api/ont-status/1", {"status": "OFF", "rto_count": 3})[0] == 200
        alert = fake_bot.wait(
            count=1, timeout=20, chat_id=GROUP, method="sendMessage", contains="(id 1)"
        )[0]
        _, onts = request(svc.base, "GET", "/api/onts")
        commands = [
            "/start",
            "/status",
            "/offline",
            "/map",
            "/ont 1",
            "/history 1",
            "/ack 1",
            "/mute 1 1h",
            "/subscribe Baciro",
            "/lang id",
        ]
        for text in commands:
            fake_bot.control("push_message", chat_id=STRANGER, text=text)
        fake_bot.control("push_location", chat_id=STRANGER, lat=-7.7941922, lon=110.3838668)
        callbacks = ["a:1", "m:1", "p:1", "l:1", "ma:Baciro", "pa:Baciro", "o:1"]
        for data in callbacks:  # buttons copied from the alert, pressed in the stranger's chat
            fake_bot.control(
                "push_callback", chat_id=STRANGER, data=data, message_id=alert["message_id"]
            )
        # Sentinel: updates are handled in order, so once TECH is answered all are done.
        fake_bot.control("push_message", chat_id=TECH, text="/start")
        fake_bot.wait(count=1, timeout=20, chat_id=TECH, method="sendMessage")
        answers = wait_until(
            lambda: (
                (a := [c for c in fake_bot.sent() if c["method"].lower() == "answercallbackquery"])
                and len(a) >= len(callbacks)
                and a
            ),
            20,
            "callback answers",
        )
        time.sleep(0.5)
        to_stranger = fake_bot.sent(STRANGER)
        texts = [fake_bot.visible(c) for c in to_stranger] + [
            str(a["params"].get("text", "")) for a in answers
        ]
        names = {o["name"] for o in onts if len(o["name"]) > 3}
        leaks = [t for t in texts for n in names if n in t]
        leaks += [t for t in texts if re.search(r"\(id \d+\)|\b127\.\d+\.\d+\.\d+\b", t)]
        figure(
            "SECURITY stranger",
            updates=len(commands) + 1 + len(callbacks),
            messages=len(to_stranger),
            callback_answers=len(answers),
            leaks=len(leaks),
        )
        assert [c["method"] for c in to_stranger] == ["sendMessage"]
        assert str(STRANGER) in fake_bot.visible(to_stranger[0])
        assert all(a["params"].get("show_alert") for a in answers)
        assert leaks == []
        _, one = request(svc.base, "GET", "/api/onts/1")
        assert one["incident"]["acked_by"] is None  # the Ack button did nothing
        code, _ = request(svc.base, "GET", "/api/onts/1")
        assert code == 200
        fake_bot.control("push_message", chat_id=TECH, text="/ont 1")
        details = fake_bot.wait(count=1, timeout=20, chat_id=TECH, contains="(id 1)")[0]
        assert "Muted until" not in fake_bot.visible(details)  # nor did Mute
    finally:
        assert svc.stop() == 0
