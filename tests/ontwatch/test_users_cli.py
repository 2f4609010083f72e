"""`ontwatch user ...` as a real process, with and without the service running; the start-up
check beyond loopback (an admin token or an admin user)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ontwatch.service import Service
from ontwatch.settings import SettingsError, load_settings
from tests.process import ROOT, ServiceProcess, cli, free_port, service_env

PASSWORD = "correct horse battery"


def user_cmd(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ontwatch.cli", "user", *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_add_list_disable_enable_remove(tmp_path: Path) -> None:
    env = service_env(tmp_path / "u.db", free_port())
    r = user_cmd(env, "list")
    assert r.returncode == 0 and "no users" in r.stdout
    r = user_cmd(env, "add", "ayu", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "user ayu added (admin)" and PASSWORD not in r.stdout + r.stderr
    r = user_cmd(env, "add", "budi", "--role", "viewer", "--password-stdin", stdin=PASSWORD)
    assert r.returncode == 0, r.stderr
    lines = user_cmd(env, "list").stdout.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "STATE", "SESSIONS", "CREATED"]
    assert [line.split()[:4] for line in lines[1:]] == [
        ["ayu", "admin", "enabled", "0"],
        ["budi", "viewer", "enabled", "0"],
    ]
    assert user_cmd(env, "disable", "budi").stdout.strip() == "user budi disabled"
    assert "disabled" in user_cmd(env, "list").stdout.splitlines()[2]
    assert user_cmd(env, "enable", "budi").returncode == 0
    assert user_cmd(env, "remove", "budi").stdout.strip() == "user budi removed"
    assert [line.split()[0] for line in user_cmd(env, "list").stdout.splitlines()[1:]] == ["ayu"]


REFUSALS = [
    (("add", "ayu", "--role", "admin", "--password-stdin"), "short\n", "password"),
    (("add", "a b", "--role", "admin", "--password-stdin"), PASSWORD, "user name"),
    (("add", "AYU", "--role", "viewer", "--password-stdin"), PASSWORD, "exists"),
    (("disable", "nobody"), "", "no user"),
    (("remove", "nobody"), "", "no user"),
]


def test_refusals_are_one_line(tmp_path: Path) -> None:
    env = service_env(tmp_path / "u.db", free_port())
    seeded = user_cmd(env, "add", "ayu", "--role", "admin", "--password-stdin", stdin=PASSWORD)
    assert seeded.returncode == 0
    for args, stdin, message in REFUSALS:
        r = user_cmd(env, *args, stdin=stdin)
        assert r.returncode == 1 and message in r.stderr and r.stderr.count("\n") == 1, args
    r = user_cmd(env, "add", "x", "--role", "root", "--password-stdin", stdin=PASSWORD)
    assert r.returncode == 2 and "invalid choice" in r.stderr  # argparse: the role list
    assert [line.split()[0] for line in user_cmd(env, "list").stdout.splitlines()[1:]] == ["ayu"]


def _login(base: str, name: str) -> tuple[int, str]:
    body = json.dumps({"username": name, "password": PASSWORD}).encode()
    req = urllib.request.Request(
        base + "/login", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            cookie = resp.headers["Set-Cookie"].split(";")[0]
            return resp.status, cookie
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _get(base: str, path: str, cookie: str) -> int:
    req = urllib.request.Request(base + path, headers={"Cookie": cookie})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_commands_act_on_the_running_service(tmp_path: Path) -> None:
    env = service_env(tmp_path / "live.db", free_port(), ONTWATCH_LOGIN_REQUIRED="true")
    svc = ServiceProcess(env, log=tmp_path / "service.log")
    try:
        assert _get(svc.base, "/api/stats", "") == 401
        r = user_cmd(env, "add", "noc", "--role", "viewer", "--password-stdin", stdin=PASSWORD)
        assert r.returncode == 0, r.stderr
        status, cookie = _login(svc.base, "noc")  # no restart: users are read per request
        assert status == 200 and cookie.startswith("ontwatch_session=")
        assert _get(svc.base, "/api/stats", cookie) == 200
        assert "noc" in user_cmd(env, "list").stdout and " 1 " in user_cmd(env, "list").stdout
        assert user_cmd(env, "disable", "noc").returncode == 0
        assert _get(svc.base, "/api/stats", cookie) == 401  # the session died with it
        assert _login(svc.base, "noc")[0] == 401
    finally:
        svc.stop()
    log = (tmp_path / "service.log").read_text()
    assert PASSWORD not in log and "ontwatch_session=" not in log


def test_beyond_loopback_needs_a_token_or_an_admin_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only Service.check(): nothing is bound beyond loopback by the tests."""
    for key in [k for k in __import__("os").environ if k.startswith("ONTWATCH_")]:
        monkeypatch.delenv(key)
    db = tmp_path / "public.db"
    public = {"db": db, "http_host": "0.0.0.0"}
    with pytest.raises(SettingsError, match="ONTWATCH_API_TOKEN or an admin user"):
        Service(load_settings(**public)).check()
    env = service_env(db, free_port())
    user_cmd(env, "add", "viewer1", "--role", "viewer", "--password-stdin", stdin=PASSWORD)
    with pytest.raises(SettingsError):  # a viewer is not enough: nobody could change anything
        Service(load_settings(**public)).check()
    user_cmd(env, "add", "boss", "--role", "admin", "--password-stdin", stdin=PASSWORD)
    Service(load_settings(**public)).check()
    assert load_settings(**public).login_enforced
    user_cmd(env, "disable", "boss")
    with pytest.raises(SettingsError):
        Service(load_settings(**public)).check()
    Service(load_settings(**public, api_token="a-long-random-token")).check()
    same = {"api_token": "one-token-for-both", "read_token": "one-token-for-both"}
    with pytest.raises(SettingsError, match="ONTWATCH_READ_TOKEN"):
        Service(load_settings(**public, **same)).check()


def test_run_refuses_public_bind_without_token_or_admin(tmp_path: Path) -> None:
    env = service_env(tmp_path / "x.db", free_port(), ONTWATCH_HTTP_HOST="0.0.0.0")
    r = cli("run", env=env, timeout=30)
    assert r.returncode == 78 and "ontwatch user add NAME --role admin" in r.stderr
