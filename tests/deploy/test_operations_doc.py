"""docs/operations.md stays in step with the code: every setting, every bot command, links."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import AliasChoices

from ontwatch.settings import SECRET_FILE_VARS, Settings, load_settings
from tests.deploy.dockerfile import ROOT

DOC = ROOT / "docs" / "operations.md"


def text() -> str:
    """The document."""
    return DOC.read_text(encoding="utf-8")


def settings_table() -> dict[str, list[str]]:
    """Rows of the "All settings" table by variable: [variable, TOML key, default, meaning]."""
    section = text().split("### All settings", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0].strip("`")] = cells
    return rows


def env_name(field: str) -> str:
    """A setting's environment variable (the first alias)."""
    alias = Settings.model_fields[field].validation_alias
    assert isinstance(alias, AliasChoices)
    return str(alias.choices[0])


def cell_value(cell: str) -> Any:
    """The first `code` of a default cell, read as TOML when it parses, else as text."""
    m = re.search(r"`([^`]*)`", cell)
    assert m, f"no `value` in {cell!r}"
    raw = m.group(1)
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_has_a_row_with_its_key_and_default(field: str) -> None:
    """The row names the variable and the TOML key and gives the default."""
    rows = settings_table()
    var = env_name(field)
    assert var in rows, f"{var} missing from the settings table"
    _, key, default_cell, meaning = rows[var]
    assert key == f"`{field}`" and meaning
    default = Settings.model_fields[field].default
    if default is None:
        assert default_cell.startswith("unset")
    elif default == ():
        assert default_cell == "empty"
    else:
        value = load_settings(**{field: cell_value(default_cell)})
        assert getattr(value, field) == getattr(load_settings(), field)


def test_the_table_has_nothing_else_but_the_file_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Besides the settings: ONTWATCH_CONFIG and the *_FILE secrets, nothing unknown."""
    known = {env_name(f) for f in Settings.model_fields}
    extra = set(settings_table()) - known
    assert extra == {"ONTWATCH_CONFIG", *SECRET_FILE_VARS.values()}


def registered_commands() -> set[str]:
    """The commands bot.handlers registers with python-telegram-bot."""
    from telegram.ext import CommandHandler

    from bot.handlers import Handlers

    class Collect:
        """Stands in for the PTB Application: keeps what is added."""

        def __init__(self) -> None:
            self.handlers: list[Any] = []

        def add_handler(self, handler: Any) -> None:
            """Keep a handler."""
            self.handlers.append(handler)

        def add_error_handler(self, handler: Any) -> None:
            """Ignore the error handler."""

    app = Collect()
    Handlers(ctx=None).register(app)  # type: ignore[arg-type]
    found: set[str] = set()
    for handler in app.handlers:
        if isinstance(handler, CommandHandler):
            found |= set(handler.commands)
    return found


def test_every_bot_command_is_in_the_commands_table() -> None:
    """Each registered command has a row, and the table lists no command that does not exist."""
    section = text().split("## Bot commands", 1)[1]
    documented = set(re.findall(r"^\| `/(\w+)", section, flags=re.M))
    commands = registered_commands()
    assert len(commands) >= 10
    assert documented == commands


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def test_links_resolve() -> None:
    """Every #anchor is a heading of the page and every relative file link exists."""
    doc = text()
    anchors = {slug(h) for h in re.findall(r"^#+ (.+)$", doc, flags=re.M)}
    for target in re.findall(r"\]\(([^)]+)\)", doc):
        if target.startswith("#"):
            assert target[1:] in anchors, target
        elif not target.startswith(("http://", "https://")):
            assert (DOC.parent / target).resolve().exists(), target


def test_mentions_the_deploy_files() -> None:
    """The page points at the files an operator uses."""
    doc = text()
    for path in ("deploy/compose.yaml", "deploy/ontwatch.service", "deploy/config.example.toml"):
        assert path in doc and (ROOT / path).is_file()
    assert Path(ROOT / "deploy" / "Dockerfile").is_file() and "deploy/Dockerfile" in doc
