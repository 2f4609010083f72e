"""Fake Telegram Bot API server (aiohttp, 127.0.0.1 only) for tests and e2e runs."""

# In-process use (pytest):
#     async with FakeBotApi() as fake:
#         app = Application.builder().token("1:T").base_url(fake.base_url)
#               .base_file_url(fake.base_file_url).build()
#         fake.push_message(5001, "/start"); await fake.wait_for_message(5001, "welcome")
# Out-of-process use (e2e): ``python -m tests.fakes.bot_api --port 0`` prints
# "READY http://127.0.0.1:PORT"; drive it with FakeBotApiClient(url) or POST JSON to
# /_fake/{push_message,push_callback,push_location,fail_with_status,hang,rate_limit,
# enable_flood,disable_flood,clear_faults,reset,block,unblock,missing,user_delete,
# user_unpin,sent,wait,violations,requests,state}; GET /_fake/files/{file_id} returns uploaded
# bytes. pinChatMessage/unpinChatMessage/getChat keep a chat's pins (getChat's pinned_message
# is the newest); replies (reply_parameters) carry reply_to_message in their result.
# Real Telegram keeps a bare "&" or unknown "&name;" literally; this fake rejects them
# (strict_html_entities=True) so that unescaped user text is caught in tests.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import math
import re
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import aiohttp
from aiohttp import web

__all__ = [
    "DEFAULT_FAULT_METHODS",
    "DEFAULT_FLOOD_METHODS",
    "ApiError",
    "FakeBotApi",
    "FakeBotApiClient",
    "RequestLog",
    "SentCall",
    "Violation",
    "parse_html",
]

LOOPBACK = "127.0.0.1"
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64

# Methods (lower-case) that fault modes apply to unless told otherwise.
DEFAULT_FAULT_METHODS: frozenset[str] = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "sendlocation",
        "editmessagetext",
        "editmessagereplymarkup",
        "answercallbackquery",
        "sendchataction",
        "deletemessage",
        "pinchatmessage",
        "unpinchatmessage",
    }
)
# Methods that count as "a message to a chat" for flood limits and retry_after windows.
DEFAULT_FLOOD_METHODS: frozenset[str] = frozenset({"sendmessage", "sendphoto", "sendlocation"})
NEW_MESSAGE_METHODS: frozenset[str] = frozenset({"sendmessage", "sendphoto", "sendlocation"})
EDIT_METHODS: frozenset[str] = frozenset({"editmessagetext", "editmessagereplymarkup"})
PIN_METHODS: frozenset[str] = frozenset({"pinchatmessage", "unpinchatmessage"})
# Methods recorded in ``FakeBotApi.sent`` when they succeed.
RECORDED_METHODS: frozenset[str] = DEFAULT_FAULT_METHODS | {"setmycommands"}

SUPPORTED_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "code",
        "pre",
        "span",
        "tg-spoiler",
        "tg-emoji",
        "blockquote",
    }
)
TAG_ENTITY = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "tg-emoji": "custom_emoji",
    "a": "text_link",
    "blockquote": "blockquote",
}
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
INT_FIELDS = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "reply_to_message_id",
        "message_thread_id",
        "user_id",
        "cache_time",
        "live_period",
        "heading",
        "proximity_alert_radius",
    }
)
FLOAT_FIELDS = frozenset({"timeout", "latitude", "longitude", "horizontal_accuracy"})
JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "commands",
        "scope",
        "allowed_updates",
        "link_preview_options",
        "reply_parameters",
    }
)
BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "drop_pending_updates",
        "show_alert",
        "disable_web_page_preview",
        "allow_sending_without_reply",
        "show_caption_above_media",
        "has_spoiler",
    }
)
COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
BOT_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]+)?")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


class ApiError(Exception):
    """A Bot API error answer: HTTP status, description and optional retry_after."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        """Store the error fields."""
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        """Return the JSON body exactly as Telegram shapes it."""
        out: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            out["parameters"] = {"retry_after": self.retry_after}
        return out


def bad_request(what: str) -> ApiError:
    """Build a 400 'Bad Request: ...' error."""
    return ApiError(400, f"Bad Request: {what}")


def too_many(retry_after: int) -> ApiError:
    """Build a 429 flood error with parameters.retry_after."""
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)


@dataclass
class SentCall:
    """One successful outgoing call the bot made (send/edit/answer/...)."""

    method: str
    chat_id: int | str | None
    params: dict[str, Any]
    time: float
    message_id: int | None = None
    token: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    result: Any = None

    @property
    def text(self) -> str | None:
        """Return the raw text (or caption) parameter as sent."""
        value = self.params.get("text", self.params.get("caption"))
        return None if value is None else str(value)

    @property
    def visible_text(self) -> str | None:
        """Return the text/caption as Telegram shows it (after entity parsing)."""
        if isinstance(self.result, dict):
            return self.result.get("text", self.result.get("caption"))
        return self.text

    @property
    def photo(self) -> bytes | None:
        """Return the uploaded photo bytes, if any."""
        return self.files.get("photo")

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        """Return the decoded reply_markup parameter."""
        value = self.params.get("reply_markup")
        return value if isinstance(value, dict) else None

    @property
    def callback_data(self) -> list[str]:
        """Return all callback_data values of the inline keyboard, row by row."""
        markup = self.reply_markup or {}
        return [
            str(button["callback_data"])
            for row in markup.get("inline_keyboard", [])
            for button in row
            if isinstance(button, dict) and "callback_data" in button
        ]

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-safe dict (file bytes replaced by size and sha256)."""
        return {
            "method": self.method,
            "chat_id": self.chat_id,
            "params": self.params,
            "time": self.time,
            "message_id": self.message_id,
            "token": self.token,
            "files": {
                name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                for name, data in self.files.items()
            },
            "result": self.result,
        }


@dataclass
class RequestLog:
    """Every Bot API request received, with the HTTP status answered."""

    method: str
    token: str
    chat_id: int | str | None
    status: int
    description: str
    time: float


@dataclass
class Violation:
    """A message for a chat that arrived inside a retry_after window already told."""

    method: str
    chat_id: int | str | None
    time: float
    retry_until: float

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return {
            "method": self.method,
            "chat_id": self.chat_id,
            "time": self.time,
            "retry_until": self.retry_until,
            "early_by": self.retry_until - self.time,
        }


def _byte_offset(text: str, index: int) -> int:
    """Return the UTF-8 byte offset of a character index."""
    return len(text[:index].encode("utf-8"))


def _utf16_len(text: str) -> int:
    """Return the length of text in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _decode_entity(text: str, i: int) -> tuple[str, int] | None:
    """Decode an HTML entity at text[i] == '&'; return (char, next index) or None."""
    m = re.match(r"&#[xX]([0-9a-fA-F]{1,6});|&#([0-9]{1,7});|&([a-zA-Z][a-zA-Z0-9]*);", text[i:])
    if not m:
        return None
    if m.group(1) or m.group(2):
        code = int(m.group(1), 16) if m.group(1) else int(m.group(2))
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None
        return chr(code), i + m.end()
    name = m.group(3)
    if name not in NAMED_ENTITIES:
        return None
    return NAMED_ENTITIES[name], i + m.end()


def parse_html(text: str, *, strict_entities: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram HTML like the Bot API does; return (visible text, entities) or raise."""
    out: list[str] = []
    utf16 = 0
    stack: list[tuple[str, str, int]] = []  # tag, argument, utf16 start
    entities: list[dict[str, Any]] = []
    n = len(text)
    i = 0

    def err(msg: str) -> ApiError:
        return bad_request(f"can't parse entities: {msg}")

    while i < n:
        c = text[i]
        if c == "&":
            decoded = _decode_entity(text, i)
            if decoded is not None:
                ch, i = decoded
                out.append(ch)
                utf16 += _utf16_len(ch)
                continue
            if strict_entities:
                m = re.match(r"&#?[a-zA-Z0-9]*;?", text[i:])
                shown = m.group(0) if m else "&"
                if len(shown) > 1 and shown.endswith(";"):
                    raise err(
                        f'Unsupported HTML entity "{shown}" at byte offset {_byte_offset(text, i)}'
                    )
                raise err(
                    "Character '&' must be escaped as \"&amp;\" at byte offset "
                    f"{_byte_offset(text, i)}"
                )
        if c != "<":
            out.append(c)
            utf16 += _utf16_len(c)
            i += 1
            continue
        begin = i
        i += 1
        if i < n and text[i] == "/":
            # End tag.
            if not stack:
                raise err(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
            i += 1
            name_start = i
            while i < n and not text[i].isspace() and text[i] != ">":
                i += 1
            end_name = text[name_start:i].lower()
            while i < n and text[i].isspace():
                i += 1
            if i >= n or text[i] != ">":
                raise err(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
            i += 1
            tag, arg, start = stack.pop()
            if end_name and end_name != tag:
                raise err(
                    f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                    f'expected "</{tag}>", found "</{end_name}>"'
                )
            length = utf16 - start
            if length > 0:
                entity: dict[str, Any] = {
                    "type": TAG_ENTITY[tag],
                    "offset": start,
                    "length": length,
                }
                if tag == "a":
                    entity["url"] = arg
                elif tag == "pre" and arg:
                    entity["language"] = arg
                elif tag == "tg-emoji":
                    entity["custom_emoji_id"] = arg
                elif tag == "blockquote" and arg == "expandable":
                    entity["type"] = "expandable_blockquote"
                entities.append(entity)
            continue
        # Start tag.
        name_start = i
        while i < n and not text[i].isspace() and text[i] != ">":
            i += 1
        if i >= n:
            raise err(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
        tag = text[name_start:i].lower()
        if tag not in SUPPORTED_TAGS:
            raise err(f'Unsupported start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
        arg = ""
        while i < n and text[i] != ">":
            while i < n and text[i].isspace():
                i += 1
            if i < n and text[i] == ">":
                break
            attr_start = i
            while i < n and not text[i].isspace() and text[i] not in "=>":
                i += 1
            attr = text[attr_start:i].lower()
            if not attr:
                raise err(
                    f'Empty attribute name in the tag "{tag}" at byte offset '
                    f"{_byte_offset(text, begin)}"
                )
            while i < n and text[i].isspace():
                i += 1
            if i >= n or text[i] != "=":
                if tag == "blockquote" and attr == "expandable":
                    arg = "expandable"
                    continue
                raise err(
                    f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                    f"at byte offset {_byte_offset(text, begin)}"
                )
            i += 1
            while i < n and text[i].isspace():
                i += 1
            if i >= n:
                raise err(f'Unclosed start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
            if text[i] in "'\"":
                quote = text[i]
                end = text.find(quote, i + 1)
                if end < 0:
                    raise err(
                        f'Unclosed end of attribute value in the tag "{tag}" at byte offset '
                        f"{_byte_offset(text, i + 1)}"
                    )
                value, _ = parse_html(text[i + 1 : end], strict_entities=False)
                i = end + 1
            else:
                token_start = i
                while i < n and (text[i].isalnum() or text[i] in ".-"):
                    i += 1
                value = text[token_start:i].lower()
                if i < n and not text[i].isspace() and text[i] != ">":
                    raise err(
                        f"Unexpected end of name token at byte offset "
                        f"{_byte_offset(text, token_start)}"
                    )
            if i < n and not text[i].isspace() and text[i] != ">":
                raise err(
                    f"Expected space or '>' after attribute value at byte offset "
                    f"{_byte_offset(text, i)}"
                )
            if (tag == "a" and attr == "href") or (tag == "tg-emoji" and attr == "emoji-id"):
                arg = value
            elif tag == "span" and attr == "class" and value.startswith("tg-"):
                arg = value[3:]
            elif tag == "code" and attr == "class" and value.startswith("language-"):
                arg = value[9:]
        if i >= n:
            raise err(f'Unclosed start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
        i += 1  # skip '>'
        if tag == "span" and arg != "spoiler":
            raise err(
                f'Tag "span" must have class "tg-spoiler" at byte offset '
                f"{_byte_offset(text, begin)}"
            )
        if tag == "tg-emoji" and not arg:
            raise err(
                f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset '
                f"{_byte_offset(text, begin)}"
            )
        if tag == "code" and stack and stack[-1][0] == "pre" and arg:
            pre_tag, _, pre_start = stack[-1]
            stack[-1] = (pre_tag, arg, pre_start)
        stack.append((tag, arg, utf16))
    if stack:
        raise err(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _png_size(data: bytes) -> tuple[int, int]:
    """Return (width, height) of a PNG, or a default for other images."""
    if data.startswith(PNG_MAGIC) and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return 320, 320


def _to_int(name: str, value: Any) -> int | str:
    """Coerce an integer-ish Bot API parameter, leaving '@username' strings alone."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        if name == "chat_id":
            return str(value)
        raise bad_request(f"invalid {name} specified") from None


def _coerce(params: dict[str, Any]) -> dict[str, Any]:
    """Turn form/JSON/query values into their Bot API types."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in INT_FIELDS:
            out[key] = _to_int(key, value)
        elif key in FLOAT_FIELDS:
            try:
                out[key] = float(value)
            except (TypeError, ValueError):
                raise bad_request(f"invalid {key} specified") from None
        elif key in JSON_FIELDS and isinstance(value, str):
            try:
                out[key] = json.loads(value)
            except ValueError:
                if key == "reply_markup":
                    raise bad_request("can't parse reply keyboard markup JSON object") from None
                raise bad_request(f"can't parse {key} JSON object") from None
        elif key in BOOL_FIELDS and isinstance(value, str):
            out[key] = value.strip().lower() in ("true", "1")
        else:
            out[key] = value
    return out


class FakeBotApi:
    """In-process fake of the Telegram Bot API, served by aiohttp on 127.0.0.1."""

    def __init__(
        self,
        port: int = 0,
        *,
        bot_id: int | None = None,
        bot_username: str = "ontwatch_test_bot",
        bot_first_name: str = "ontwatch test",
        strict_html_entities: bool = True,
        clock: Callable[[], float] = time.monotonic,
        controls: bool = True,
    ) -> None:
        """Configure the fake; call ``start()`` (or use ``async with``) to serve."""
        self._requested_port = port
        self._bot_id = bot_id
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.strict_html_entities = strict_html_entities
        self.clock = clock
        self.controls_enabled = controls
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.tokens: set[str] = set()
        self._reset_state()

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """Return the base URL, e.g. http://127.0.0.1:PORT."""
        if self.port is None:
            raise RuntimeError("FakeBotApi is not started")
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def base_url(self) -> str:
        """Return the PTB ``base_url`` (``{url}/bot``)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """Return the PTB ``base_file_url`` (``{url}/file/bot``)."""
        return f"{self.url}/file/bot"

    @property
    def bot_id(self) -> int:
        """Return the bot's user id (from the first token used, else 1000001)."""
        if self._bot_id is not None:
            return self._bot_id
        for token in sorted(self.tokens):
            head = token.split(":", 1)[0]
            if head.isdigit():
                return int(head)
        return 1000001

    def make_app(self) -> web.Application:
        """Build the aiohttp application (Bot API routes plus /_fake controls)."""
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        if self.controls_enabled:
            app.router.add_route("*", "/_fake/{action}", self._handle_control)
            app.router.add_get("/_fake/files/{file_id}", self._handle_control_file)
        return app

    async def start(self) -> FakeBotApi:
        """Start serving on 127.0.0.1 (a free port when port=0)."""
        self._closing = False
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, self._requested_port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.SockSite(self._runner, sock)
        await site.start()
        return self

    async def stop(self) -> None:
        """Release hung and long-polling requests, then stop the server."""
        self._closing = True
        self._release_hangs()
        self._notify_updates()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotApi:
        """Start the server."""
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        """Stop the server."""
        await self.stop()

    # ------------------------------------------------------------------ state

    def _reset_state(self) -> None:
        """Initialise/clear all recorded state, queues and fault modes."""
        self.sent: list[SentCall] = []
        self.requests: list[RequestLog] = []
        self.violations: list[Violation] = []
        self.blocked: set[int | str] = set()
        self.missing: set[int | str] = set()
        self.chat_types: dict[int | str, str] = {}
        self.files_by_id: dict[str, bytes] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.answered_callbacks: dict[str, dict[str, Any]] = {}
        self.messages: dict[tuple[int | str, int], dict[str, Any]] = {}
        self.pinned: dict[int | str, list[int]] = {}  # chat -> pinned message ids, newest last
        self._next_message_id: dict[int | str, int] = {}
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(100001)
        self._callback_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._pending_callbacks: set[str] = set()
        self._updates_event = asyncio.Event()
        self._sent_event = asyncio.Event()
        self._clear_fault_state()
        self.disable_flood()

    def _clear_fault_state(self) -> None:
        """Clear fault modes (without touching the hang event)."""
        self._fail_status: int | None = None
        self._fail_times: int | None = None
        self._fail_methods: frozenset[str] = DEFAULT_FAULT_METHODS
        self._rate_limit_after = 0
        self._rate_limit_times = 0
        self._rate_limit_methods: frozenset[str] = DEFAULT_FAULT_METHODS
        self._hang_event: asyncio.Event | None = None
        self._hang_methods: frozenset[str] = DEFAULT_FAULT_METHODS
        self.hung_requests = 0

    def reset(self) -> None:
        """Forget everything recorded and queued, clear faults and flood mode."""
        self._release_hangs()
        waiters = (self._updates_event, self._sent_event)
        self._reset_state()
        for event in waiters:
            event.set()

    def clear_faults(self) -> None:
        """Clear fail/hang/rate-limit modes and told retry windows; release hung requests (502)."""
        self._release_hangs()
        hung = self.hung_requests
        self._clear_fault_state()
        self.hung_requests = hung
        self._retry_until.clear()

    def _release_hangs(self) -> None:
        """Wake every request parked by ``hang()``."""
        if getattr(self, "_hang_event", None) is not None:
            assert self._hang_event is not None
            self._hang_event.set()
            self._hang_event = None

    # ------------------------------------------------------------------ fault controls

    @staticmethod
    def _methods(methods: Iterable[str] | str | None) -> frozenset[str]:
        """Normalise a methods argument ('*' = every method)."""
        if methods is None:
            return DEFAULT_FAULT_METHODS
        if isinstance(methods, str):
            methods = [methods]
        return frozenset(m.lower() for m in methods)

    def fail_with_status(
        self,
        status: int = 502,
        *,
        times: int | None = None,
        methods: Iterable[str] | str | None = None,
    ) -> None:
        """Answer send-like methods with HTTP ``status`` (``times`` calls, or until cleared)."""
        self._fail_status = status
        self._fail_times = times
        self._fail_methods = self._methods(methods)

    def hang(self, *, methods: Iterable[str] | str | None = None) -> None:
        """Park send-like requests without answering until ``clear_faults()`` (then 502)."""
        if self._hang_event is None:
            self._hang_event = asyncio.Event()
        self._hang_methods = self._methods(methods)

    def rate_limit(
        self,
        retry_after: int = 1,
        times: int = 1,
        *,
        methods: Iterable[str] | str | None = None,
    ) -> None:
        """Answer the next ``times`` send-like calls with 429 and ``retry_after``."""
        self._rate_limit_after = int(retry_after)
        self._rate_limit_times = int(times)
        self._rate_limit_methods = self._methods(methods)

    def enable_flood(
        self,
        *,
        per_private_chat_per_sec: int = 1,
        per_group_per_min: int = 20,
        global_per_sec: int = 30,
        methods: Iterable[str] | str | None = None,
    ) -> None:
        """Enforce Telegram-like flood limits (429 + retry_after) on new messages."""
        self.flood_enabled = True
        self._flood_private = per_private_chat_per_sec
        self._flood_group = per_group_per_min
        self._flood_global = global_per_sec
        if methods is not None:
            self.flood_methods = self._methods(methods)

    def disable_flood(self) -> None:
        """Stop enforcing flood limits (retry_after windows and violations still tracked)."""
        self.flood_enabled = False
        self.flood_methods: frozenset[str] = DEFAULT_FLOOD_METHODS
        self._chat_times: dict[int | str, deque[float]] = {}
        self._global_times: deque[float] = deque()
        self._retry_until: dict[int | str, float] = {}
        self._flood_private = 1
        self._flood_group = 20
        self._flood_global = 30

    # ------------------------------------------------------------------ chats & updates

    def chat_type(self, chat_id: int | str) -> str:
        """Return the chat type (registered by a push, else inferred from the id sign)."""
        if chat_id in self.chat_types:
            return self.chat_types[chat_id]
        if isinstance(chat_id, int) and chat_id < 0:
            return "supergroup" if str(chat_id).startswith("-100") else "group"
        return "private"

    def _chat(self, chat_id: int | str) -> dict[str, Any]:
        """Return a Chat object for ``chat_id``."""
        kind = self.chat_type(chat_id)
        if kind == "private":
            return {"id": chat_id, "type": kind, "first_name": f"User {chat_id}"}
        return {"id": chat_id, "type": kind, "title": f"Group {chat_id}"}

    def _bot_user(self) -> dict[str, Any]:
        """Return the bot's User object."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    @staticmethod
    def _user(user_id: int, username: str | None = None) -> dict[str, Any]:
        """Return a human User object."""
        user: dict[str, Any] = {
            "id": user_id,
            "is_bot": False,
            "first_name": f"Tester {user_id}",
            "language_code": "en",
        }
        if username:
            user["username"] = username
        return user

    def _new_message_id(self, chat_id: int | str) -> int:
        """Allocate the next message id in a chat."""
        nxt = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = nxt + 1
        return nxt

    def _register_chat(self, chat_id: int, chat_type: str | None) -> None:
        """Remember a chat's type when a push names it."""
        if chat_type is not None:
            if chat_type not in ("private", "group", "supergroup", "channel"):
                raise ValueError(f"bad chat_type {chat_type!r}")
            self.chat_types[chat_id] = chat_type

    def _default_user(self, chat_id: int, user_id: int | None) -> int:
        """Pick the sender: the chat itself for private chats, else a fixed tester."""
        if user_id is not None:
            return user_id
        return chat_id if self.chat_type(chat_id) == "private" else 424242

    def _queue(self, payload_key: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Append an update and wake long-polling getUpdates calls."""
        update = {"update_id": next(self._update_ids), payload_key: payload}
        self._updates.append(update)
        self._notify_updates()
        return update

    def _notify_updates(self) -> None:
        """Wake getUpdates waiters."""
        event = self._updates_event
        self._updates_event = asyncio.Event()
        event.set()

    def _user_message(
        self,
        chat_id: int,
        user_id: int | None,
        chat_type: str | None,
        username: str | None,
    ) -> dict[str, Any]:
        """Create and store an incoming message skeleton."""
        self._register_chat(chat_id, chat_type)
        uid = self._default_user(chat_id, user_id)
        message = {
            "message_id": self._new_message_id(chat_id),
            "from": self._user(uid, username),
            "chat": self._chat(chat_id),
            "date": int(time.time()),
        }
        return message

    def push_message(
        self,
        chat_id: int,
        text: str,
        user_id: int | None = None,
        chat_type: str | None = None,
        *,
        username: str | None = None,
    ) -> dict[str, Any]:
        """Queue a text message update (bot_command entities for /commands); return it."""
        message = self._user_message(chat_id, user_id, chat_type, username)
        message["text"] = text
        entities = []
        for m in BOT_COMMAND_RE.finditer(text):
            if m.start() == 0 or text[m.start() - 1].isspace():
                entities.append(
                    {
                        "type": "bot_command",
                        "offset": _utf16_len(text[: m.start()]),
                        "length": _utf16_len(m.group(0)),
                    }
                )
        if entities:
            message["entities"] = entities
        self.messages[(chat_id, message["message_id"])] = message
        return self._queue("message", message)

    def push_location(
        self,
        chat_id: int,
        lat: float,
        lon: float,
        user_id: int | None = None,
        chat_type: str | None = None,
        *,
        username: str | None = None,
    ) -> dict[str, Any]:
        """Queue a shared-location message update; return it."""
        message = self._user_message(chat_id, user_id, chat_type, username)
        message["location"] = {"latitude": float(lat), "longitude": float(lon)}
        self.messages[(chat_id, message["message_id"])] = message
        return self._queue("message", message)

    def push_callback(
        self,
        chat_id: int,
        data: str,
        message_id: int,
        user_id: int | None = None,
        chat_type: str | None = None,
        *,
        username: str | None = None,
    ) -> dict[str, Any]:
        """Queue a callback_query update for a button on message ``message_id``."""
        self._register_chat(chat_id, chat_type)
        uid = self._default_user(chat_id, user_id)
        message = self.messages.get((chat_id, message_id))
        if message is None:
            message = {
                "message_id": message_id,
                "from": self._bot_user(),
                "chat": self._chat(chat_id),
                "date": int(time.time()),
                "text": "",
            }
        query_id = f"cbq{next(self._callback_ids)}"
        self._pending_callbacks.add(query_id)
        query = {
            "id": query_id,
            "from": self._user(uid, username),
            "message": message,
            "chat_instance": f"ci{chat_id}",
            "data": data,
        }
        return self._queue("callback_query", query)

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Return the updates not yet confirmed via getUpdates offset."""
        return list(self._updates)

    # ------------------------------------------------------------------ inspection

    def messages_to(self, chat_id: int | str, method: str | None = None) -> list[SentCall]:
        """Return new messages (sendMessage/Photo/Location) recorded for a chat."""
        wanted = {method.lower()} if method else set(NEW_MESSAGE_METHODS)
        return [c for c in self.sent if c.chat_id == chat_id and c.method.lower() in wanted]

    def pins_to(self, chat_id: int | str) -> list[SentCall]:
        """Return pinChatMessage/unpinChatMessage calls recorded for a chat."""
        return [c for c in self.sent if c.chat_id == chat_id and c.method.lower() in PIN_METHODS]

    def edits_to(self, chat_id: int | str) -> list[SentCall]:
        """Return editMessageText/editMessageReplyMarkup calls recorded for a chat."""
        return [c for c in self.sent if c.chat_id == chat_id and c.method.lower() in EDIT_METHODS]

    def texts_to(self, chat_id: int | str) -> list[str]:
        """Return visible texts/captions of new messages sent to a chat."""
        return [t for c in self.messages_to(chat_id) if (t := c.visible_text) is not None]

    def calls(self, method: str) -> list[SentCall]:
        """Return recorded calls of one method (case-insensitive)."""
        return [c for c in self.sent if c.method.lower() == method.lower()]

    async def wait_for_count(
        self,
        predicate: Callable[[SentCall], Any],
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[SentCall]:
        """Wait until ``count`` recorded calls match; return them or raise TimeoutError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            matches = [c for c in self.sent if predicate(c)]
            if len(matches) >= count:
                return matches
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = [(c.method, c.chat_id, c.text) for c in self.sent[-10:]]
                raise TimeoutError(
                    f"{len(matches)}/{count} matching calls after {timeout}s; last sent: {seen}"
                )
            event = self._sent_event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def wait_for(
        self,
        predicate: Callable[[SentCall], Any],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> SentCall:
        """Wait for the first recorded call matching ``predicate`` (bounded by timeout)."""
        return (await self.wait_for_count(predicate, 1, timeout))[0]

    async def wait_for_message(
        self,
        chat_id: int | str,
        contains: str = "",
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        edits: bool = False,
    ) -> SentCall:
        """Wait for a new message (or edit, if ``edits``) to ``chat_id`` containing text."""

        methods = NEW_MESSAGE_METHODS | (EDIT_METHODS if edits else frozenset())

        def match(c: SentCall) -> bool:
            return (
                c.chat_id == chat_id
                and c.method.lower() in methods
                and contains in (c.visible_text or "")
            )

        return await self.wait_for(match, timeout)

    # ------------------------------------------------------------------ request handling

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        """Read query, JSON, urlencoded or multipart parameters and uploaded files."""
        params: dict[str, Any] = dict(request.query)
        files: dict[str, bytes] = {}
        ctype = request.content_type
        if request.method == "POST" and request.can_read_body:
            if ctype == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise bad_request("can't parse JSON object") from None
                if not isinstance(body, dict):
                    raise bad_request("JSON object expected")
                params.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = value.file.read()
                    else:
                        params[key] = value
        for key, value in list(params.items()):
            if isinstance(value, str) and value.startswith("attach://"):
                name = value[len("attach://") :]
                if name in files:
                    files[key] = files.pop(name)
                    del params[key]
        return _coerce(params), files

    async def _handle_api(self, request: web.Request) -> web.Response:
        """Serve /bot{token}/{method}."""
        token = request.match_info["token"]
        method = request.match_info["method"]
        self.tokens.add(token)
        chat_id: int | str | None = None
        try:
            params, files = await self._read_params(request)
            chat_id = params.get("chat_id")
            result = await self._dispatch(token, method, params, files)
        except ApiError as exc:
            self._log(method, token, chat_id, exc.status, exc.description)
            return web.json_response(exc.body(), status=exc.status)
        self._log(method, token, chat_id, 200, "")
        return web.json_response({"ok": True, "result": result})

    def _log(self, method: str, token: str, chat_id: Any, status: int, desc: str) -> None:
        """Append to the request log."""
        self.requests.append(RequestLog(method, token, chat_id, status, desc, self.clock()))

    async def _dispatch(
        self, token: str, method: str, params: dict[str, Any], files: dict[str, bytes]
    ) -> Any:
        """Apply faults, flood rules and validation, then run the method."""
        name = method.lower()
        handler = getattr(self, f"_m_{name}", None)
        if handler is None:
            raise ApiError(404, "Not Found")
        now = self.clock()
        chat_id = params.get("chat_id")
        if name in self.flood_methods and chat_id is not None:
            until = self._retry_until.get(chat_id)
            if until is not None and now < until:
                self.violations.append(Violation(method, chat_id, now, until))
        await self._apply_faults(name, chat_id, now)
        if name in self.flood_methods and chat_id is not None:
            self._check_chat(chat_id)
            self._check_flood(chat_id, now)
        result = handler(params, files)
        if asyncio.iscoroutine(result):
            result = await result
        if name in self.flood_methods and chat_id is not None and self.flood_enabled:
            self._chat_times.setdefault(chat_id, deque()).append(now)
            self._global_times.append(now)
        if name in RECORDED_METHODS:
            message_id = result.get("message_id") if isinstance(result, dict) else None
            if message_id is None and isinstance(params.get("message_id"), int):
                message_id = params["message_id"]
            clean = {k: v for k, v in params.items() if not isinstance(v, bytes)}
            self.sent.append(
                SentCall(method, chat_id, clean, now, message_id, token, files, result)
            )
            event = self._sent_event
            self._sent_event = asyncio.Event()
            event.set()
        return result

    async def _apply_faults(self, name: str, chat_id: Any, now: float) -> None:
        """Answer with the configured fault, if any applies to this method."""

        def applies(methods: frozenset[str]) -> bool:
            return "*" in methods or name in methods

        if self._hang_event is not None and applies(self._hang_methods):
            event = self._hang_event
            self.hung_requests += 1
            await event.wait()
            raise ApiError(502, "Bad Gateway")
        if self._fail_status is not None and applies(self._fail_methods):
            status = self._fail_status
            if self._fail_times is not None:
                self._fail_times -= 1
                if self._fail_times <= 0:
                    self._fail_status = None
                    self._fail_times = None
            try:
                phrase = HTTPStatus(status).phrase
            except ValueError:
                phrase = "Error"
            raise ApiError(status, phrase)
        if self._rate_limit_times > 0 and applies(self._rate_limit_methods):
            self._rate_limit_times -= 1
            retry_after = self._rate_limit_after
            if chat_id is not None:
                self._retry_until[chat_id] = now + retry_after
            raise too_many(retry_after)

    def _check_flood(self, chat_id: int | str, now: float) -> None:
        """Raise 429 if this message would exceed Telegram's flood limits."""
        if not self.flood_enabled:
            return
        waits: list[float] = []
        glob = self._global_times
        while glob and glob[0] <= now - 1.0:
            glob.popleft()
        if len(glob) >= self._flood_global:
            waits.append(glob[0] + 1.0 - now)
        times = self._chat_times.setdefault(chat_id, deque())
        window, limit = (
            (1.0, self._flood_private)
            if self.chat_type(chat_id) == "private"
            else (60.0, self._flood_group)
        )
        while times and times[0] <= now - window:
            times.popleft()
        if len(times) >= limit:
            waits.append(times[-limit] + window - now)
        if waits:
            retry_after = max(1, math.ceil(max(waits)))
            self._retry_until[chat_id] = now + retry_after
            raise too_many(retry_after)

    def _check_chat(self, chat_id: Any) -> None:
        """Raise the Telegram error for unknown or blocked chats."""
        if chat_id is None or chat_id == "":
            raise bad_request("chat_id is empty")
        if chat_id in self.blocked:
            if self.chat_type(chat_id) == "private":
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            raise ApiError(403, "Forbidden: bot was kicked from the group chat")
        if chat_id in self.missing or not isinstance(chat_id, int) or chat_id == 0:
            raise bad_request("chat not found")

    # ------------------------------------------------------------------ validation helpers

    def _formatted(
        self, params: dict[str, Any], key: str, limit: int, entities_key: str
    ) -> tuple[str, list[dict[str, Any]]]:
        """Validate a text/caption with its parse_mode; return visible text and entities."""
        raw = params.get(key)
        raw = "" if raw is None else str(raw)
        mode = str(params.get("parse_mode") or "").lower()
        entities: list[dict[str, Any]] = []
        if mode == "html":
            visible, entities = parse_html(raw, strict_entities=self.strict_html_entities)
        elif mode in ("", "markdown", "markdownv2"):
            visible = raw
            given = params.get(entities_key)
            if isinstance(given, list):
                entities = given
        else:
            raise bad_request(f"unsupported parse_mode {params.get('parse_mode')!r}")
        stripped = visible.strip()
        if key == "text" and not stripped:
            raise bad_request("message text is empty")
        if len(stripped) > limit:
            raise bad_request(
                "message is too long" if key == "text" else "message caption is too long"
            )
        return visible, entities

    @staticmethod
    def _check_markup(params: dict[str, Any]) -> dict[str, Any] | None:
        """Validate reply_markup; return the inline keyboard to echo, if any."""
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            return None
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad_request(
                'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
            )
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not str(button.get("text", "")).strip():
                    raise bad_request("BUTTON_TEXT_INVALID")
                if "callback_data" in button:
                    size = len(str(button["callback_data"]).encode("utf-8"))
                    if not 1 <= size <= MAX_CALLBACK_DATA:
                        raise bad_request("BUTTON_DATA_INVALID")
                elif "url" in button:
                    if not str(button["url"]).strip():
                        raise bad_request("BUTTON_URL_INVALID")
                elif not any(
                    k in button
                    for k in (
                        "login_url",
                        "switch_inline_query",
                        "switch_inline_query_current_chat",
                        "switch_inline_query_chosen_chat",
                        "callback_game",
                        "pay",
                        "web_app",
                        "copy_text",
                    )
                ):
                    raise bad_request(
                        "can't parse inline keyboard button: Text buttons are unallowed in the "
                        "inline keyboard"
                    )
        return markup

    def _reply_to(self, chat_id: int | str, params: dict[str, Any]) -> dict[str, Any] | None:
        """The message a send replies to (reply_parameters or reply_to_message_id), if any."""
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            target, allow = reply.get("message_id"), bool(reply.get("allow_sending_without_reply"))
        else:
            target = params.get("reply_to_message_id")
            allow = bool(params.get("allow_sending_without_reply"))
        if target is None:
            return None
        original = self.messages.get((chat_id, int(target)))
        if original is None and not allow:
            raise bad_request("message to be replied not found")
        return original

    def pinned_message(self, chat_id: int | str) -> int | None:
        """The chat's most recently pinned message id still pinned, if any."""
        ids = self.pinned.get(chat_id) or []
        return ids[-1] if ids else None

    def user_delete(self, chat_id: int | str, message_id: int) -> None:
        """A member deletes a message (it is unpinned too)."""
        self.messages.pop((chat_id, message_id), None)
        self.user_unpin(chat_id, message_id)

    def user_unpin(self, chat_id: int | str, message_id: int) -> None:
        """A member unpins a message."""
        ids = self.pinned.get(chat_id) or []
        if message_id in ids:
            ids.remove(message_id)

    def _new_bot_message(self, chat_id: int | str, body: dict[str, Any]) -> dict[str, Any]:
        """Create, store and return a Message sent by the bot."""
        message = {
            "message_id": self._new_message_id(chat_id),
            "from": self._bot_user(),
            "chat": self._chat(chat_id),
            "date": int(time.time()),
            **body,
        }
        self.messages[(chat_id, message["message_id"])] = message
        return message

    def _stored(self, params: dict[str, Any], what: str) -> dict[str, Any]:
        """Return the stored message named by chat_id/message_id or raise 'not found'."""
        chat_id = params.get("chat_id")
        self._check_chat(chat_id)
        message_id = params.get("message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        message = self.messages.get((chat_id, message_id))
        if message is None:
            raise bad_request(f"message to {what} not found")
        return message

    # ------------------------------------------------------------------ Bot API methods

    def _m_getme(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """getMe."""
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _m_getupdates(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """getUpdates with offset confirmation and long polling."""
        offset = int(params.get("offset") or 0)
        limit = max(1, min(100, int(params.get("limit") or 100)))
        timeout = max(0.0, float(params.get("timeout") or 0))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if offset > 0:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            elif offset < 0:
                self._updates = self._updates[offset:]
            if self._updates or self._closing:
                return self._updates[:limit]
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            event = self._updates_event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def _m_deletewebhook(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """deleteWebhook (drop_pending_updates clears the queue)."""
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _m_getwebhookinfo(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """getWebhookInfo."""
        return {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> str:
        """Return the storage key for a commands scope/language pair."""
        scope = params.get("scope") or {"type": "default"}
        return json.dumps([scope, params.get("language_code") or ""], sort_keys=True)

    def _m_setmycommands(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """setMyCommands with Telegram's command validation."""
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        for cmd in commands:
            if not isinstance(cmd, dict) or not COMMAND_RE.match(str(cmd.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(cmd.get("description", "")).strip()) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(params)] = commands
        return True

    def _m_getmycommands(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """getMyCommands."""
        return self.commands.get(self._commands_key(params), [])

    def _m_deletemycommands(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """deleteMyCommands."""
        self.commands.pop(self._commands_key(params), None)
        return True

    def _m_close(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """close (harmless)."""
        return True

    def _m_logout(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """logOut (harmless)."""
        return True

    def _m_sendmessage(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """sendMessage."""
        chat_id = params.get("chat_id")
        self._check_chat(chat_id)
        visible, entities = self._formatted(params, "text", MAX_TEXT, "entities")
        markup = self._check_markup(params)
        assert chat_id is not None
        original = self._reply_to(chat_id, params)
        body: dict[str, Any] = {"text": visible}
        if entities:
            body["entities"] = entities
        if markup is not None:
            body["reply_markup"] = markup
        if original is not None:
            body["reply_to_message"] = {
                k: v for k, v in original.items() if k != "reply_to_message"
            }
        return self._new_bot_message(chat_id, body)

    def _m_sendphoto(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """sendPhoto (multipart upload or a known file_id)."""
        chat_id = params.get("chat_id")
        self._check_chat(chat_id)
        if "photo" in files:
            data = files["photo"]
            if not data:
                raise bad_request("file must be non-empty")
            if not (data.startswith(PNG_MAGIC) or data.startswith(JPEG_MAGIC)):
                raise bad_request("IMAGE_PROCESS_FAILED")
            file_id = f"fakephoto{next(self._file_ids)}"
            self.files_by_id[file_id] = data
        else:
            ref = params.get("photo")
            if not ref:
                raise bad_request("there is no photo in the request")
            if str(ref) not in self.files_by_id:
                raise bad_request("wrong file identifier/HTTP URL specified")
            file_id = str(ref)
            data = self.files_by_id[file_id]
            files["photo"] = data
        visible, entities = self._formatted(params, "caption", MAX_CAPTION, "caption_entities")
        markup = self._check_markup(params)
        width, height = _png_size(data)
        body: dict[str, Any] = {
            "photo": [
                {
                    "file_id": file_id,
                    "file_unique_id": hashlib.sha1(data).hexdigest()[:16],
                    "width": width,
                    "height": height,
                    "file_size": len(data),
                }
            ]
        }
        if visible:
            body["caption"] = visible
        if entities:
            body["caption_entities"] = entities
        if markup is not None:
            body["reply_markup"] = markup
        assert chat_id is not None
        return self._new_bot_message(chat_id, body)

    def _m_sendlocation(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """sendLocation."""
        chat_id = params.get("chat_id")
        self._check_chat(chat_id)
        lat, lon = params.get("latitude"), params.get("longitude")
        if lat is None or lon is None:
            raise bad_request("wrong latitude/longitude specified")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise bad_request("wrong latitude/longitude specified")
        markup = self._check_markup(params)
        body: dict[str, Any] = {"location": {"latitude": lat, "longitude": lon}}
        if markup is not None:
            body["reply_markup"] = markup
        assert chat_id is not None
        return self._new_bot_message(chat_id, body)

    def _m_editmessagetext(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """editMessageText."""
        if params.get("inline_message_id"):
            self._formatted(params, "text", MAX_TEXT, "entities")
            self._check_markup(params)
            return True
        message = self._stored(params, "edit")
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        visible, entities = self._formatted(params, "text", MAX_TEXT, "entities")
        markup = self._check_markup(params)
        if (
            visible == message["text"]
            and entities == message.get("entities", [])
            and markup == message.get("reply_markup")
        ):
            raise bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        message["text"] = visible
        message.pop("entities", None)
        message.pop("reply_markup", None)
        if entities:
            message["entities"] = entities
        if markup is not None:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return message

    def _m_editmessagereplymarkup(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """editMessageReplyMarkup."""
        markup = self._check_markup(params)
        if params.get("inline_message_id"):
            return True
        message = self._stored(params, "edit")
        if markup == message.get("reply_markup"):
            raise bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        message.pop("reply_markup", None)
        if markup is not None:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return message

    def _m_deletemessage(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """deleteMessage."""
        message = self._stored(params, "delete")
        self.user_delete(message["chat"]["id"], message["message_id"])
        return True

    def _m_pinchatmessage(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """pinChatMessage (the message must exist; pinning again moves it to the top)."""
        message = self._stored(params, "pin")
        chat_id, message_id = message["chat"]["id"], message["message_id"]
        ids = self.pinned.setdefault(chat_id, [])
        if message_id in ids:
            ids.remove(message_id)
        ids.append(message_id)
        return True

    def _m_unpinchatmessage(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """unpinChatMessage (a message id, else the most recent pin)."""
        chat_id = params.get("chat_id")
        self._check_chat(chat_id)
        assert chat_id is not None
        message_id = params.get("message_id") or self.pinned_message(chat_id)
        if message_id is not None:
            self.user_unpin(chat_id, int(message_id))
        return True

    def _m_getchat(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """getChat, with pinned_message when one is pinned."""
        chat_id = params.get("chat_id")
        self._check_chat(chat_id)
        assert chat_id is not None
        chat: dict[str, Any] = {
            **self._chat(chat_id),
            "accent_color_id": 0,
            "max_reaction_count": 11,
        }
        pinned = self.pinned_message(chat_id)
        if pinned is not None and (chat_id, pinned) in self.messages:
            chat["pinned_message"] = self.messages[(chat_id, pinned)]
        return chat

    def _m_answercallbackquery(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """answerCallbackQuery (ids must come from push_callback, answered once)."""
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._pending_callbacks:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        if len(str(params.get("text") or "")) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        self._pending_callbacks.discard(query_id)
        self.answered_callbacks[query_id] = dict(params)
        return True

    def _m_sendchataction(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """sendChatAction."""
        self._check_chat(params.get("chat_id"))
        if params.get("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    def _m_getfile(self, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        """getFile for photos the bot uploaded."""
        file_id = str(params.get("file_id") or "")
        if file_id not in self.files_by_id:
            raise bad_request("invalid file_id")
        data = self.files_by_id[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": hashlib.sha1(data).hexdigest()[:16],
            "file_size": len(data),
            "file_path": f"photos/{file_id}.png",
        }

    async def _handle_file(self, request: web.Request) -> web.Response:
        """Serve /file/bot{token}/photos/{file_id}.png downloads."""
        path = request.match_info["path"]
        file_id = path.rsplit("/", 1)[-1].split(".", 1)[0]
        data = self.files_by_id.get(file_id)
        if data is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        return web.Response(body=data, content_type="application/octet-stream")

    # ------------------------------------------------------------------ HTTP controls

    def state(self) -> dict[str, Any]:
        """Return a JSON-safe summary of fault modes, tokens and counters."""
        return {
            "url": self.url if self.port else None,
            "tokens": sorted(self.tokens),
            "sent_count": len(self.sent),
            "pending_updates": len(self._updates),
            "violations": [v.to_json() for v in self.violations],
            "hung_requests": self.hung_requests,
            "hanging": self._hang_event is not None,
            "fail_status": self._fail_status,
            "rate_limit_times": self._rate_limit_times,
            "flood_enabled": self.flood_enabled,
            "blocked": sorted(map(str, self.blocked)),
            "missing": sorted(map(str, self.missing)),
        }

    def _filter_sent(self, q: dict[str, Any]) -> list[SentCall]:
        """Filter recorded calls by method, chat_id and text substring."""
        calls = self.sent
        if q.get("method"):
            calls = [c for c in calls if c.method.lower() == str(q["method"]).lower()]
        if q.get("chat_id") not in (None, ""):
            chat = _to_int("chat_id", q["chat_id"])
            calls = [c for c in calls if c.chat_id == chat]
        if q.get("contains"):
            calls = [c for c in calls if str(q["contains"]) in (c.visible_text or "")]
        return calls

    async def _handle_control(self, request: web.Request) -> web.Response:
        """Serve /_fake/{action} JSON controls for out-of-process use."""
        action = request.match_info["action"]
        body: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            try:
                payload = await request.json()
            except ValueError:
                return web.json_response({"error": "body must be JSON"}, status=400)
            if isinstance(payload, dict):
                body.update(payload)
        try:
            result = await self._control(action, body)
        except TimeoutError as exc:
            return web.json_response({"error": "timeout", "detail": str(exc)}, status=408)
        except (KeyError, TypeError, ValueError) as exc:
            return web.json_response(
                {"error": "bad control request", "detail": repr(exc)}, status=400
            )
        if result is None:
            return web.json_response({"error": "unknown control", "detail": action}, status=404)
        return web.json_response({"ok": True, "result": result})

    async def _control(self, action: str, b: dict[str, Any]) -> Any:
        """Run one control action; None means unknown action."""

        def opt_int(key: str) -> int | None:
            return None if b.get(key) in (None, "") else int(b[key])

        simple: dict[str, Callable[[], Any]] = {
            "push_message": lambda: self.push_message(
                int(b["chat_id"]),
                str(b["text"]),
                opt_int("user_id"),
                b.get("chat_type"),
                username=b.get("username"),
            ),
            "push_callback": lambda: self.push_callback(
                int(b["chat_id"]),
                str(b["data"]),
                int(b["message_id"]),
                opt_int("user_id"),
                b.get("chat_type"),
                username=b.get("username"),
            ),
            "push_location": lambda: self.push_location(
                int(b["chat_id"]),
                float(b["lat"]),
                float(b["lon"]),
                opt_int("user_id"),
                b.get("chat_type"),
                username=b.get("username"),
            ),
            "fail_with_status": lambda: self.fail_with_status(
                int(b.get("status", 502)),
                times=opt_int("times"),
                methods=b.get("methods"),
            ),
            "hang": lambda: self.hang(methods=b.get("methods")),
            "rate_limit": lambda: self.rate_limit(
                int(b.get("retry_after", 1)),
                int(b.get("times", 1)),
                methods=b.get("methods"),
            ),
            "enable_flood": lambda: self.enable_flood(
                per_private_chat_per_sec=int(b.get("per_private_chat_per_sec", 1)),
                per_group_per_min=int(b.get("per_group_per_min", 20)),
                global_per_sec=int(b.get("global_per_sec", 30)),
                methods=b.get("methods"),
            ),
            "disable_flood": self.disable_flood,
            "clear_faults": self.clear_faults,
            "reset": self.reset,
            "block": lambda: self.blocked.add(_to_int("chat_id", b["chat_id"])),
            "unblock": lambda: self.blocked.discard(_to_int("chat_id", b["chat_id"])),
            "missing": lambda: self.missing.add(_to_int("chat_id", b["chat_id"])),
            "user_delete": lambda: self.user_delete(
                _to_int("chat_id", b["chat_id"]), int(b["message_id"])
            ),
            "user_unpin": lambda: self.user_unpin(
                _to_int("chat_id", b["chat_id"]), int(b["message_id"])
            ),
        }
        if action in simple:
            out = simple[action]()
            return out if out is not None else True
        if action == "state":
            return self.state()
        if action == "sent":
            return [c.to_json() for c in self._filter_sent(b)]
        if action == "requests":
            return [vars(r) for r in self.requests]
        if action == "violations":
            return [v.to_json() for v in self.violations]
        if action == "wait":
            count = int(b.get("count", 1))
            timeout = min(float(b.get("timeout", 10)), 300.0)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while True:
                matches = self._filter_sent(b)
                if len(matches) >= count:
                    return [c.to_json() for c in matches]
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError(f"{len(matches)}/{count} matching calls in {timeout}s")
                event = self._sent_event
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
        return None

    async def _handle_control_file(self, request: web.Request) -> web.Response:
        """Serve raw bytes of an uploaded file by file_id."""
        data = self.files_by_id.get(request.match_info["file_id"])
        if data is None:
            return web.json_response({"error": "no such file"}, status=404)
        return web.Response(body=data, content_type="application/octet-stream")


class FakeBotApiClient:
    """Async HTTP client for the /_fake controls of a standalone fake server."""

    def __init__(self, url: str) -> None:
        """Remember the fake's base URL (must be on 127.0.0.1)."""
        if not url.startswith(f"http://{LOOPBACK}:"):
            raise ValueError("the fake Bot API must be on 127.0.0.1")
        self.url = url.rstrip("/")

    async def call(self, action: str, http_timeout: float = 30.0, **body: Any) -> Any:
        """POST a control action and return its result (raises on error)."""
        client_timeout = aiohttp.ClientTimeout(total=http_timeout)
        async with (
            aiohttp.ClientSession(timeout=client_timeout) as session,
            session.post(f"{self.url}/_fake/{action}", json=body) as resp,
        ):
            payload = await resp.json()
            if resp.status == 408:
                raise TimeoutError(payload.get("detail"))
            if resp.status != 200:
                raise RuntimeError(f"control {action} failed: {resp.status} {payload}")
            return payload["result"]

    async def push_message(self, chat_id: int, text: str, **kw: Any) -> Any:
        """Queue a text message update."""
        return await self.call("push_message", chat_id=chat_id, text=text, **kw)

    async def push_callback(self, chat_id: int, data: str, message_id: int, **kw: Any) -> Any:
        """Queue a callback_query update."""
        return await self.call(
            "push_callback", chat_id=chat_id, data=data, message_id=message_id, **kw
        )

    async def push_location(self, chat_id: int, lat: float, lon: float, **kw: Any) -> Any:
        """Queue a location message update."""
        return await self.call("push_location", chat_id=chat_id, lat=lat, lon=lon, **kw)

    async def sent(self, **filters: Any) -> list[dict[str, Any]]:
        """Return recorded calls (filters: method, chat_id, contains)."""
        return await self.call("sent", **filters)

    async def wait(
        self,
        timeout: float = 10.0,  # noqa: ASYNC109
        count: int = 1,
        **filters: Any,
    ) -> list[Any]:
        """Wait until ``count`` calls match the filters; raise TimeoutError otherwise."""
        return await self.call(
            "wait", http_timeout=timeout + 5, timeout=timeout, count=count, **filters
        )

    async def violations(self) -> list[dict[str, Any]]:
        """Return recorded retry_after violations."""
        return await self.call("violations")

    async def file(self, file_id: str) -> bytes:
        """Download an uploaded file's bytes."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/_fake/files/{file_id}") as resp,
        ):
            resp.raise_for_status()
            return await resp.read()


async def _serve(port: int) -> None:
    """Run a standalone fake until cancelled, printing its URL once ready."""
    fake = FakeBotApi(port)
    await fake.start()
    print(f"READY {fake.url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m tests.fakes.bot_api --port N`` (0 = any free port)."""
    parser = argparse.ArgumentParser(description="Fake Telegram Bot API on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
