"""The agent's settings: required variables named, the token file, and no token in errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.settings import SettingsError, load_agent_settings

BASE = {
    "ONTWATCH_CENTRAL_URL": "http://127.0.0.1:5000/",
    "ONTWATCH_AGENT_NAME": "POP-2",
    "ONTWATCH_AGENT_TOKEN": "s3cret-token-value",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("ONTWATCH_", "TELEGRAM_")):
            monkeypatch.delenv(key)


def setenv(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def test_defaults_and_values(monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(monkeypatch, **BASE)
    s = load_agent_settings()
    assert s.central_url == "http://127.0.0.1:5000" and s.agent_name == "POP-2"
    assert s.token == "s3cret-token-value"
    assert (s.probe_interval, s.probe_timeout) == (5.0, 1.0)
    assert s.agent_queue == Path("agent-queue.sqlite") and s.queue_max_bytes == 256 << 20
    assert s.health_silent_share == 0.9 and s.log_level == "INFO"


@pytest.mark.parametrize("missing", list(BASE))
def test_each_required_variable_is_named(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    setenv(monkeypatch, **{k: v for k, v in BASE.items() if k != missing})
    with pytest.raises(SettingsError, match=f"{missing}: required"):
        load_agent_settings()


def test_the_token_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    token = tmp_path / "agent.token"
    token.write_text("from-a-file\n", encoding="utf-8")
    env = {k: v for k, v in BASE.items() if k != "ONTWATCH_AGENT_TOKEN"}
    setenv(monkeypatch, **env, ONTWATCH_AGENT_TOKEN_FILE=str(token))
    assert load_agent_settings().token == "from-a-file"
    token.write_text("\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"ONTWATCH_AGENT_TOKEN: .*empty"):
        load_agent_settings()
    monkeypatch.setenv("ONTWATCH_AGENT_TOKEN_FILE", str(tmp_path / "nope"))
    with pytest.raises(SettingsError, match="ONTWATCH_AGENT_TOKEN_FILE: cannot read"):
        load_agent_settings()


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("ONTWATCH_CENTRAL_URL", "noc.example.net"),
        ("ONTWATCH_AGENT_NAME", "POP 2"),
        ("ONTWATCH_PROBE_INTERVAL", "0"),
        ("ONTWATCH_PROBE_TIMEOUT", "61"),
        ("ONTWATCH_AGENT_QUEUE_MAX_MB", "-1"),
        ("ONTWATCH_LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_values_name_the_variable_and_never_the_token(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    setenv(monkeypatch, **{**BASE, var: value})
    with pytest.raises(SettingsError) as err:
        load_agent_settings()
    assert var in str(err.value) and BASE["ONTWATCH_AGENT_TOKEN"] not in str(err.value)


def test_the_token_is_not_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(monkeypatch, **BASE)
    s = load_agent_settings()
    assert BASE["ONTWATCH_AGENT_TOKEN"] not in repr(s) and BASE["ONTWATCH_AGENT_TOKEN"] not in str(
        s
    )
