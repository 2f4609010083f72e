"""The Dockerfile's install steps without Docker: a wheel, a fresh venv, the installed command.

The builder stage runs `pip wheel --no-deps` on the project, then installs that wheel and the
pinned tzdata into a new venv. This test does the same on this machine (dependencies come
from the package index, as in `docker build`), then runs the image's commands from that venv
outside the repository, so only the installed packages can be imported.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.dockerfile import (
    ROOT,
    arg_defaults,
    env_of_final_stage,
    exec_form,
    healthcheck_command,
    stages,
)

pytestmark = pytest.mark.e2e

INSTALL_TIMEOUT = 600
PACKAGES = ("monitor", "storage", "api", "bot", "maps", "ontwatch", "agent")


def run(
    cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, capturing its output."""
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without ontwatch's settings, a virtualenv or a PYTHONPATH of ours."""
    drop = ("ONTWATCH_", "TELEGRAM_", "PYTHON", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the project's wheel and the Dockerfile's tzdata pin installed."""
    work = tmp_path_factory.mktemp("install")
    tzdata = arg_defaults()["TZDATA_VERSION"]
    probe = run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(work / "probe"),
         f"tzdata=={tzdata}"],
        cwd=work,
        env=clean_env(),
        timeout=120,
    )  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"the package index is not reachable: {probe.stderr.strip()[-300:]}")
    wheels = work / "wheels"
    built = run(
        [sys.executable, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps",
         "--wheel-dir", str(wheels), str(ROOT)],
        cwd=work,
        env=clean_env(),
        timeout=INSTALL_TIMEOUT,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = wheels.glob("ontwatch-*.whl")
    target = work / "venv"
    made = run([sys.executable, "-m", "venv", str(target)], cwd=work, env=clean_env())
    assert made.returncode == 0, made.stderr
    installed = run(
        [str(target / "bin" / "pip"), "install", "--no-cache-dir", str(wheel), f"tzdata=={tzdata}"],
        cwd=work,
        env=clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1"),
        timeout=INSTALL_TIMEOUT,
    )
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    yield target


def test_the_installed_command_runs_outside_the_repository(venv: Path, tmp_path: Path) -> None:
    """`ontwatch --help` from the venv, in a folder that is not the repository."""
    result = run([str(venv / "bin" / "ontwatch"), "--help"], cwd=tmp_path, env=clean_env())
    assert result.returncode == 0, result.stderr
    for command in ("run", "simulate", "import", "export", "backup", "agent"):
        assert command in result.stdout


def test_every_package_is_in_the_wheel(venv: Path, tmp_path: Path) -> None:
    """The seven packages import, and from the venv's site-packages, not from the source tree."""
    code = (
        "import monitor, storage, api, bot, maps, ontwatch, agent, sys\n"
        "for m in (monitor, storage, api, bot, maps, ontwatch, agent): print(m.__file__)\n"
        # Modules loaded lazily at run time must be in the wheel too.
        "import bot.runtime, maps.render, api.openapi, ontwatch.cli, storage.backup, agent.runner\n"
    )
    result = run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, env=clean_env())
    assert result.returncode == 0, result.stderr
    files = result.stdout.split()
    assert len(files) == len(PACKAGES)
    for name, file in zip(PACKAGES, files, strict=True):
        path = Path(file).resolve()
        assert path.is_relative_to(venv.resolve()), f"{name} imported from {path}"
        assert "site-packages" in path.parts


def test_time_zones_resolve_without_the_system_database(venv: Path, tmp_path: Path) -> None:
    """With no /usr/share/zoneinfo (as in a slim image) Asia/Jakarta comes from tzdata."""
    code = (
        "import zoneinfo; zoneinfo.reset_tzpath([])\n"
        "from ontwatch.settings import load_settings\n"
        "s = load_settings(timezone='Asia/Jakarta'); print(s.tz.utcoffset(None) or 'ok')\n"
        "print(zoneinfo.ZoneInfo('Asia/Makassar').key)\n"
    )
    result = run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, env=clean_env())
    assert result.returncode == 0, result.stderr
    assert "Asia/Makassar" in result.stdout


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def image_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The runtime image's ENV (PATH to the venv first), plus extra settings."""
    env = clean_env()
    for name, value in env_of_final_stage().items():
        env[name] = value.replace("$PATH", env.get("PATH", ""))
    env["ONTWATCH_DB"] = str(tmp_path / "var-lib-ontwatch" / "ontwatch.db")
    env.update(extra)
    return env


def test_the_image_defaults_refuse_to_start_without_a_token(venv: Path, tmp_path: Path) -> None:
    """The image listens on 0.0.0.0: without ONTWATCH_API_TOKEN(_FILE) `ontwatch run` exits 78."""
    env = image_env(tmp_path)
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    cmd = exec_form(next(i.args for i in stages()[-1] if i.keyword == "CMD"))
    result = run(cmd, cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 78, result.stderr
    assert "ONTWATCH_API_TOKEN" in result.stderr


def test_service_from_the_venv_passes_the_image_healthcheck(venv: Path, tmp_path: Path) -> None:
    """`ontwatch run` from the venv with the image's settings; the HEALTHCHECK command passes."""
    token = tmp_path / "api_token"
    token.write_text("s3cret-token-for-the-test\n", encoding="utf-8")
    port = free_port()
    # The image's settings, but bound to loopback on a free port for the test.
    env = image_env(
        tmp_path,
        ONTWATCH_HTTP_HOST="127.0.0.1",
        ONTWATCH_HTTP_PORT=str(port),
        ONTWATCH_API_TOKEN_FILE=str(token),
        ONTWATCH_PROBE="off",
    )
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    health = healthcheck_command()
    assert health[0] == "python"
    log = (tmp_path / "service.log").open("w")
    proc = subprocess.Popen(
        ["ontwatch", "run"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        checked = None
        while time.monotonic() < deadline and proc.poll() is None:
            checked = run(health, cwd=tmp_path, env=env, timeout=10)
            if checked.returncode == 0:
                break
            time.sleep(0.3)
        assert checked is not None and checked.returncode == 0, (
            tmp_path / "service.log"
        ).read_text() + (checked.stderr if checked else "")
        # The token from the file guards writes.
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/onts",
            data=b'{"id": "1", "name": "x", "ip": "127.0.0.1"}',
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=5)
        assert refused.value.code == 401
        # SIGTERM (the image's STOPSIGNAL) stops it cleanly.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "ontwatch stopped" in (tmp_path / "service.log").read_text()
        # The database is in the folder the image declares as its volume.
        assert (tmp_path / "var-lib-ontwatch" / "ontwatch.db").is_file()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
