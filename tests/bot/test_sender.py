"""The one sender: error classes, replies ahead of alerts, answers in order, nothing lost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)

from bot.send_errors import Action, classify
from bot.sender import Pacer, Priority, Sender, SenderClosed
from monitor.model import Status
from storage.outbox import OutboxStore
from tests.e2e.harness import figure
from tests.fakes.bot_api import FakeBotApi

from .conftest import GROUP, USER, Start, VirtualTime

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


@pytest.mark.parametrize(
    ("exc", "action"),
    [
        (RetryAfter(7), Action.RETRY_AFTER),
        (NetworkError("Bad Gateway"), Action.BACKOFF),
        (TimedOut(), Action.BACKOFF),
        (OSError("connection reset"), Action.BACKOFF),
        (InvalidToken("Unauthorized"), Action.BACKOFF),
        (Forbidden("Forbidden: bot was blocked by the user"), Action.CHAT_GONE),
        (Forbidden("Forbidden: bot was kicked from the group chat"), Action.CHAT_GONE),
        (BadRequest("Chat not found"), Action.CHAT_GONE),
        (ChatMigrated(-100123), Action.CHAT_GONE),
        (BadRequest("Can't parse entities: unsupported start tag"), Action.BAD_REQUEST),
        (BadRequest("Message is too long"), Action.BAD_REQUEST),
        (BadRequest("Message to edit not found"), Action.MESSAGE_GONE),
        (BadRequest("Message to pin not found"), Action.MESSAGE_GONE),
        (BadRequest("Message is not modified: specified new message content"), Action.NOT_MODIFIED),
        (ValueError("our bug"), Action.BAD_REQUEST),
    ],
)
def test_classify(exc: Exception, action: Action) -> None:
    verdict = classify(exc)
    assert verdict.action is action
    assert verdict.retry == (action in (Action.RETRY_AFTER, Action.BACKOFF))
    if action is Action.RETRY_AFTER:
        assert verdict.seconds == 7
    if isinstance(exc, InvalidToken):
        assert verdict.reason == "InvalidToken"  # never the message (it may hold the token)


async def test_a_reply_goes_ahead_of_queued_alerts_for_the_same_chat() -> None:
    sender = Sender(pacer=Pacer(asyncio.get_running_loop().time, per_chat_interval=0.05))
    order: list[str] = []
    gate = asyncio.Event()

    def job(name: str) -> Any:
        async def go() -> str:
            if name == "alert 1":
                await gate.wait()  # the first alert is in flight while the rest queue up
            order.append(name)
            return name

        return go

    first = asyncio.create_task(
        sender.run(GROUP, job("alert 1"), counted=True, priority=Priority.ALERT)
    )
    await asyncio.sleep(0.01)
    queued = [
        asyncio.create_task(
            sender.run(GROUP, job(f"alert {i}"), counted=True, priority=Priority.ALERT)
        )
        for i in (2, 3)
    ]
    await asyncio.sleep(0.01)
    reply = asyncio.create_task(sender.run(GROUP, job("reply"), counted=True))
    other = asyncio.create_task(sender.run(USER, job("other chat"), counted=True))
    await asyncio.sleep(0.01)
    assert order == ["other chat"]  # another chat never waits for this one
    gate.set()
    await asyncio.wait_for(asyncio.gather(first, *queued, reply, other), 5)
    assert order == ["other chat", "alert 1", "reply", "alert 2", "alert 3"]


async def test_ten_commands_in_two_seconds_ten_answers_in_order(start_bot: Start) -> None:
    async with FakeBotApi() as fake:
        fake.enable_flood()  # strict: 1 a second in a private chat, else 429
        await start_bot(fake=fake)
        asked = ["/status", "/help"] + [f"/ont nope{i}" for i in range(1, 9)]
        for text in asked:
            fake.push_message(USER, text)
            await asyncio.sleep(0.2)
        await fake.wait_for_count(lambda c: c.chat_id == USER, 10, timeout=30)
        texts = fake.texts_to(USER)
        assert len(texts) == 10
        assert "Network status" in texts[0] and "/status" in texts[1]
        assert [next(w for w in t.split() if w.startswith("nope")) for t in texts[2:]] == [
            f"nope{i}" for i in range(1, 9)
        ]
        assert fake.violations == []
        answers = fake.messages_to(USER)
        figure(
            "BOT ten-commands",
            answers=len(answers),
            in_order=True,
            first_to_last_s=f"{answers[-1].time - answers[0].time:.1f}",
            http_429=sum(r.status == 429 for r in fake.requests),
        )


async def test_a_60_s_telegram_outage_loses_no_reply_and_no_alert(start_bot: Start) -> None:
    vt = VirtualTime()
    async with FakeBotApi(clock=vt) as fake:
        h = await start_bot(fake=fake, monotonic=vt, sleep=vt.sleep)
        fake.fail_with_status(502)
        started = vt.now
        fake.push_message(USER, "/status")
        await h.push("1", Status.OFF, 0)
        for _ in range(3000):  # bounded: virtual time runs as the sender backs off
            if vt.now - started >= 60:
                break
            await asyncio.sleep(0.01)
        assert vt.now - started >= 60
        assert fake.messages_to(USER) == [] and fake.messages_to(GROUP) == []
        assert sum(r.status == 502 for r in fake.requests) >= 4
        fake.clear_faults()
        reply = await fake.wait_for_message(USER, "Network status", timeout=10)
        alert = await fake.wait_for_message(GROUP, "Baciro RT 1", timeout=10)
        assert reply.visible_text and alert.visible_text
        assert await h.runtime.sink.idle(10)
        assert {r["state"] for r in await OutboxStore(h.db).rows()} == {"sent"}
        assert len(fake.texts_to(USER)) == 1  # answered once, not once per attempt
        figure(
            "BOT telegram-down-60s",
            virtual_s=f"{vt.now - started:.0f}",
            http_502=sum(r.status == 502 for r in fake.requests),
            replies_lost=0,
            alerts_lost=0,
        )


async def test_closing_the_sender_ends_a_reply_waiting_through_an_outage() -> None:
    sender = Sender()
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise NetworkError("Bad Gateway")

    reply = asyncio.create_task(sender.run(USER, down, counted=True))
    for _ in range(200):  # bounded: the first attempt fails at once, then it backs off
        if calls:
            break
        await asyncio.sleep(0.01)
    sender.close()
    with pytest.raises(SenderClosed):
        await asyncio.wait_for(reply, 2)  # not after the backoff: at once
    assert calls == 1
