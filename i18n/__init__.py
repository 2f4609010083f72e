"""Texts shared by the bot and the pages, in Indonesian and English: reasons, durations, states.

Every function returns plain text; callers escape it (Jinja autoescape, the bot's esc()).
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["id", "en"]
LANGS: tuple[Lang, ...] = ("id", "en")


def lang_of(value: object, default: Lang = "id") -> Lang:
    """A supported language code, else the default."""
    return value if value in LANGS else default  # type: ignore[return-value]


__all__ = ["LANGS", "Lang", "lang_of"]
