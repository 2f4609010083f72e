"""Outbox delivery against the fake Bot API: order, grouping, 5xx, flood limits, restarts."""

from __future__ import annotations

import asyncio

import pytest

from monitor.model import Ont, Status
from storage.outbox import OutboxStore
from tests.conftest import ManualClock
from tests.fakes.bot_api import FakeBotApi, parse_html

from .conftest import GROUP, USER, Start, VirtualTime

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

FIVE_STEPS = [(Status.OFF, 0), (Status.ON, 0), (Status.OFF, 1), (Status.ON, 0), (Status.OFF, 3)]
EXPECTED = ["WARNING", "RECOVERED", "WARNING", "RECOVERED", "CRITICAL"]


def spread(n: int) -> list[Ont]:
    """n ONTs, each in its own area (so no mass outage folds them)."""
    return [
        Ont(id=f"{i}", name=f"Rumah {i}", area=f"Area {i}", ip=f"127.0.2.{i}")
        for i in range(1, n + 1)
    ]


async def until(predicate: object, limit: float = 15.0) -> None:
    """Wait (bounded, real time) for a condition."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not predicate():  # type: ignore[operator]
        if loop.time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.01)


async def test_five_steps_one_message_each_in_real_time(start_bot: Start) -> None:
    """The whole path in real time: engine -> outbox -> delivery -> PTB -> fake, five messages."""
    h = await start_bot(group_wait=0)
    for n, (status, rto) in enumerate(FIVE_STEPS, start=1):
        await h.push("3", status, rto)
        h.clock.advance(minutes=2)
        await h.fake.wait_for_count(lambda c: c.chat_id == GROUP, n, timeout=10)
    texts = h.fake.texts_to(GROUP)
    assert len(texts) == 5
    for text, word in zip(texts, EXPECTED, strict=True):
        assert word in text and 'Pos <RT 01> & "RW" 02' in text
    assert "after 2 min down" in texts[1] and "after 2 min down" in texts[3]
    assert "escalated" not in texts[4] and "rto 3" in texts[4]
    for call in h.fake.messages_to(GROUP):
        parse_html(call.text or "")
        assert call.callback_data == ["a:3", "m:3", "p:3", "l:3"]
    assert h.fake.violations == []


async def test_five_steps_grouped_into_one_message_in_order(start_bot: Start) -> None:
    h = await start_bot(group_wait=1.0)  # real time: the five pushes take milliseconds
    for status, rto in FIVE_STEPS:
        await h.push("3", status, rto)
        h.clock.advance(minutes=1)
    await h.fake.wait_for_count(lambda c: c.chat_id == GROUP, 1, timeout=10)
    assert await h.runtime.sink.idle(10)
    texts = h.fake.texts_to(GROUP)
    assert len(texts) == 1
    positions = []
    rest = texts[0]
    offset = 0
    for word in EXPECTED:
        i = rest.index(word)
        positions.append(offset + i)
        rest, offset = rest[i + len(word) :], offset + i + len(word)
    assert positions == sorted(positions)


async def test_502_for_60s_then_everything_once(start_bot: Start) -> None:
    vt = VirtualTime()
    h = await start_bot(onts=spread(20), monotonic=vt, sleep=vt.sleep)
    h.fake.fail_with_status(502)
    started = vt.now
    for i in range(1, 21):
        await h.push(str(i), Status.OFF, 1)
    await until(lambda: vt.now - started >= 60)
    assert h.fake.messages_to(GROUP) == []
    assert any(r.status == 502 for r in h.fake.requests)
    h.fake.clear_faults()
    assert await h.runtime.sink.idle(15)
    joined = "\n".join(h.fake.texts_to(GROUP))
    for i in range(1, 21):
        assert joined.count(f"Rumah {i} (id {i})") == 1
    rows = await OutboxStore(h.db).rows(GROUP)
    assert len(rows) == 20 and {r["state"] for r in rows} == {"sent"}
    assert max(r["attempts"] for r in rows) >= 3
    assert max(vt.slept) <= 60  # backoff capped


async def test_flood_limits_and_retry_after_honoured(tmp_path: object, start_bot: Start) -> None:
    vt = VirtualTime()
    async with FakeBotApi(clock=vt) as fake:
        h = await start_bot(fake=fake, onts=spread(30), monotonic=vt, sleep=vt.sleep)
        await h.command("/subscribe Area 1")
        fake.enable_flood()
        for i in range(1, 31):
            if i == 5:
                fake.rate_limit(retry_after=7, times=2)
            await h.push(str(i), Status.OFF, 0)
            if i == 1:
                await h.push("1", Status.ON, 0)
            await fake.wait_for_count(
                lambda c, i=i: c.chat_id == GROUP and f"(id {i})" in (c.text or ""), 1, timeout=10
            )
        assert await h.runtime.sink.idle(15)
        assert fake.violations == []
        assert any(r.status == 429 for r in fake.requests)
        texts = fake.texts_to(GROUP)
        assert len(texts) >= 21  # more than a group may get in one minute: paced, not refused
        joined = "\n".join(texts)
        for i in range(1, 31):
            assert joined.count(f"Rumah {i} (id {i})") == (2 if i == 1 else 1)
        user = "\n".join(fake.texts_to(USER))
        assert user.index("WARNING") < user.index("RECOVERED")  # order per chat kept


async def test_refused_chats_are_marked_failed_others_delivered(start_bot: Start) -> None:
    h = await start_bot(alert_chats=(GROUP, -404, -403))
    h.fake.missing.add(-404)
    h.fake.blocked.add(-403)
    await h.push("1", Status.OFF, 0)
    await h.fake.wait_for_message(GROUP, "Baciro RT 1", timeout=10)
    assert await h.runtime.sink.idle(10)
    rows = {r["chat_id"]: r for r in await OutboxStore(h.db).rows()}
    assert rows[GROUP]["state"] == "sent"
    assert rows[-404]["state"] == "failed" and "chat not found" in rows[-404]["last_error"].lower()
    assert rows[-403]["state"] == "failed" and "kicked" in rows[-403]["last_error"]


async def test_restart_delivers_pending_once_and_never_resends(start_bot: Start) -> None:
    clock = ManualClock()
    async with FakeBotApi() as fake:
        first = await start_bot(fake=fake, clock=clock)
        await first.push("1", Status.OFF, 0)
        await fake.wait_for_message(GROUP, "Baciro RT 1", timeout=10)
        assert await first.runtime.sink.idle(10)
        fake.fail_with_status(502)
        await first.push("2", Status.OFF, 0)
        await until(lambda: any(r.status == 502 for r in fake.requests))
        await first.runtime.stop()
        await first.engine.stop()
        await first.db.close()
        fake.clear_faults()
        second = await start_bot(fake=fake, clock=clock, onts=[])
        await fake.wait_for_message(GROUP, "Baciro RT 2", timeout=10)
        assert await second.runtime.sink.idle(10)
        joined = "\n".join(fake.texts_to(GROUP))
        assert joined.count("Baciro RT 1 (id 1)") == 1
        assert joined.count("Baciro RT 2 (id 2)") == 1


async def test_service_starts_while_telegram_is_down(start_bot: Start) -> None:
    vt = VirtualTime()
    async with FakeBotApi() as fake:
        fake.fail_with_status(502, methods="getme")
        h = await start_bot(fake=fake, wait_connected=False, monotonic=vt, sleep=vt.sleep)
        await h.push("1", Status.OFF, 0)  # the engine works; the alert waits in the outbox
        await until(lambda: sum(r.method.lower() == "getme" for r in fake.requests) >= 3)
        assert not h.runtime.connected.is_set()
        assert len(await OutboxStore(h.db).pending()) == 1
        fake.clear_faults()
        await asyncio.wait_for(h.runtime.connected.wait(), 10)
        await fake.wait_for_message(GROUP, "Baciro RT 1", timeout=10)
