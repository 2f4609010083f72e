"""Settings: environment variables, an optional TOML file (ONTWATCH_CONFIG) and *_FILE secrets."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from monitor.model import Thresholds
from storage.dialect import is_postgres_url, mask_url

ChatIds = Annotated[tuple[int, ...], NoDecode]
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")
HostNames = Annotated[tuple[str, ...], NoDecode]


def _env(name: str, *more: str) -> AliasChoices:
    """Accept the contract's variable name, and the plain field name (for the TOML file)."""
    return AliasChoices(name, *more)


class Settings(BaseSettings):
    """Every setting of ontwatch, validated at start-up."""

    # An empty variable is unset: `ONTWATCH_ALERT_CHATS=` (compose's `${VAR:-}`) must not beat
    # the TOML file's alert_chats with an empty list.
    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, case_sensitive=True, env_ignore_empty=True
    )

    # A SQLite file (a Path), or a postgresql:// URL kept as written (a str; docs/postgresql.md).
    db: Path | str = Field(Path("./data/ontwatch.db"), validation_alias=_env("ONTWATCH_DB", "db"))
    # Local files when ONTWATCH_DB is a URL (with SQLite they stay beside the file): data_dir.
    state_dir: Path = Field(
        Path("./ontwatch-state"), validation_alias=_env("ONTWATCH_STATE_DIR", "state_dir")
    )
    http_host: str = Field("127.0.0.1", validation_alias=_env("ONTWATCH_HTTP_HOST", "http_host"))
    http_port: int = Field(
        5000, ge=1, le=65535, validation_alias=_env("ONTWATCH_HTTP_PORT", "http_port")
    )
    api_token: SecretStr | None = Field(
        None, validation_alias=_env("ONTWATCH_API_TOKEN", "api_token")
    )
    telegram_bot_token: SecretStr | None = Field(
        None, validation_alias=_env("TELEGRAM_BOT_TOKEN", "telegram_bot_token")
    )
    telegram_api_url: str = Field(
        "https://api.telegram.org", validation_alias=_env("TELEGRAM_API_URL", "telegram_api_url")
    )
    alert_chats: ChatIds = Field((), validation_alias=_env("ONTWATCH_ALERT_CHATS", "alert_chats"))
    allowed_chats: ChatIds | None = Field(
        None, validation_alias=_env("ONTWATCH_ALLOWED_CHATS", "allowed_chats")
    )
    tile_url: str = Field(
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        validation_alias=_env("ONTWATCH_TILE_URL", "tile_url"),
    )
    probe: bool | None = Field(None, validation_alias=_env("ONTWATCH_PROBE", "probe"))
    probe_interval: float = Field(
        5.0, gt=0, le=3600, validation_alias=_env("ONTWATCH_PROBE_INTERVAL", "probe_interval")
    )
    probe_timeout: float = Field(
        1.0, gt=0, le=60, validation_alias=_env("ONTWATCH_PROBE_TIMEOUT", "probe_timeout")
    )
    log_level: Literal["DEBUG", "INFO", "WARNING"] = Field(
        "INFO", validation_alias=_env("ONTWATCH_LOG_LEVEL", "log_level")
    )
    log_json: bool = Field(False, validation_alias=_env("ONTWATCH_LOG_JSON", "log_json"))
    lang: Literal["id", "en"] = Field("id", validation_alias=_env("ONTWATCH_LANG", "lang"))
    timezone: str = Field("Asia/Jakarta", validation_alias=_env("ONTWATCH_TIMEZONE", "timezone"))
    group_wait: float = Field(
        3.0, ge=0, le=60, validation_alias=_env("ONTWATCH_GROUP_WAIT", "group_wait")
    )
    status_message: bool = Field(
        True, validation_alias=_env("ONTWATCH_STATUS_MESSAGE", "status_message")
    )
    status_message_off: ChatIds = Field(
        (), validation_alias=_env("ONTWATCH_STATUS_MESSAGE_OFF", "status_message_off")
    )
    status_every: float = Field(
        30.0, ge=5, le=3600, validation_alias=_env("ONTWATCH_STATUS_EVERY", "status_every")
    )
    edit_window: float = Field(
        300.0, ge=0, le=3600, validation_alias=_env("ONTWATCH_EDIT_WINDOW", "edit_window")
    )
    backup_dir: Path | None = Field(
        None, validation_alias=_env("ONTWATCH_BACKUP_DIR", "backup_dir")
    )
    backup_keep: int = Field(7, ge=1, validation_alias=_env("ONTWATCH_BACKUP_KEEP", "backup_keep"))
    backup_every_hours: float = Field(
        24, gt=0, validation_alias=_env("ONTWATCH_BACKUP_EVERY_HOURS", "backup_every_hours")
    )
    retention_days: int = Field(
        90, ge=1, validation_alias=_env("ONTWATCH_RETENTION_DAYS", "retention_days")
    )
    retention_every_hours: float = Field(
        6, gt=0, validation_alias=_env("ONTWATCH_RETENTION_EVERY_HOURS", "retention_every_hours")
    )
    tick_seconds: float = Field(
        15, gt=0, le=300, validation_alias=_env("ONTWATCH_TICK_SECONDS", "tick_seconds")
    )
    seen_persist_minutes: float = Field(
        30,
        gt=0,
        validation_alias=_env("ONTWATCH_SEEN_PERSIST_MINUTES", "seen_persist_minutes"),
    )
    # Alert thresholds (DESIGN.md's defaults).
    critical_rto: int = Field(
        3, ge=1, validation_alias=_env("ONTWATCH_CRITICAL_RTO", "critical_rto")
    )
    critical_off_minutes: float = Field(
        60, gt=0, validation_alias=_env("ONTWATCH_CRITICAL_OFF_MINUTES", "critical_off_minutes")
    )
    down_after: int = Field(2, ge=1, validation_alias=_env("ONTWATCH_DOWN_AFTER", "down_after"))
    reminder_minutes: float = Field(
        60, gt=0, validation_alias=_env("ONTWATCH_REMINDER_MINUTES", "reminder_minutes")
    )
    flap_transitions: int = Field(
        5, ge=2, validation_alias=_env("ONTWATCH_FLAP_TRANSITIONS", "flap_transitions")
    )
    flap_window_minutes: float = Field(
        10, gt=0, validation_alias=_env("ONTWATCH_FLAP_WINDOW_MINUTES", "flap_window_minutes")
    )
    mass_min_onts: int = Field(
        5, ge=2, validation_alias=_env("ONTWATCH_MASS_MIN_ONTS", "mass_min_onts")
    )
    mass_area_share: float = Field(
        0.30, gt=0, le=1, validation_alias=_env("ONTWATCH_MASS_AREA_SHARE", "mass_area_share")
    )
    mass_window_minutes: float = Field(
        2, gt=0, validation_alias=_env("ONTWATCH_MASS_WINDOW_MINUTES", "mass_window_minutes")
    )
    health_silent_share: float = Field(
        0.90,
        gt=0,
        le=1,
        validation_alias=_env("ONTWATCH_HEALTH_SILENT_SHARE", "health_silent_share"),
    )
    # Probe agents (docs/agents.md): silent for more than this many of its intervals (and
    # never less than 10 s) an agent is lost: one alert, its ONTs UNKNOWN, not OFF.
    agent_lost_after: float = Field(
        3.0,
        gt=1,
        le=100,
        validation_alias=_env("ONTWATCH_AGENT_LOST_AFTER", "agent_lost_after"),
    )
    # Who may see what (web/auth.py). Beyond loopback a login is required anyway.
    login_required: bool = Field(
        False, validation_alias=_env("ONTWATCH_LOGIN_REQUIRED", "login_required")
    )
    read_token: SecretStr | None = Field(
        None, validation_alias=_env("ONTWATCH_READ_TOKEN", "read_token")
    )
    public_names: HostNames = Field(
        (), validation_alias=_env("ONTWATCH_PUBLIC_NAMES", "public_names")
    )
    session_idle_minutes: float = Field(
        720, gt=0, validation_alias=_env("ONTWATCH_SESSION_IDLE_MINUTES", "session_idle_minutes")
    )
    session_absolute_minutes: float = Field(
        10080,
        gt=0,
        validation_alias=_env("ONTWATCH_SESSION_ABSOLUTE_MINUTES", "session_absolute_minutes"),
    )
    trust_proxy: bool = Field(False, validation_alias=_env("ONTWATCH_TRUST_PROXY", "trust_proxy"))
    # Instances sharing one PostgreSQL (docs/postgresql.md): this one's name in the lease row
    # (default: host name and HTTP port), and the lease's length; renewed every third of it.
    instance: str | None = Field(
        None, min_length=1, max_length=200, validation_alias=_env("ONTWATCH_INSTANCE", "instance")
    )
    lease_seconds: float = Field(
        10, ge=0.5, le=3600, validation_alias=_env("ONTWATCH_LEASE_SECONDS", "lease_seconds")
    )

    @field_validator("db", mode="before")
    @classmethod
    def _db_target(cls, value: Any) -> Any:
        """A postgresql:// URL stays a string (a Path would fold its '//'); the rest is a Path."""
        if isinstance(value, str):
            return value.strip() if is_postgres_url(value) else Path(value)
        return value

    @property
    def postgres_url(self) -> str | None:
        """ONTWATCH_DB when it names PostgreSQL (never log it: it may hold a password)."""
        return self.db if isinstance(self.db, str) else None

    @property
    def data_dir(self) -> Path:
        """The folder of the local files (tile cache, backups, demo): beside the SQLite file
        as always, or ONTWATCH_STATE_DIR when the database is a PostgreSQL URL."""
        return self.db.parent if isinstance(self.db, Path) else self.state_dir

    @property
    def db_name(self) -> str:
        """ONTWATCH_DB fit for messages and logs: the path, or the URL with its password masked."""
        return str(self.db) if isinstance(self.db, Path) else mask_url(self.db)

    @field_validator("public_names", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            names = tuple(str(v).strip().lower().rstrip(".") for v in value if str(v).strip())
            bad = [n for n in names if not all(c.isalnum() or c in ".-_:[]" for c in n)]
            if bad:
                raise ValueError(f"expected comma-separated host names, got {bad[0]!r}")
            return names
        return value

    @field_validator("alert_chats", "allowed_chats", "status_message_off", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return (value,)
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            try:
                return tuple(int(p) for p in parts)
            except ValueError:
                raise ValueError(f"expected comma-separated chat ids, got {value!r}") from None
        return value

    @field_validator("api_token", "telegram_bot_token", "read_token", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: Any) -> Any:
        # An empty token (or an empty secret file) must never count as "a token is set":
        # it would open writes on a public address with no check at all.
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(raw, str) and not raw.strip():
            return None
        return raw.strip() if isinstance(raw, str) else value

    @field_validator("http_host")
    @classmethod
    def _host(cls, value: str) -> str:
        # Checked before any lookup: a value that cannot be a name never reaches the resolver.
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(value)
            return value
        if _HOST_NAME.fullmatch(value):
            return value
        hint = ""
        if "#" in value or " " in value:
            hint = " (an inline comment? systemd and Docker keep all after '=' in the value)"
        raise ValueError(f"not an IP address or host name: {value!r}{hint}")

    @field_validator("probe", "status_message", mode="before")
    @classmethod
    def _on_off(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in {"on", "off"}:
            return value.strip().lower() == "on"
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("tile_url")
    @classmethod
    def _template(cls, value: str) -> str:
        if not all(k in value for k in ("{z}", "{x}", "{y}")):
            raise ValueError("must contain {z}, {x} and {y}")
        return value

    @field_validator("telegram_api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Priority: arguments, environment, *_FILE secrets, then the TOML file."""
        secrets = SecretFileSource(settings_cls)
        return layered_sources(settings_cls, init_settings, env_settings, secrets)

    # -- derived ------------------------------------------------------------------------

    @property
    def tz(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)

    @property
    def bot_enabled(self) -> bool:
        """A bot token is set."""
        return self.telegram_bot_token is not None and bool(
            self.telegram_bot_token.get_secret_value()
        )

    @property
    def chats_allowed(self) -> frozenset[int]:
        """Chats and users that may use the bot: the allowed list plus the alert chats."""
        return frozenset(self.allowed_chats or ()) | frozenset(self.alert_chats)

    @property
    def host_is_loopback(self) -> bool:
        """Whether the HTTP API binds to loopback only."""
        if self.http_host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.http_host).is_loopback
        except ValueError:
            return False

    @property
    def instance_name(self) -> str:
        """This instance's name in the lease row: ONTWATCH_INSTANCE, else host:port."""
        return self.instance or f"{socket.gethostname()}:{self.http_port}"

    @property
    def login_enforced(self) -> bool:
        """Reads need a login or a token: asked for, or bound beyond loopback."""
        return self.login_required or not self.host_is_loopback

    @property
    def thresholds(self) -> Thresholds:
        """The alert thresholds for the rules."""
        return Thresholds(
            critical_rto=self.critical_rto,
            critical_off_after=timedelta(minutes=self.critical_off_minutes),
            down_after=self.down_after,
            reminder_every=timedelta(minutes=self.reminder_minutes),
            flap_transitions=self.flap_transitions,
            flap_window=timedelta(minutes=self.flap_window_minutes),
            mass_min_onts=self.mass_min_onts,
            mass_area_share=self.mass_area_share,
            mass_window=timedelta(minutes=self.mass_window_minutes),
            health_silent_share=self.health_silent_share,
        )

    def api_base_url(self) -> str:
        """Where a local client reaches the running service's HTTP API."""
        host = self.http_host
        if host in {"0.0.0.0", "::", ""}:
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.http_port}"


SECRET_FILE_VARS = {
    "telegram_bot_token": "TELEGRAM_BOT_TOKEN_FILE",
    "api_token": "ONTWATCH_API_TOKEN_FILE",
    "read_token": "ONTWATCH_READ_TOKEN_FILE",
}


def layered_sources(
    settings_cls: type[BaseSettings],
    init_settings: PydanticBaseSettingsSource,
    env_settings: PydanticBaseSettingsSource,
    secrets: PydanticBaseSettingsSource,
) -> tuple[PydanticBaseSettingsSource, ...]:
    """Arguments, environment, *_FILE secrets, then the TOML file ONTWATCH_CONFIG names:
    the order of the service's settings and of the agent's."""
    sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, secrets]
    config = os.environ.get("ONTWATCH_CONFIG")
    if config:
        path = Path(config)
        if not path.exists():
            raise SettingsError(f"ONTWATCH_CONFIG: no such file: {config}")
        if not path.is_file():
            raise SettingsError(f"ONTWATCH_CONFIG: not a regular file: {config}")
        sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
    return tuple(sources)


class SecretFileSource(PydanticBaseSettingsSource):
    """Reads TELEGRAM_BOT_TOKEN_FILE / ONTWATCH_API_TOKEN_FILE (Docker and systemd secrets)."""

    file_vars: dict[str, str] = SECRET_FILE_VARS  # field name -> its *_FILE variable

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Value of one field from its *_FILE variable, if set."""
        var = self.file_vars.get(field_name)
        if var is None or not os.environ.get(var):
            return None, field_name, False
        path = Path(os.environ[var])
        try:
            return path.read_text(encoding="utf-8").strip(), field_name, False
        except OSError as exc:
            raise SettingsError(f"{var}: cannot read {path}: {exc.strerror}") from None

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                out[key] = value
        return out


class SettingsError(ValueError):
    """A setting is missing, malformed or contradictory; the message names it."""


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and files, or one clear SettingsError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            problems.append(f"{_env_name(loc)}: {err['msg']}")
        raise SettingsError("invalid setting " + "; ".join(problems)) from None
    except SettingsError:
        raise
    except Exception as exc:  # e.g. a TOML syntax error in the config file
        raise SettingsError(f"ONTWATCH_CONFIG: {type(exc).__name__}: {exc}") from None


def _env_name(field_name: str) -> str:
    field = Settings.model_fields.get(field_name)
    alias = getattr(field, "validation_alias", None) if field else None
    if isinstance(alias, AliasChoices) and alias.choices:
        return str(alias.choices[0])
    return field_name
