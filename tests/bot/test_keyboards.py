"""Callback data: at most 64 bytes, and resolvable back to the ONT or area."""

from __future__ import annotations

from bot import keyboards


def test_short_ids_stay_readable_long_ones_hash_and_resolve() -> None:
    assert keyboards.encode(keyboards.ACK, "17") == "a:17"
    long_id = "ОНТ-" + "é" * 60  # multi-byte: bytes, not characters, count
    data = keyboards.encode(keyboards.MUTE, long_id)
    assert len(data.encode()) <= 64
    cb = keyboards.decode(data)
    assert cb is not None and cb.resolve(["17", long_id]) == long_id
    assert cb.resolve(["17"]) is None  # deleted since: the button no longer applies


def test_ids_that_look_like_hash_keys_are_hashed_too() -> None:
    data = keyboards.encode(keyboards.ACK, "#abc")
    assert data != "a:#abc"
    assert keyboards.decode(data).resolve(["#abc"]) == "#abc"  # type: ignore[union-attr]


def test_foreign_or_malformed_data_is_ignored() -> None:
    assert keyboards.decode("zz:1") is None
    assert keyboards.decode("a:") is None
    assert keyboards.decode(None) is None
