"""Counts as people read them: '1.240' in Indonesian, '1,240' in English."""

from __future__ import annotations

from i18n import Lang

# Thousands separator per language (Indonesian uses the dot, as in '1.240 ONT').
SEPARATORS: dict[str, str] = {"id": ".", "en": ","}


def format_count(value: int, lang: Lang) -> str:
    """A whole number with its thousands grouped: 1240 -> '1.240' (id) / '1,240' (en)."""
    return f"{value:,}".replace(",", SEPARATORS.get(lang, ","))
