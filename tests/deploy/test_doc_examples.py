"""The docs' examples work as written: real ONT ids, and env files systemd reads as meant.

Decision (issue 12): the examples are fixed rather than customer ids accepted as aliases;
an ONT id is the inventory's `id` (`1` in the older system's export), and the CLI says
whose customer id a mistaken one is (tests/ontwatch/test_cli.py).
"""

from __future__ import annotations

import json
import re

import pytest

from ontwatch.settings import SettingsError, load_settings
from tests.conftest import HOTSPOT
from tests.deploy.dockerfile import ROOT

DOCS = [ROOT / "README.md", ROOT / "docs" / "operations.md"]
PLACEHOLDERS = {"{id}", "ID", "ONT_ID", "ID|AREA", "ID]"}
ID_USES = [
    re.compile(r"/api/ont-status/([^\s\"\\`?]+)"),
    re.compile(r"ontwatch simulate ([A-Za-z0-9_.-]+)"),
    re.compile(r"\{\"id\": \"([^\"]+)\", \"status\""),
]
ENV_LINE = re.compile(r"^((?:ONTWATCH|TELEGRAM)_[A-Z_]+)=(.*)$")


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, re.S)


def example_ids() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for pattern in ID_USES:
            found += [(doc.name, m.group(1)) for m in pattern.finditer(text)]
    return found


def test_the_examples_push_to_ont_ids_not_customer_ids() -> None:
    rows = json.loads(HOTSPOT.read_text(encoding="utf-8"))
    ids = {str(r["id"]) for r in rows}
    customers = {r["id_pelanggan"] for r in rows}
    uses = [(doc, i) for doc, i in example_ids() if i not in PLACEHOLDERS]
    assert uses, "no example found: the patterns no longer match the docs"
    for doc, ont_id in uses:
        assert ont_id not in customers, f"{doc}: {ont_id} is a customer id, not an ONT id"
        assert ont_id in ids, f"{doc}: {ont_id} is not an ONT id of the older system's export"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_env_file_examples_hold_no_inline_comment_and_load(
    doc: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = doc.read_text(encoding="utf-8")  # type: ignore[attr-defined]
    lines = [
        m
        for block in code_blocks(text)
        for line in block.splitlines()
        if (m := ENV_LINE.match(line))
    ]
    for m in lines:
        name, value = m.group(1), m.group(2)
        assert "#" not in value, f"{name}: systemd would keep {value!r} as the value"
        if name in {"ONTWATCH_HTTP_HOST", "ONTWATCH_TIMEZONE", "ONTWATCH_ALERT_CHATS"}:
            monkeypatch.setenv(name, value)
    load_settings()  # the example's values are valid settings


def test_the_old_trap_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONTWATCH_HTTP_HOST", "0.0.0.0          # so routers can push")
    with pytest.raises(SettingsError, match=r"ONTWATCH_HTTP_HOST: .*inline comment"):
        load_settings()
