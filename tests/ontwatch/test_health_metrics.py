"""/healthz and /metrics of the real service process."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.process import ServiceProcess, free_port, service_env


def test_metrics_and_health(tmp_path: Path) -> None:
    env = service_env(tmp_path / "m.db", free_port())
    svc = ServiceProcess(env, "--demo", log=tmp_path / "m.log")
    try:
        svc.request("POST", "/api/ont-status/3", {"status": "OFF", "rto_count": 3})
        code, body = svc.request("GET", "/healthz")
        assert code == 200 and body["ok"] is True and body["problems"] == []
        import urllib.request

        with urllib.request.urlopen(svc.base + "/metrics", timeout=5) as r:
            text = r.read().decode()
        assert 'ontwatch_onts{status="OFF"} 1.0' in text
        assert 'ontwatch_onts_by_severity{severity="critical"} 1.0' in text
        assert 'ontwatch_observations_total{source="push"} 1.0' in text
        assert "ontwatch_outbox_pending 0.0" in text
    finally:
        svc.stop()


def test_health_fails_while_the_database_is_locked(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    env = service_env(db, free_port())
    svc = ServiceProcess(env, log=tmp_path / "l.log")
    # Another process takes the write lock and holds it for longer than the check waits.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
            "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(8)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        code, body = svc.request("GET", "/healthz")
        assert code == 503 and any("database" in p for p in body["problems"])
    finally:
        holder.kill()
        holder.wait(5)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        code, body = svc.request("GET", "/healthz")
        if code == 200:
            break
        time.sleep(0.5)
    assert code == 200, body
    svc.stop()
    assert sqlite3.connect(db).execute("SELECT value FROM meta WHERE key='healthz'").fetchone()
