"""The pinned status message: created once, edited in place on change (at most every 30 s),
re-created after deletion, pinned again after an unpin, the same message after a restart."""

from __future__ import annotations

import asyncio

import pytest

from bot.status_message import StatusBoard
from monitor.model import Status
from monitor.view import EngineView
from storage.outbox import BotMessages
from tests.fakes.bot_api import SentCall

from .conftest import GROUP, Harness, Start

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


class Mono:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def boards(h: Harness) -> list[SentCall]:
    """The board messages sent to the group (alerts go there too)."""
    return [c for c in h.fake.messages_to(GROUP) if "Status jaringan" in (c.visible_text or "")]


def board_for(h: Harness, mono: Mono) -> StatusBoard:
    assert h.runtime.app is not None and h.runtime.messages is not None
    board = StatusBoard(
        h.runtime.app.bot,
        h.runtime.sender,
        BotMessages(h.db),
        EngineView(h.engine),
        [GROUP],
        lang_for=lambda chat: "id",
        tz=h.settings.tz,
        clock=h.clock,
        every=30.0,
        monotonic=mono,
    )
    h.engine.feed.subscribe(board.committed)
    return board


async def test_created_edited_in_place_never_more_than_every_30s(start_bot: Start) -> None:
    h = await start_bot()
    mono = Mono()
    board = board_for(h, mono)
    assert await board.refresh(GROUP) == "created"
    (msg,) = boards(h)
    assert "Status jaringan" in (msg.visible_text or "") and "offline 0" in msg.visible_text
    assert h.fake.pinned_message(GROUP) == msg.message_id
    assert await board.refresh(GROUP) == "unchanged"  # nothing changed: no request
    await h.push("1", Status.OFF, 0)
    await asyncio.sleep(0.05)
    assert await board.refresh(GROUP) == "too soon"  # changed, but 30 s have not passed
    mono.now += 30.5
    assert await board.refresh(GROUP) == "edited"
    (edit,) = h.fake.edits_to(GROUP)
    assert edit.params["message_id"] == msg.message_id
    assert "offline 1" in (edit.visible_text or "") and "Baciro RT 1" in edit.visible_text
    await h.push("1", Status.ON, 0)
    await asyncio.sleep(0.05)
    mono.now += 5
    assert await board.refresh(GROUP) == "too soon"
    mono.now += 30
    assert await board.refresh(GROUP) == "edited"
    assert len(h.fake.edits_to(GROUP)) == 2 and len(boards(h)) == 1


async def test_recreated_after_deletion_and_pinned_again_after_unpin(start_bot: Start) -> None:
    h = await start_bot()
    mono = Mono()
    board = board_for(h, mono)
    await board.refresh(GROUP)
    (first,) = boards(h)
    h.fake.user_unpin(GROUP, first.message_id)
    assert h.fake.pinned_message(GROUP) is None
    assert await board.refresh(GROUP) == "unchanged"  # pinned again, text as it was
    assert h.fake.pinned_message(GROUP) == first.message_id
    h.fake.user_delete(GROUP, first.message_id)
    assert await board.refresh(GROUP) == "created"
    second = boards(h)[-1]
    assert second.message_id != first.message_id
    assert h.fake.pinned_message(GROUP) == second.message_id
    assert (await BotMessages(h.db).status_message(GROUP) or (0, ""))[0] == second.message_id
    # Deleted while something changed: the edit finds no message, the board is re-created.
    h.fake.messages.pop((GROUP, second.message_id))
    await h.push("2", Status.OFF, 0)
    await asyncio.sleep(0.05)
    mono.now += 31
    assert await board.refresh(GROUP) in ("created",)
    assert len(boards(h)) == 3


async def test_a_restart_edits_the_same_message(start_bot: Start) -> None:
    h = await start_bot()
    mono = Mono()
    await board_for(h, mono).refresh(GROUP)
    (msg,) = boards(h)
    await h.push("3", Status.OFF, 0)
    await asyncio.sleep(0.05)
    fresh = board_for(h, Mono())  # a new process: nothing in memory, the id from SQLite
    fresh.committed  # noqa: B018 - subscribed by board_for
    assert await fresh.refresh(GROUP) == "edited"
    assert h.fake.edits_to(GROUP)[-1].params["message_id"] == msg.message_id
    assert len(boards(h)) == 1


async def test_the_service_pins_a_board_in_the_alert_group_on_connect(start_bot: Start) -> None:
    h = await start_bot(status_message=True)
    pin = await h.fake.wait_for(lambda c: c.method.lower() == "pinchatmessage", timeout=10)
    assert pin.chat_id == GROUP and h.fake.pinned_message(GROUP) == pin.params["message_id"]
    assert pin.params.get("disable_notification") is True


async def test_a_group_can_go_without_the_board(start_bot: Start) -> None:
    other = -2002
    h = await start_bot(
        status_message=True, alert_chats=(GROUP, other), status_message_off=(other,)
    )
    pin = await h.fake.wait_for(lambda c: c.method.lower() == "pinchatmessage", timeout=10)
    assert pin.chat_id == GROUP
    assert h.runtime.board is not None and h.runtime.board.chats == (GROUP,)
    assert h.fake.pins_to(other) == [] and h.fake.messages_to(other) == []
