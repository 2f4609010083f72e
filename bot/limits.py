"""Telegram's size limits: messages of at most 4096 characters, captions of 1024."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

MAX_TEXT = 4096
MAX_CAPTION = 1024
_TAG = re.compile(r"<[^>]*>")
ELLIPSIS = "…"


def visible(text: str) -> str:
    """What Telegram shows for an HTML text: tags dropped, entities decoded."""
    return html.unescape(_TAG.sub("", text))


def trim(text: str, limit: int = MAX_TEXT) -> str:
    """Cut an HTML text to the limit; when cut, formatting is dropped so no tag is left open."""
    if len(text) <= limit:
        return text
    plain = visible(text)
    # Escaping can lengthen the text again, so shrink until the escaped form fits.
    keep = limit - 1
    while keep > 0:
        out = html.escape(plain[:keep], quote=False) + ELLIPSIS
        if len(out) <= limit:
            return out
        keep -= max(1, len(out) - limit)
    return ELLIPSIS


def pack(blocks: Iterable[str], limit: int = MAX_TEXT, sep: str = "\n\n") -> list[list[int]]:
    """Group block indexes into messages whose joined text stays within the limit."""
    groups: list[list[int]] = []
    size = 0
    for i, block in enumerate(blocks):
        length = min(len(block), limit)
        if groups and size + len(sep) + length <= limit:
            groups[-1].append(i)
            size += len(sep) + length
        else:
            groups.append([i])
            size = length
    return groups


def split(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split an HTML text on line breaks into messages within the limit (tags stay on a line)."""
    lines = text.split("\n")
    parts = [[lines[i] for i in group] for group in pack(lines, limit, sep="\n")]
    return [trim("\n".join(p), limit) for p in parts]
