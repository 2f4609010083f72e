"""The agent's settings: environment variables, the optional TOML file and the token file.

The same conventions as the service (ontwatch/settings.py): the contract's variable names,
an empty variable counts as unset, secrets may come from a *_FILE, and a bad value is one
SettingsError naming the variable — never echoing the token.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ontwatch.settings import SecretFileSource, SettingsError, layered_sources

__all__ = ["AgentSettings", "SettingsError", "load_agent_settings"]

# Names as `ontwatch agents add` accepts them: no spaces or control characters to log.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
AGENT_SECRET_FILE_VARS = {"agent_token": "ONTWATCH_AGENT_TOKEN_FILE"}


def _env(name: str, field: str) -> AliasChoices:
    """The contract's variable name, and the plain field name (for the TOML file)."""
    return AliasChoices(name, field)


class AgentSettings(BaseSettings):
    """Every setting of `ontwatch agent`, validated at start-up."""

    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, case_sensitive=True, env_ignore_empty=True
    )

    central_url: str = Field(validation_alias=_env("ONTWATCH_CENTRAL_URL", "central_url"))
    agent_name: str = Field(validation_alias=_env("ONTWATCH_AGENT_NAME", "agent_name"))
    agent_token: SecretStr = Field(validation_alias=_env("ONTWATCH_AGENT_TOKEN", "agent_token"))
    probe_interval: float = Field(
        5.0, gt=0, le=3600, validation_alias=_env("ONTWATCH_PROBE_INTERVAL", "probe_interval")
    )
    probe_timeout: float = Field(
        1.0, gt=0, le=60, validation_alias=_env("ONTWATCH_PROBE_TIMEOUT", "probe_timeout")
    )
    agent_queue: Path = Field(
        Path("agent-queue.sqlite"), validation_alias=_env("ONTWATCH_AGENT_QUEUE", "agent_queue")
    )
    agent_queue_max_mb: float = Field(
        256,
        gt=0,
        le=1_000_000,
        validation_alias=_env("ONTWATCH_AGENT_QUEUE_MAX_MB", "agent_queue_max_mb"),
    )
    health_silent_share: float = Field(
        0.90,
        gt=0,
        le=1,
        validation_alias=_env("ONTWATCH_HEALTH_SILENT_SHARE", "health_silent_share"),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING"] = Field(
        "INFO", validation_alias=_env("ONTWATCH_LOG_LEVEL", "log_level")
    )
    log_json: bool = Field(False, validation_alias=_env("ONTWATCH_LOG_JSON", "log_json"))

    @field_validator("central_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("http://", "https://")) or len(value) <= len("https://"):
            raise ValueError("must be the central service's URL, starting with http:// or https://")
        return value.rstrip("/")

    @field_validator("agent_name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not _NAME.fullmatch(value):
            raise ValueError(
                "must be the name given to `ontwatch agents add` (letters, digits, . _ -)"
            )
        return value

    @field_validator("agent_token", mode="before")
    @classmethod
    def _token(cls, value: Any) -> Any:
        # A blank token (an empty secret file) is as good as none: say so at start-up rather
        # than have every request refused.
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(raw, str):
            raw = raw.strip()
            if not raw:
                raise ValueError("is empty")
        return raw

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Priority: arguments, environment, the token file, then the TOML file."""
        secrets = AgentSecretFileSource(settings_cls)
        return layered_sources(settings_cls, init_settings, env_settings, secrets)

    @property
    def queue_max_bytes(self) -> int:
        """The queue's bound in bytes."""
        return int(self.agent_queue_max_mb * 1024 * 1024)

    @property
    def token(self) -> str:
        """The bearer token (never log it)."""
        return self.agent_token.get_secret_value()


class AgentSecretFileSource(SecretFileSource):
    """ONTWATCH_AGENT_TOKEN_FILE, read like the service's *_FILE secrets."""

    file_vars = AGENT_SECRET_FILE_VARS


def load_agent_settings(**overrides: Any) -> AgentSettings:
    """The agent's settings, or one SettingsError naming each bad variable."""
    try:
        return AgentSettings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "settings"
            message = "required" if err["type"] == "missing" else err["msg"]
            if name == "agent_token" and err["type"] == "missing":
                message = "required (or ONTWATCH_AGENT_TOKEN_FILE)"
            problems.append(f"{_env_name(name)}: {message}")
        raise SettingsError("invalid agent setting " + "; ".join(problems)) from None
    except SettingsError:
        raise
    except Exception as exc:  # e.g. a TOML syntax error in the config file
        raise SettingsError(f"ONTWATCH_CONFIG: {type(exc).__name__}: {exc}") from None


def _env_name(field_name: str) -> str:
    field = AgentSettings.model_fields.get(field_name)
    alias = getattr(field, "validation_alias", None) if field else None
    if isinstance(alias, AliasChoices) and alias.choices:
        return str(alias.choices[0])
    return field_name
