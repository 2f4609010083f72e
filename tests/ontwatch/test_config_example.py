"""deploy/config.example.toml documents every setting, at its default, and loads as is."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import AliasChoices

from ontwatch.settings import SECRET_FILE_VARS, Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "config.example.toml"
COMMENTED_KEY = re.compile(r"^#\s?([a-z_][a-z0-9_]*)\s*=\s*(.+)$")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ONTWATCH_* or TELEGRAM_* variable of the machine leaks into these tests."""
    for key in list(os.environ):
        if key.startswith(("ONTWATCH_", "TELEGRAM_")):
            monkeypatch.delenv(key)


def env_name(field: str) -> str:
    """The environment variable of a setting (the first alias)."""
    alias = Settings.model_fields[field].validation_alias
    assert isinstance(alias, AliasChoices)
    return str(alias.choices[0])


def active_keys() -> dict[str, Any]:
    """The keys the file sets (parsed as TOML)."""
    with EXAMPLE.open("rb") as fh:
        return tomllib.load(fh)


def commented_keys() -> dict[str, str]:
    """`# key = value` lines naming a setting: the settings left at an unset default."""
    found: dict[str, str] = {}
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = COMMENTED_KEY.match(line)
        if m and m.group(1) in Settings.model_fields:
            found[m.group(1)] = m.group(2)
    return found


def test_the_file_loads_through_the_settings_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """ONTWATCH_CONFIG pointing at the example gives exactly the default settings."""
    monkeypatch.setenv("ONTWATCH_CONFIG", str(EXAMPLE))
    loaded = load_settings()
    monkeypatch.delenv("ONTWATCH_CONFIG")
    assert loaded.model_dump() == load_settings().model_dump()


def test_the_loader_reads_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy with two values changed loads with those values (the file is not ignored)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("http_port = 5000", "http_port = 5001").replace(
        "alert_chats = []", "alert_chats = [-1001234567890]"
    )
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    monkeypatch.setenv("ONTWATCH_CONFIG", str(config))
    s = load_settings()
    assert (s.http_port, s.alert_chats) == (5001, (-1001234567890,))


def test_every_setting_appears_once_active_or_commented() -> None:
    """Each field is a key; the unset-by-default ones (None) are the commented ones."""
    active, commented = active_keys(), commented_keys()
    fields = set(Settings.model_fields)
    assert set(active) <= fields, f"unknown keys: {set(active) - fields}"
    assert not set(active) & set(commented), "a key is both set and commented out"
    assert set(active) | set(commented) == fields, (
        f"missing: {fields - set(active) - set(commented)}"
    )
    unset = {name for name, f in Settings.model_fields.items() if f.default is None}
    assert set(commented) == unset


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_value_is_the_default(field: str) -> None:
    """The value written for each active key equals the field's default."""
    active = active_keys()
    default = Settings.model_fields[field].default
    if field not in active:
        assert default is None
        return
    value = active[field]
    if isinstance(default, tuple):
        value = tuple(value)
    elif isinstance(default, Path):
        value = Path(value)
    assert value == default
    assert isinstance(value, bool) == isinstance(default, bool), "a number where a bool belongs"


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_each_key_is_documented_with_its_environment_variable(field: str) -> None:
    """The comment block above each key names the variable that sets it."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if re.match(rf"^(#\s?)?{field}\s*=", line))
    block = []
    for line in reversed(lines[:index]):
        if not line.startswith("#") or line.startswith("# ---"):
            break
        block.append(line)
    assert any(env_name(field) in line for line in block), f"{field}: no {env_name(field)}"


def test_secret_file_variables_are_mentioned() -> None:
    """The *_FILE variables for the two tokens are documented next to them."""
    text = EXAMPLE.read_text(encoding="utf-8")
    for var in SECRET_FILE_VARS.values():
        assert var in text


def test_commented_samples_are_valid_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uncommenting every sample line still gives a valid configuration."""
    body = "\n".join(f"{key} = {value}" for key, value in commented_keys().items())
    config = tmp_path / "uncommented.toml"
    config.write_text(EXAMPLE.read_text(encoding="utf-8") + "\n" + body + "\n", encoding="utf-8")
    monkeypatch.setenv("ONTWATCH_CONFIG", str(config))
    s = load_settings()
    assert s.probe is True and s.allowed_chats == (123456789,)
    assert s.backup_dir == Path("/var/backups/ontwatch")
    # An empty token in the file does not enable the bot.
    assert not s.bot_enabled


def test_the_environment_wins_over_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """As the file's header says: a variable overrides the file's key."""
    monkeypatch.setenv("ONTWATCH_CONFIG", str(EXAMPLE))
    monkeypatch.setenv("ONTWATCH_HTTP_PORT", "5099")
    assert load_settings().http_port == 5099
