"""The real `ontwatch run` process on a free loopback port: demo, simulate, kill -9, shutdown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import HOTSPOT
from tests.process import ServiceProcess, cli, free_port, service_env


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[ServiceProcess]:
    env = service_env(tmp_path / "db" / "ontwatch.db", free_port())
    svc = ServiceProcess(env, "--demo", log=tmp_path / "service.log")
    yield svc
    svc.stop()


def test_demo_simulate_and_notifications(demo: ServiceProcess) -> None:
    onts = demo.get("/api/onts")
    assert len(onts) >= 200 and all(o["ip"].startswith("127.") for o in onts)
    target = onts[4]["id"]
    result = cli("simulate", target, "--delay", "0.05", env=demo.env)
    assert result.returncode == 0, result.stderr
    assert "pushing through its API" in result.stdout
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("step ")]
    assert [ln.split("severity ")[1].split()[0] for ln in lines] == [
        "warning",
        "ok",
        "warning",
        "ok",
        "critical",
    ]
    notes = list(reversed(demo.get(f"/api/notifications?ont_id={target}")))
    assert [(n["kind"], n["severity"]) for n in notes] == [
        ("opened", "warning"),
        ("resolved", "warning"),
        ("opened", "warning"),
        ("resolved", "warning"),
        ("opened", "critical"),
    ]
    assert notes[1]["duration_s"] is not None and notes[1]["duration_s"] >= 0
    assert (notes[4]["reason_code"], notes[4]["reason_params"]) == (
        "rto_at_threshold",
        {"rto": 3, "threshold": 3},
    )
    assert notes[4]["message"].startswith("KRITIS ·") and "rto 3" in notes[4]["message"]
    assert notes[1]["message"].startswith("PULIH ·")  # a recovery reads as one
    stats = demo.get("/api/stats")
    onts = demo.get("/api/onts")
    for status, key in (("ON", "online"), ("OFF", "offline"), ("UNKNOWN", "unknown")):
        assert stats[key] == sum(1 for o in onts if o["status"] == status)
    assert stats["total"] == len(onts)
    history = demo.get(f"/api/onts/{target}/history")
    assert len(history) >= 5


def test_answered_push_survives_kill9(tmp_path: Path) -> None:
    env = service_env(tmp_path / "k.db", free_port())
    svc = ServiceProcess(env, log=tmp_path / "k.log")  # not --demo: its database is fresh
    code, _ = svc.request("POST", "/api/onts", {"id": "3", "name": "Baciro 3", "ip": "127.0.0.3"})
    assert code == 201
    code, body = svc.request("POST", "/api/ont-status/3", {"status": "OFF", "rto_count": 4})
    assert code == 200 and body["severity"] == "critical"
    svc.kill9()  # right after the answer: no clean shutdown, no chance to flush anything
    svc2 = ServiceProcess(env, log=tmp_path / "k.log")
    try:
        ont = svc2.get("/api/onts/3")
        assert (ont["status"], ont["rto_count"], ont["severity"]) == ("OFF", 4, "critical")
        assert ont["history"][0]["rto_count"] == 4
    finally:
        svc2.stop()


def test_sigterm_shuts_down_cleanly(tmp_path: Path) -> None:
    env = service_env(tmp_path / "t.db", free_port())
    svc = ServiceProcess(env, log=tmp_path / "t.log")
    assert svc.stop() == 0
    assert "ontwatch stopped" in svc.tail()
    assert "bot is disabled" in svc.tail()


def test_cli_works_without_the_service(tmp_path: Path) -> None:
    env = service_env(tmp_path / "o.db", free_port())
    r = cli("import", str(HOTSPOT), env=env)
    assert r.returncode == 0, r.stderr
    assert "417 imported (417 new, 0 updated), 0 refused" in r.stdout
    r = cli("simulate", "2", "--delay", "0", env=env)
    assert "directly" in r.stdout and r.stdout.count("step ") == 5
    out = tmp_path / "export.json"
    r = cli("export", str(out), env=env)
    assert r.returncode == 0 and "417 ONTs exported" in r.stdout
    r = cli("backup", env=env)
    assert r.returncode == 0 and "backup written" in r.stdout
    # The export is importable again, unchanged.
    env2 = service_env(tmp_path / "o2.db", free_port())
    r = cli("import", str(out), env=env2)
    assert "417 imported" in r.stdout, r.stdout + r.stderr


def test_cli_import_goes_through_the_running_service(demo: ServiceProcess, tmp_path: Path) -> None:
    r = cli("import", str(HOTSPOT), env=demo.env)
    assert r.returncode == 0, r.stderr
    assert "417 imported" in r.stdout
    # The running monitor sees the change at once: no restart needed.
    assert demo.get("/api/onts/4")["ip"] == "127.239.1.129"


def test_bad_settings_fail_with_one_line(tmp_path: Path) -> None:
    env = service_env(tmp_path / "x.db", free_port(), ONTWATCH_HTTP_PORT="seventy")
    r = cli("run", env=env, timeout=30)
    assert r.returncode == 78
    assert r.stderr.strip().count("\n") == 0 and "ONTWATCH_HTTP_PORT" in r.stderr
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("http_port = = 1\n")
    env = service_env(tmp_path / "x.db", free_port(), ONTWATCH_CONFIG=str(bad_toml))
    r = cli("run", env=env, timeout=30)
    assert r.returncode == 78 and "ONTWATCH_CONFIG" in r.stderr


def test_refuses_public_bind_without_token(tmp_path: Path) -> None:
    # Nothing is bound: the check runs before the socket is opened.
    env = service_env(tmp_path / "x.db", free_port(), ONTWATCH_HTTP_HOST="0.0.0.0")
    r = cli("run", env=env, timeout=30)
    assert r.returncode == 78 and "ONTWATCH_API_TOKEN" in r.stderr


def test_port_in_use_exits_with_the_reason(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = service_env(tmp_path / "p.db", port)
        r = cli("run", env=env, timeout=30)  # must exit, not hang on open database threads
    assert r.returncode != 0
    assert "address already in use" in (r.stderr + r.stdout).lower()
