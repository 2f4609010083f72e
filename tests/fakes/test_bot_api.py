"""Tests of the fake Bot API server against the real python-telegram-bot client."""

from __future__ import annotations

import asyncio
import json
import pathlib
import struct
import sys
import zlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from .bot_api import FakeBotApi, FakeBotApiClient, parse_html

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

TOKEN = "123456:TEST-token"
ROOT = pathlib.Path(__file__).resolve().parents[2]
CHAT = 5001
GROUP = -1009001


def tiny_png() -> bytes:
    """Return a valid 2x1 RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = b"\x00\xff\x00\x00\x00\xff\x00"
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def seconds(value: object) -> float:
    """Return retry_after as seconds whether PTB gives an int or a timedelta."""
    total = getattr(value, "total_seconds", None)
    return float(total() if total else value)  # type: ignore[arg-type]


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    """Run a fake Bot API on a free loopback port."""
    async with FakeBotApi() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeBotApi) -> AsyncIterator[Bot]:
    """Return an initialised PTB Bot pointed at the fake."""
    client = Bot(TOKEN, base_url=fake.base_url, base_file_url=fake.base_file_url)
    async with client:
        yield client


async def test_send_message_is_recorded(fake: FakeBotApi, bot: Bot) -> None:
    """send_message returns a proper Message and is recorded with increasing ids."""
    first = await bot.send_message(CHAT, "hello")
    second = await bot.send_message(CHAT, "<b>bold</b> world", parse_mode=ParseMode.HTML)
    assert first.text == "hello"
    assert first.from_user is not None and first.from_user.is_bot
    assert first.from_user.id == 123456
    assert second.message_id == first.message_id + 1
    assert second.text == "bold world"
    assert second.entities[0].type == "bold"
    assert [c.text for c in fake.messages_to(CHAT)] == ["hello", "<b>bold</b> world"]
    assert fake.sent[1].params["parse_mode"] == "HTML"
    assert fake.sent[1].message_id == second.message_id
    assert TOKEN in fake.tokens
    assert (await bot.get_me()).username == fake.bot_username


async def test_html_escaped_accepted_raw_rejected(fake: FakeBotApi, bot: Bot) -> None:
    """Escaped HTML passes; the same text unescaped fails like Telegram."""
    msg = await bot.send_message(CHAT, 'Pos &lt;RT 01&gt; &amp; "RW" 02', parse_mode=ParseMode.HTML)
    assert msg.text == 'Pos <RT 01> & "RW" 02'
    # PTB strips "Bad Request: " and capitalize()s the rest, hence the case-insensitive match.
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities") as err:
        await bot.send_message(CHAT, 'Pos <RT 01> & "RW" 02', parse_mode=ParseMode.HTML)
    assert 'unsupported start tag "rt" at byte offset 4' in err.value.message.lower()
    assert len(fake.sent) == 1


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("a &nbsp; b", "Unsupported HTML entity"),
        ("a & b", "must be escaped"),
        ("<b>open", "Can't find end tag"),
        ("<b><i>x</b></i>", "Unmatched end tag"),
        ("x</b>", "Unexpected end tag"),
        ("<span>x</span>", 'must have class "tg-spoiler"'),
        ("a < b", 'Unsupported start tag ""'),
    ],
)
def test_parse_html_errors(text: str, error: str) -> None:
    """Telegram's HTML rules are enforced with Telegram-like messages."""
    with pytest.raises(Exception, match=r"(?i)can't parse entities") as err:
        parse_html(text)
    assert error in str(err.value)


def test_parse_html_accepts_supported_markup() -> None:
    """Supported tags, numeric entities and attributes parse to entities."""
    text, entities = parse_html(
        '<a href="https://example.invalid/?a=1&amp;b=2">l</a> &#65;&#x42; '
        '<span class="tg-spoiler">s</span><blockquote expandable>q</blockquote>'
        '<pre><code class="language-python">p</code></pre>'
    )
    assert text == "l AB sqp"
    kinds = {e["type"] for e in entities}
    assert {"text_link", "spoiler", "expandable_blockquote", "pre", "code"} <= kinds
    assert entities[0]["url"] == "https://example.invalid/?a=1&b=2"


async def test_too_long_text_and_caption(fake: FakeBotApi, bot: Bot) -> None:
    """Texts over 4096 visible chars are refused; escapes count as one char."""
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(CHAT, "x" * 5000)
    await bot.send_message(CHAT, "&amp;" * 4096, parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await bot.send_photo(CHAT, tiny_png(), caption="c" * 1025)
    assert len(fake.sent) == 1


async def test_callback_data_limit(fake: FakeBotApi, bot: Bot) -> None:
    """callback_data must be 1..64 bytes."""
    ok = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="a" * 64)]])
    await bot.send_message(CHAT, "fits", reply_markup=ok)
    bad = InlineKeyboardMarkup([[InlineKeyboardButton("no", callback_data="a" * 65)]])
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(CHAT, "too big", reply_markup=bad)
    assert fake.sent[0].callback_data == ["a" * 64]


async def test_rate_limit_maps_to_retry_after(fake: FakeBotApi, bot: Bot) -> None:
    """429 carries parameters.retry_after which PTB turns into RetryAfter."""
    fake.rate_limit(retry_after=7, times=1)
    with pytest.raises(RetryAfter) as err:
        await bot.send_message(CHAT, "x")
    assert seconds(err.value.retry_after) == 7
    assert fake.violations == []
    # Sending again to the same chat inside the told window is a violation.
    await bot.send_message(CHAT, "too early")
    assert [v.chat_id for v in fake.violations] == [CHAT]


async def test_fail_with_status_maps_to_network_error(fake: FakeBotApi, bot: Bot) -> None:
    """502 on send methods surfaces as NetworkError until cleared."""
    fake.fail_with_status(502)
    with pytest.raises(NetworkError):
        await bot.send_message(CHAT, "x")
    assert (await bot.get_me()).is_bot  # non-send methods still work
    fake.clear_faults()
    await bot.send_message(CHAT, "y")
    assert [c.text for c in fake.sent] == ["y"]


async def test_chat_not_found_and_blocked(fake: FakeBotApi, bot: Bot) -> None:
    """missing → 400 chat not found; blocked → 403 Forbidden."""
    fake.missing.add(42)
    fake.blocked.add(43)
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(42, "x")
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(43, "x")


async def test_hang_releases_on_clear(fake: FakeBotApi, bot: Bot) -> None:
    """A hung send does not block other requests and is released by clear_faults."""
    fake.hang()
    task = asyncio.create_task(bot.send_message(CHAT, "stuck"))
    for _ in range(200):
        if fake.hung_requests:
            break
        await asyncio.sleep(0.01)
    assert fake.hung_requests == 1
    assert (await bot.get_me()).is_bot
    fake.clear_faults()
    with pytest.raises(NetworkError):
        await asyncio.wait_for(task, 10)
    assert fake.sent == []


async def test_flood_enforcement(fake: FakeBotApi, bot: Bot) -> None:
    """Flood mode answers 429 on the 2nd private message within a second."""
    now = [1000.0]
    fake.clock = lambda: now[0]
    fake.enable_flood()
    await bot.send_message(CHAT, "one")
    with pytest.raises(RetryAfter) as err:
        await bot.send_message(CHAT, "two")
    assert seconds(err.value.retry_after) == 1
    assert fake.violations == []
    now[0] += 1.5
    await bot.send_message(CHAT, "three")
    for i in range(20):
        await bot.send_message(GROUP, f"g{i}")
        now[0] += 0.01
    with pytest.raises(RetryAfter):
        await bot.send_message(GROUP, "g20")
    assert fake.violations == []
    with pytest.raises(RetryAfter):
        await bot.send_message(GROUP, "g21")
    assert [v.chat_id for v in fake.violations] == [GROUP]


async def test_send_photo_multipart_stores_png(fake: FakeBotApi, bot: Bot) -> None:
    """send_photo uploads multipart; the PNG bytes and caption are stored."""
    png = tiny_png()
    msg = await bot.send_photo(CHAT, png, caption="<b>map</b>", parse_mode=ParseMode.HTML)
    assert msg.caption == "map"
    assert msg.photo[-1].width == 2 and msg.photo[-1].height == 1
    call = fake.calls("sendPhoto")[0]
    assert call.photo == png
    assert call.visible_text == "map"
    again = await bot.send_photo(CHAT, msg.photo[-1].file_id)
    assert fake.sent[-1].photo == png
    assert again.message_id == msg.message_id + 1
    with pytest.raises(BadRequest, match=r"(?i)IMAGE_PROCESS_FAILED"):
        await bot.send_photo(CHAT, b"not an image")


async def test_edit_delete_location_action(fake: FakeBotApi, bot: Bot) -> None:
    """Edits, not-modified errors, deletes, locations and chat actions behave."""
    msg = await bot.send_message(CHAT, "v1")
    edited = await bot.edit_message_text("v2", chat_id=CHAT, message_id=msg.message_id)
    assert isinstance(edited, object) and fake.sent[-1].visible_text == "v2"
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("v2", chat_id=CHAT, message_id=msg.message_id)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Ack", callback_data="ack:1")]])
    await bot.edit_message_reply_markup(CHAT, msg.message_id, reply_markup=markup)
    loc = await bot.send_location(CHAT, latitude=-6.2, longitude=106.8)
    assert [c.visible_text for c in fake.edits_to(CHAT)] == ["v2", "v2"]
    assert fake.edits_to(CHAT)[1].callback_data == ["ack:1"]
    assert loc.location is not None and loc.location.latitude == pytest.approx(-6.2)
    assert await bot.send_chat_action(CHAT, "typing")
    assert await bot.delete_message(CHAT, msg.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(CHAT, msg.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("v3", chat_id=CHAT, message_id=999)


async def test_unknown_method_is_404(fake: FakeBotApi) -> None:
    """Unknown methods answer 404 Not Found like Telegram; JSON bodies are accepted."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{fake.url}/bot{TOKEN}/noSuchMethod", json={}) as resp:
            assert resp.status == 404
            assert await resp.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found",
            }
        async with session.post(
            f"{fake.url}/bot{TOKEN}/sendMessage", json={"chat_id": CHAT, "text": "json"}
        ) as resp:
            body = await resp.json()
            assert body["ok"] is True and body["result"]["text"] == "json"


async def test_get_updates_offset_and_long_poll(fake: FakeBotApi, bot: Bot) -> None:
    """getUpdates returns as soon as an update is queued; offset confirms."""
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.05)
    fake.push_message(CHAT, "/status now")
    updates = await asyncio.wait_for(poll, 10)
    assert len(updates) == 1
    message = updates[0].message
    assert message is not None and message.text == "/status now"
    assert message.entities[0].type == "bot_command" and message.entities[0].length == 7
    assert len(await bot.get_updates(timeout=0)) == 1  # not yet confirmed
    assert await bot.get_updates(offset=updates[0].update_id + 1, timeout=0) == ()
    assert fake.pending_updates == []


async def test_application_polling_start_command(fake: FakeBotApi) -> None:
    """A real PTB Application receives a pushed /start and its reply is recorded."""

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Reply to /start."""
        assert update.effective_chat is not None
        await context.bot.send_message(update.effective_chat.id, "welcome")

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Answer a callback query."""
        assert update.callback_query is not None
        await update.callback_query.answer("done")

    app = (
        Application.builder()
        .token(TOKEN)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(on_button))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        fake.push_message(CHAT, "/start")
        reply = await fake.wait_for_message(CHAT, "welcome", timeout=10)
        fake.push_callback(CHAT, "ack:1", reply.message_id or 0)
        await fake.wait_for(lambda c: c.method == "answerCallbackQuery", timeout=10)
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert fake.texts_to(CHAT) == ["welcome"]
    assert next(iter(fake.answered_callbacks.values()))["text"] == "done"


async def test_http_controls_and_client(fake: FakeBotApi, bot: Bot) -> None:
    """The /_fake controls work over HTTP for out-of-process e2e use."""
    client = FakeBotApiClient(fake.url)
    update = await client.push_message(CHAT, "/help", chat_type="private")
    assert update["message"]["text"] == "/help"
    await client.call("rate_limit", retry_after=3, times=1)
    with pytest.raises(RetryAfter):
        await bot.send_message(CHAT, "x")
    await client.call("clear_faults")
    await bot.send_photo(CHAT, tiny_png())
    found = await client.wait(method="sendPhoto", chat_id=CHAT, timeout=5)
    file_id = found[0]["result"]["photo"][0]["file_id"]
    assert await client.file(file_id) == tiny_png()
    with pytest.raises(TimeoutError):
        await client.wait(contains="never", timeout=0.1)
    assert await client.violations() == []
    state = await client.call("state")
    assert state["tokens"] == [TOKEN]
    json.dumps(await client.sent())


async def test_standalone_process() -> None:
    """`python -m tests.fakes.bot_api --port 0` serves and prints its URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.bot_api",
        "--port",
        "0",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
        assert line.startswith("READY http://127.0.0.1:")
        url = line.split()[1]
        async with Bot(TOKEN, base_url=f"{url}/bot", base_file_url=f"{url}/file/bot") as b:
            await b.send_message(CHAT, "from outside")
        sent = await FakeBotApiClient(url).sent(chat_id=CHAT)
        assert [s["params"]["text"] for s in sent] == ["from outside"]
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
