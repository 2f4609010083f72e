"""Inline keyboards and their callback data (at most 64 bytes whatever the ONT id or area)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.texts import t

MAX_CALLBACK = 64
HASH_PREFIX = "#"

# Verbs: short so that most ids fit as they are.
ACK = "a"
MUTE = "m"
MAP = "p"
LOCATION = "l"
ACK_AREA = "aa"
MUTE_AREA = "ma"
MAP_AREA = "pa"
OFFLINE_PAGE = "o"
VERBS = frozenset({ACK, MUTE, MAP, LOCATION, ACK_AREA, MUTE_AREA, MAP_AREA, OFFLINE_PAGE})


def short_key(name: str) -> str:
    """A stable 16-character key for a name too long for callback data."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return HASH_PREFIX + base64.urlsafe_b64encode(digest).decode()[:16]


def encode(verb: str, name: str) -> str:
    """Callback data 'verb:name', or 'verb:#hash' when the name would not fit."""
    data = f"{verb}:{name}"
    if len(data.encode("utf-8")) <= MAX_CALLBACK and not name.startswith(HASH_PREFIX):
        return data
    return f"{verb}:{short_key(name)}"


@dataclass(frozen=True, slots=True)
class Callback:
    """Decoded callback data: the verb and the ONT id/area key (maybe a hash key)."""

    verb: str
    key: str

    def resolve(self, names: Iterable[str]) -> str | None:
        """The id/area this key stands for among the known names, None when gone."""
        known = list(names)
        if not self.key.startswith(HASH_PREFIX):
            return self.key if self.key in known else None
        return next((n for n in known if short_key(n) == self.key), None)


def decode(data: str | None) -> Callback | None:
    """Parse callback data; None when it is not ours (or malformed)."""
    if not data:
        return None
    verb, sep, key = data.partition(":")
    if not sep or verb not in VERBS or not key:
        return None
    return Callback(verb, key)


def ont_buttons(ont_id: str, lang: str, *, has_location: bool = True) -> InlineKeyboardMarkup:
    """Ack, Mute 1h, Map and Location for one ONT."""
    row = [
        InlineKeyboardButton(t(lang, "btn_ack"), callback_data=encode(ACK, ont_id)),
        InlineKeyboardButton(t(lang, "btn_mute"), callback_data=encode(MUTE, ont_id)),
    ]
    row2 = [InlineKeyboardButton(t(lang, "btn_map"), callback_data=encode(MAP, ont_id))]
    if has_location:
        row2.append(
            InlineKeyboardButton(t(lang, "btn_location"), callback_data=encode(LOCATION, ont_id))
        )
    return InlineKeyboardMarkup([row, row2])


def area_buttons(area: str, lang: str) -> InlineKeyboardMarkup:
    """Ack, Mute 1h and Map for a whole area (mass outages)."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(t(lang, "btn_ack"), callback_data=encode(ACK_AREA, area)),
                InlineKeyboardButton(t(lang, "btn_mute"), callback_data=encode(MUTE_AREA, area)),
            ],
            [InlineKeyboardButton(t(lang, "btn_map"), callback_data=encode(MAP_AREA, area))],
        ]
    )


def pager(page: int, pages: int) -> InlineKeyboardMarkup | None:
    """◀ ▶ buttons for a paginated list; None when it fits on one page."""
    if pages <= 1:
        return None
    buttons = []
    if page > 1:
        buttons.append(InlineKeyboardButton("◀", callback_data=f"{OFFLINE_PAGE}:{page - 1}"))
    buttons.append(InlineKeyboardButton(f"{page}/{pages}", callback_data=f"{OFFLINE_PAGE}:{page}"))
    if page < pages:
        buttons.append(InlineKeyboardButton("▶", callback_data=f"{OFFLINE_PAGE}:{page + 1}"))
    return InlineKeyboardMarkup([buttons])
