"""Outbox delivery against the fake Bot API: order, grouping, 5xx, flood limits, restarts."""

from __future__ import annotations

import asyncio
import heapq

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


class EventTime:
    """Discrete-event time: sleepers wake in order of their deadlines, one at a time.

    Unlike VirtualTime (where concurrent sleeps add up), time only moves to the earliest
    deadline, so a paced lane's timeline is what Telegram would see.
    """

    def __init__(self) -> None:
        self.now = 1000.0
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0
        self._driver: asyncio.Task[None] | None = None

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._heap, (self.now + max(0.0, seconds), self._seq, fut))
        if self._driver is None or self._driver.done():
            self._driver = asyncio.create_task(self._drive())
        await fut

    async def _drive(self) -> None:
        while self._heap:
            await asyncio.sleep(0.003)  # real time for everything not sleeping to run
            wake, _, fut = heapq.heappop(self._heap)
            self.now = max(self.now, wake)
            if not fut.done():
                fut.set_result(None)


async def test_group_limit_paced_so_telegram_never_has_to_refuse(start_bot: Start) -> None:
    """30 alerts for a group under Telegram's 20/min: paced by us, the fake never sends 429."""
    vt = EventTime()
    async with FakeBotApi(clock=vt) as fake:
        h = await start_bot(fake=fake, onts=spread(30), monotonic=vt, sleep=vt.sleep)
        fake.enable_flood(per_group_per_min=20)
        for i in range(1, 31):  # one at a time, each sent before the next (no grouping)
            await h.push(str(i), Status.OFF, 0)
            await fake.wait_for_count(
                lambda c, i=i: c.chat_id == GROUP and f"(id {i})" in (c.text or ""), 1, timeout=10
            )
        assert await h.runtime.sink.idle(15)
        refused = [r for r in fake.requests if r.status == 429]
        assert refused == [], refused[:3]  # pacing, not Telegram, kept the limit
        sent = sorted(
            r.time
            for r in fake.requests
            if r.chat_id == GROUP and r.status == 200 and r.method.lower() == "sendmessage"
        )
        assert len(sent) >= 21
        assert all(b - a >= 60.0 for a, b in zip(sent, sent[20:], strict=False))
        assert fake.violations == []


async def test_429s_for_several_chats_pause_every_chat(start_bot: Start) -> None:
    """Two chats told to wait at once is the global limit: the third chat waits too."""
    chats = (GROUP, -2002, -3003)
    async with FakeBotApi() as fake:  # real time: lanes run concurrently
        h = await start_bot(fake=fake, alert_chats=chats)
        retry = 3
        fake.rate_limit(retry_after=retry, times=2)
        await h.push("1", Status.OFF, 0)
        await until(lambda: sum(r.status == 429 for r in fake.requests) >= 2, limit=10)
        told = [r for r in fake.requests if r.status == 429]
        assert len({r.chat_id for r in told}) == 2
        (free,) = [c for c in chats if c not in {r.chat_id for r in told}]
        told_at = max(r.time for r in told)
        await h.push("2", Status.OFF, 0)
        await fake.wait_for_count(lambda c: c.chat_id == free and "(id 2)" in (c.text or ""), 1)
        sends = sorted(  # alert 1 went out before the pause; alert 2 must wait for it
            r.time
            for r in fake.requests
            if r.chat_id == free and r.status == 200 and r.method.lower() == "sendmessage"
        )
        assert len(sends) == 2 and sends[1] >= told_at + retry - 0.1, (told_at, sends)
        assert await h.runtime.sink.idle(15)
        for chat in chats:
            joined = "\n".join(fake.texts_to(chat))
            assert joined.count("(id 1)") == 1 and joined.count("(id 2)") == 1


@pytest.mark.parametrize(
    ("ids", "text"),
    [
        ((7,), "rows 7"),
        ((1, 2, 3, 4, 5), "rows 1, 2, 3, 4, 5"),
        (tuple(range(10, 1010)), "1000 rows (10, 11, 12, 13, 14, …)"),
    ],
)
def test_a_log_line_names_a_few_rows_and_counts_many(ids: tuple[int, ...], text: str) -> None:
    from bot.delivery import rows_text

    assert rows_text(ids) == text
