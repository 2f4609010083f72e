"""The probe agent's deploy files: deploy/ontwatch-agent.service and compose's `agent` service.

Read without systemd or Docker, and acted out where that is cheap: the environment each
passes loads as the agent's settings, and the compose healthcheck's command judges a real
queue file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.queue import ReportQueue
from agent.settings import SettingsError, load_agent_settings
from tests.deploy.dockerfile import COMPOSE, ROOT, exec_form, stages

yaml = pytest.importorskip("yaml")

UNIT = ROOT / "deploy" / "ontwatch-agent.service"
SERVICE_UNIT = ROOT / "deploy" / "ontwatch.service"


def unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A unit file's sections as (key, value) lists (keys may repeat, as in systemd)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        key, _, value = line.partition("=")
        sections[current].append((key.strip(), value.strip()))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in section if k == key]


def agent_service() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data["services"]["agent"]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("ONTWATCH_", "TELEGRAM_")):
            monkeypatch.delenv(key)


# -- systemd ---------------------------------------------------------------------------------

HARDENING = (
    "NoNewPrivileges",
    "ProtectSystem",
    "ProtectHome",
    "PrivateTmp",
    "PrivateDevices",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectControlGroups",
    "ProtectClock",
    "ProtectHostname",
    "RestrictNamespaces",
    "RestrictRealtime",
    "RestrictSUIDSGID",
    "LockPersonality",
    "RemoveIPC",
    "RestrictAddressFamilies",
    "SystemCallArchitectures",
    "SystemCallFilter",
    "AmbientCapabilities",
    "CapabilityBoundingSet",
    "User",
)


def test_the_unit_is_hardened_like_the_services() -> None:
    """Every hardening line of deploy/ontwatch.service, with the same value."""
    ours, theirs = unit(UNIT)["Service"], unit(SERVICE_UNIT)["Service"]
    for key in HARDENING:
        assert values(ours, key) == values(theirs, key), key
    assert values(ours, "CapabilityBoundingSet") == ["CAP_NET_RAW"]


def test_the_unit_runs_the_agent_writing_only_its_queue() -> None:
    s = unit(UNIT)["Service"]
    (start,) = values(s, "ExecStart")
    assert start.split()[1:] == ["agent"] and start.endswith("/ontwatch agent")
    env = dict(v.split("=", 1) for v in values(s, "Environment"))
    queue = Path(env["ONTWATCH_AGENT_QUEUE"])
    (state,) = values(s, "StateDirectory")
    assert queue.parent == Path("/var/lib") / state == Path(values(s, "ReadWritePaths")[0])
    assert values(s, "WorkingDirectory") == [str(queue.parent)]
    # A config error exits 78 (ontwatch.cli's EX_CONFIG): no restart loop on it.
    assert values(s, "RestartPreventExitStatus") == ["78"]


def test_the_token_is_a_credential_never_in_the_unit() -> None:
    """The token file stays root-only; the agent reads systemd's copy through *_FILE."""
    s = unit(UNIT)["Service"]
    env = dict(v.split("=", 1) for v in values(s, "Environment"))
    assert "ONTWATCH_AGENT_TOKEN" not in env
    (cred,) = values(s, "LoadCredential")
    name, _, source = cred.partition(":")
    assert env["ONTWATCH_AGENT_TOKEN_FILE"] == f"%d/{name}" and source.startswith("/etc/")


def test_the_units_environment_loads(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unit's Environment= lines plus the env file of its header make valid settings."""
    s = unit(UNIT)["Service"]
    token = tmp_path / "agent.token"
    token.write_text("t0k3n\n", encoding="utf-8")
    for line in values(s, "Environment"):
        key, _, value = line.partition("=")
        monkeypatch.setenv(key, value.replace("%d", str(tmp_path)))
    monkeypatch.setenv("ONTWATCH_CENTRAL_URL", "https://noc.example.net")
    monkeypatch.setenv("ONTWATCH_AGENT_NAME", "POP-2")
    settings = load_agent_settings()
    assert settings.token == "t0k3n" and settings.agent_queue.name == "agent-queue.sqlite"


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd's own check, when systemd-analyze exists: only the missing venv may complain."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text(encoding="utf-8"), encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    complaints = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable" not in line
    ]
    assert complaints == []


# -- compose ---------------------------------------------------------------------------------


def test_the_compose_agent_is_opt_in_and_hardened_like_the_service() -> None:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    svc, main = data["services"]["agent"], data["services"]["ontwatch"]
    assert svc["profiles"] == ["agent"]  # `up` alone starts only the service
    assert svc["command"] == ["ontwatch", "agent"]
    assert svc["build"] == main["build"] and svc["image"] == main["image"]
    for key in ("sysctls", "cap_drop", "security_opt", "read_only", "tmpfs", "restart"):
        assert svc[key] == main[key], key
    assert "user" not in svc and "privileged" not in svc and "ports" not in svc


def test_the_compose_agents_queue_is_on_its_volume() -> None:
    """The queue lives in the image's VOLUME path (owned by its uid) on a named volume."""
    svc = agent_service()
    (mount,) = svc["volumes"]
    volume, _, target = mount.partition(":")
    assert volume in yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["volumes"]
    image_volume = exec_form(next(i.args for i in stages()[-1] if i.keyword == "VOLUME"))
    assert [target] == image_volume
    assert Path(svc["environment"]["ONTWATCH_AGENT_QUEUE"]).parent == Path(target)


def test_the_compose_agents_environment_loads(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Host variables set: valid settings with the token from the secret; unset: the missing
    variable is named."""
    svc = agent_service()
    (secret,) = svc["secrets"]
    path = tmp_path / secret
    path.write_text("compose-token\n", encoding="utf-8")
    host = {"ONTWATCH_CENTRAL_URL": "https://noc.example.net", "ONTWATCH_AGENT_NAME": "POP-2"}

    def apply(host_env: dict[str, str]) -> None:
        for key, value in svc["environment"].items():
            text = str(value)
            if text.startswith("${"):
                name = text[2:].split(":-")[0].rstrip("}")
                text = host_env.get(name, "")
            if key.endswith("_FILE"):
                text = str(tmp_path / Path(text).name)
            monkeypatch.setenv(key, text)

    apply(host)
    s = load_agent_settings()
    assert s.token == "compose-token" and s.central_url == "https://noc.example.net"
    apply({})
    with pytest.raises(SettingsError, match="ONTWATCH_CENTRAL_URL: required"):
        load_agent_settings()


async def test_the_compose_healthcheck_judges_the_queue(tmp_path: Path) -> None:
    """The healthcheck's command: 0 right after a report was queued, 1 when the queue has
    not been written for over two minutes, 1 with no queue at all."""
    test = agent_service()["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    argv = [sys.executable, *test[2:]]
    queue_path = tmp_path / "agent-queue.sqlite"

    def check() -> int:
        env = {**os.environ, "ONTWATCH_AGENT_QUEUE": str(queue_path)}
        return subprocess.run(argv, env=env, timeout=30, check=False).returncode

    assert check() != 0
    queue = await ReportQueue(queue_path).open()
    await queue.put({"obs": []})
    assert check() == 0
    old = time.time() - 300
    for p in (queue_path, Path(f"{queue_path}-wal")):
        if p.exists():
            os.utime(p, (old, old))
    assert check() == 1
    await queue.put({"obs": []})
    assert check() == 0
    await queue.close()
