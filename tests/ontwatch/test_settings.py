"""Settings from the environment, a TOML file and *_FILE secrets; errors name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from ontwatch.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(("ONTWATCH_", "TELEGRAM_")):
            monkeypatch.delenv(key)


def test_defaults_match_the_design() -> None:
    s = load_settings()
    assert (str(s.db), s.http_host, s.http_port) == ("data/ontwatch.db", "127.0.0.1", 5000)
    assert s.telegram_api_url == "https://api.telegram.org" and not s.bot_enabled
    assert s.alert_chats == () and s.chats_allowed == frozenset()
    assert s.probe_interval == 5 and s.lang == "id" and s.log_level == "INFO"
    assert s.thresholds.critical_rto == 3 and s.thresholds.down_after == 2


@pytest.mark.parametrize(
    ("name", "env", "check"),
    [
        (
            "chat_lists",
            {"ONTWATCH_ALERT_CHATS": "-1001, 42", "ONTWATCH_ALLOWED_CHATS": "7"},
            lambda s: s.alert_chats == (-1001, 42) and s.chats_allowed == {-1001, 42, 7},
        ),
        ("probe_off", {"ONTWATCH_PROBE": "off"}, lambda s: s.probe is False),
        ("probe_on", {"ONTWATCH_PROBE": "ON"}, lambda s: s.probe is True),
        (
            "api_url_trailing_slash",
            {"TELEGRAM_API_URL": "http://127.0.0.1:8081/"},
            lambda s: s.telegram_api_url == "http://127.0.0.1:8081",
        ),
        ("token_enables_bot", {"TELEGRAM_BOT_TOKEN": "123:abc"}, lambda s: s.bot_enabled),
        ("loopback_v6", {"ONTWATCH_HTTP_HOST": "::1"}, lambda s: s.host_is_loopback),
        ("public_bind", {"ONTWATCH_HTTP_HOST": "0.0.0.0"}, lambda s: not s.host_is_loopback),
    ],
)
def test_environment(name: str, env: dict[str, str], check, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert check(load_settings())


@pytest.mark.parametrize(
    ("name", "var", "value"),
    [
        ("port_text", "ONTWATCH_HTTP_PORT", "http"),
        ("port_range", "ONTWATCH_HTTP_PORT", "70000"),
        ("chat_ids", "ONTWATCH_ALERT_CHATS", "group-a"),
        ("lang", "ONTWATCH_LANG", "fr"),
        ("level", "ONTWATCH_LOG_LEVEL", "LOUD"),
        ("interval", "ONTWATCH_PROBE_INTERVAL", "0"),
        ("tile_url", "ONTWATCH_TILE_URL", "https://tiles.example/x.png"),
        ("timezone", "ONTWATCH_TIMEZONE", "Mars/Olympus"),
        ("api_url", "TELEGRAM_API_URL", "api.telegram.org"),
    ],
)
def test_bad_values_name_the_variable(name: str, var: str, value: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError, match=var):
        load_settings()


def test_toml_file_and_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "ontwatch.toml"
    conf.write_text('http_port = 6001\nlang = "en"\nalert_chats = [-100, 5]\n')
    monkeypatch.setenv("ONTWATCH_CONFIG", str(conf))
    s = load_settings()
    assert (s.http_port, s.lang, s.alert_chats) == (6001, "en", (-100, 5))
    monkeypatch.setenv("ONTWATCH_HTTP_PORT", "6002")
    assert load_settings().http_port == 6002


def test_secret_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "token"
    secret.write_text("123456:ABCDEF\n")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN_FILE", str(secret))
    s = load_settings()
    assert s.telegram_bot_token is not None
    assert s.telegram_bot_token.get_secret_value() == "123456:ABCDEF"
    assert "ABCDEF" not in repr(s)
    monkeypatch.setenv("ONTWATCH_API_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="ONTWATCH_API_TOKEN_FILE"):
        load_settings()


def test_missing_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONTWATCH_CONFIG", "/nonexistent/ontwatch.toml")
    with pytest.raises(SettingsError, match="ONTWATCH_CONFIG"):
        load_settings()


@pytest.mark.parametrize("value", ["", "  ", "\n"])
def test_blank_tokens_are_unset(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONTWATCH_API_TOKEN", value)
    token_file = tmp_path / "bot"
    token_file.write_text(value)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN_FILE", str(token_file))
    s = load_settings()
    assert s.api_token is None and s.telegram_bot_token is None and not s.bot_enabled
