"""Updates of different chats run concurrently; one chat's updates run one at a time, in order.

PTB handles updates one at a time unless told otherwise, so a `/map` render (seconds) for one
technician delayed `/status` for everybody. `ChatOrder` is PTB's update processor
(`Application.builder().concurrent_updates(ChatOrder())`): each update waits only for the
previous update of its own chat, then for a free slot of `max_concurrent_updates`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

MAX_CONCURRENT = 64


def chat_key(update: object) -> int | None:
    """The chat an update belongs to (None: no order to keep)."""
    if isinstance(update, Update) and update.effective_chat is not None:
        return update.effective_chat.id
    return None


class ChatOrder(BaseUpdateProcessor):
    """Per-chat serial, across chats concurrent."""

    def __init__(self, max_concurrent_updates: int = MAX_CONCURRENT) -> None:
        super().__init__(max_concurrent_updates)
        self._tails: dict[int, asyncio.Future[None]] = {}

    async def process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Take this update's place in its chat's line at once (so order is arrival order)."""
        chat = chat_key(update)
        if chat is None:
            await super().process_update(update, coroutine)
            return
        before = self._tails.get(chat)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[chat] = mine
        try:
            if before is not None:
                await asyncio.shield(before)  # set by the previous update's finally, never fails
            await super().process_update(update, coroutine)
        finally:
            mine.set_result(None)
            if self._tails.get(chat) is mine:
                del self._tails[chat]

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run the handlers of one update."""
        await coroutine

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""
