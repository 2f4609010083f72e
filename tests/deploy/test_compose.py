"""deploy/compose.yaml: hardening, secrets and settings that ontwatch accepts, without Docker."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ontwatch.service import Service
from ontwatch.settings import SECRET_FILE_VARS, SettingsError, load_settings
from tests.deploy.dockerfile import COMPOSE, DOCKERFILE, ROOT, env_of_final_stage, exec_form, stages

yaml = pytest.importorskip("yaml")

INTERPOLATION = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def compose() -> dict[str, Any]:
    """The compose file, parsed."""
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def service() -> dict[str, Any]:
    """The ontwatch service (the probe agent beside it: tests/deploy/test_agent_deploy.py)."""
    services = compose()["services"]
    assert list(services) == ["ontwatch", "agent"]
    return services["ontwatch"]


def interpolate(value: str, host: dict[str, str]) -> str:
    """Compose's ${VAR:-default} substitution against a host environment."""
    return INTERPOLATION.sub(lambda m: host.get(m.group(1)) or (m.group(2) or ""), value)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ontwatch setting of the machine leaks into the test."""
    for key in list(os.environ):
        if key.startswith(("ONTWATCH_", "TELEGRAM_")):
            monkeypatch.delenv(key)


def container_env(tmp_path: Path, host: dict[str, str], secrets: dict[str, str]) -> dict[str, str]:
    """The container's environment: image ENV, then compose's, secrets as files in tmp_path."""
    env = {k: v for k, v in env_of_final_stage().items() if k.startswith("ONTWATCH_")}
    for name, value in service()["environment"].items():
        env[name] = interpolate(str(value), host)
    # A secret the test does not give is an empty file (the instructions `touch` each one).
    secrets = {**dict.fromkeys(compose()["secrets"], ""), **secrets}
    for name, content in secrets.items():
        path = tmp_path / "run-secrets" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(content, encoding="utf-8")
    for var, value in env.items():
        if var.endswith("_FILE"):
            env[var] = str(tmp_path / "run-secrets" / Path(value).name)
    env["ONTWATCH_DB"] = str(tmp_path / "ontwatch.db")
    return env


def test_builds_this_dockerfile_from_the_repository_root() -> None:
    """build.context is the repository root and build.dockerfile is deploy/Dockerfile."""
    build = service()["build"]
    assert (COMPOSE.parent / build["context"]).resolve() == ROOT
    assert (ROOT / build["dockerfile"]).resolve() == DOCKERFILE


def test_hardening() -> None:
    """No capability at all, the ping sysctl, read-only root with /tmp, restart, no-new-privs."""
    svc = service()
    assert svc["cap_drop"] == ["ALL"] and "cap_add" not in svc
    assert svc["sysctls"] == {"net.ipv4.ping_group_range": "0 2147483647"}
    assert svc["read_only"] is True and svc["tmpfs"] == ["/tmp"]
    assert svc["restart"] == "unless-stopped"
    assert "no-new-privileges:true" in svc["security_opt"]
    assert "privileged" not in svc and svc.get("network_mode") != "host"
    assert "user" not in svc  # the image's fixed uid, inside the sysctl's group range


def test_healthcheck_is_the_images() -> None:
    """The service inherits the image's HEALTHCHECK instead of redefining it."""
    assert "healthcheck" not in service()
    assert any(i.keyword == "HEALTHCHECK" for i in stages()[-1])


def test_the_volume_is_the_images_volume() -> None:
    """The named volume is mounted where the image keeps its database."""
    (mount,) = service()["volumes"]
    volume, _, target = mount.partition(":")
    assert volume in compose()["volumes"]
    assert [target] == exec_form(next(i.args for i in stages()[-1] if i.keyword == "VOLUME"))


def test_tokens_come_from_secret_files() -> None:
    """Both tokens are Docker secrets read through the *_FILE variables, never plain env."""
    svc, top = service(), compose()["secrets"]
    env = svc["environment"]
    assert not {"TELEGRAM_BOT_TOKEN", "ONTWATCH_API_TOKEN"} & set(env)
    assert set(svc["secrets"]) == set(top) - {"ontwatch_agent_token"}  # the agent's own
    for var in SECRET_FILE_VARS.values():
        path = Path(env[var])
        assert path.parent == Path("/run/secrets") and path.name in top
        assert top[path.name]["file"].startswith("./secrets/")


def test_compose_environment_is_valid_for_ontwatch(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing set on the host and both secrets filled, the settings load and start."""
    env = container_env(
        tmp_path,
        host={},
        secrets={"telegram_bot_token": "123:abc\n", "ontwatch_api_token": "t0k3n-xyz\n"},
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    Service(s).check()  # 0.0.0.0 with a token: allowed
    assert s.http_host == "0.0.0.0" and s.bot_enabled and s.probe is not False  # unset: on
    assert s.api_token is not None and s.api_token.get_secret_value() == "t0k3n-xyz"
    assert (s.lang, s.timezone, s.log_level, s.alert_chats) == ("id", "Asia/Jakarta", "INFO", ())


def test_host_variables_reach_the_settings(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ONTWATCH_ALERT_CHATS etc. set on the host (or in deploy/.env) arrive in the settings."""
    host = {
        "ONTWATCH_ALERT_CHATS": "-1001234567890,-1009876543210",
        "ONTWATCH_ALLOWED_CHATS": "42",
        "ONTWATCH_LANG": "en",
        "ONTWATCH_PROBE": "off",
    }
    env = container_env(
        tmp_path, host, secrets={"telegram_bot_token": "", "ontwatch_api_token": "t0k3n-xyz"}
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert s.alert_chats == (-1001234567890, -1009876543210)
    assert s.chats_allowed == {-1001234567890, -1009876543210, 42}
    assert s.lang == "en" and s.probe is False
    assert not s.bot_enabled  # an empty bot token file: the bot stays off


def test_the_toml_file_is_not_beaten_by_compose_variables_left_empty(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing set on the host: compose passes empty variables, and the mounted TOML wins."""
    toml = tmp_path / "config.toml"
    toml.write_text(
        'alert_chats = [-1001234567890]\nallowed_chats = [42]\nlang = "en"\n'
        'timezone = "Asia/Makassar"\nprobe = false\nlog_level = "WARNING"\n'
    )
    env = container_env(
        tmp_path, host={}, secrets={"telegram_bot_token": "", "ontwatch_api_token": "t0k3n-xyz"}
    )
    assert env["ONTWATCH_ALERT_CHATS"] == ""  # what compose passes when the host sets nothing
    for name, value in {**env, "ONTWATCH_CONFIG": str(toml)}.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert s.alert_chats == (-1001234567890,) and s.chats_allowed == {-1001234567890, 42}
    assert (s.lang, s.timezone, s.probe, s.log_level) == ("en", "Asia/Makassar", False, "WARNING")


def test_an_empty_api_token_file_does_not_open_writes(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forgetting to fill deploy/secrets/ontwatch_api_token must stop start-up."""
    env = container_env(
        tmp_path, host={}, secrets={"telegram_bot_token": "", "ontwatch_api_token": "\n"}
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError):
        Service(load_settings()).check()


def compose_command() -> list[str] | None:
    """`docker compose` (v2 plugin) or `docker-compose`, if one is installed."""
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_config_validates(tmp_path: Path) -> None:
    """`compose config` accepts the file (no engine needed); secret files must exist for it."""
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    (deploy / "compose.yaml").write_text(COMPOSE.read_text(encoding="utf-8"), encoding="utf-8")
    (deploy / "Dockerfile").write_text(DOCKERFILE.read_text(encoding="utf-8"), encoding="utf-8")
    (deploy / "secrets").mkdir()
    for name in compose()["secrets"]:
        (deploy / "secrets" / name).write_text("x", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONTWATCH_", "TELEGRAM_"))}
    result = subprocess.run(
        [*command, "-f", "compose.yaml", "config"],
        cwd=deploy,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    svc = resolved["services"]["ontwatch"]
    assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"]
    assert str(svc["sysctls"]["net.ipv4.ping_group_range"]) == "0 2147483647"
