"""A slow /map in one chat never delays another chat; one chat's own commands keep their order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .conftest import USER, Start

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

OTHER = 5002  # a second technician


class SlowRenderer:
    """A map renderer that takes its time, then fails (so /map answers with its text summary)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = asyncio.Event()
        self.done = asyncio.Event()

    async def render(self, view: Any, items: Any, **kw: Any) -> bytes:
        self.started.set()
        await asyncio.sleep(self.seconds)
        self.done.set()
        raise RuntimeError("tiles unreachable")


async def test_slow_map_in_one_chat_does_not_delay_status_in_another(start_bot: Start) -> None:
    slow = SlowRenderer(3.0)
    h = await start_bot(allowed_chats=(USER, OTHER), renderer=slow)
    h.fake.push_message(USER, "/map")
    await asyncio.wait_for(slow.started.wait(), 10)
    h.fake.push_message(OTHER, "/status")
    answer = await h.fake.wait_for_message(OTHER, "Network status", timeout=10)
    assert not slow.done.is_set()  # answered while the map was still being drawn
    assert h.fake.messages_to(USER) == []
    await h.fake.wait_for_message(USER, "", timeout=10)
    assert answer.time < h.fake.messages_to(USER)[0].time


async def test_one_chats_commands_answered_in_the_order_sent(start_bot: Start) -> None:
    slow = SlowRenderer(1.5)
    h = await start_bot(renderer=slow)
    h.fake.push_message(USER, "/map")
    h.fake.push_message(USER, "/help")
    h.fake.push_message(USER, "/ont nope")
    await h.fake.wait_for_count(lambda c: c.chat_id == USER, 3, timeout=15)
    texts = h.fake.texts_to(USER)
    assert slow.done.is_set()
    assert "/status" not in texts[0] and "/status" in texts[1] and "nope" in texts[2]
