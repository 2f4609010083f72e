"""The real `ontwatch run` process with the bot on: kill -9 with undelivered rows, restart."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.process import ROOT, ServiceProcess, free_port, service_env

pytestmark = pytest.mark.e2e
GROUP = -100777


class FakeProcess:
    """`python -m tests.fakes.bot_api` on a free loopback port, driven over /_fake/."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.bot_api", "--port", str(free_port())],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()  # "READY http://127.0.0.1:PORT"
        assert line.startswith("READY http://127.0.0.1:"), line
        self.url = line.split()[1]

    def control(self, action: str, **body: Any) -> Any:
        req = urllib.request.Request(
            f"{self.url}/_fake/{action}", data=json.dumps(body).encode(), method="POST"
        )
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())["result"]

    def texts(self, chat_id: int) -> list[str]:
        return [
            c["params"].get("text", "")
            for c in self.control("sent", chat_id=chat_id)
            if c["method"].lower() == "sendmessage"
        ]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def fake() -> Iterator[FakeProcess]:
    server = FakeProcess()
    yield server
    server.stop()


def wait_until(predicate: Any, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.1)


def test_undelivered_alert_survives_kill9_and_goes_out_once(
    tmp_path: Path, fake: FakeProcess
) -> None:
    env = service_env(
        tmp_path / "db.sqlite",
        free_port(),
        TELEGRAM_BOT_TOKEN="123456:PROCESS-test",
        TELEGRAM_API_URL=fake.url,
        ONTWATCH_ALERT_CHATS=str(GROUP),
        ONTWATCH_GROUP_WAIT="0",
        ONTWATCH_TILE_URL="http://127.0.0.1:9/{z}/{x}/{y}.png",
    )
    log = tmp_path / "service.log"
    svc = ServiceProcess(env, "--demo", log=log)
    try:
        wait_until(
            lambda: any(r["method"].lower() == "getupdates" for r in fake.control("requests"))
        )
        fake.control("fail_with_status", status=502)
        code, _ = svc.request("POST", "/api/ont-status/3", {"status": "OFF", "rto_count": 4})
        assert code == 200
        wait_until(
            lambda: any(
                r["status"] == 502 and r["method"].lower() == "sendmessage"
                for r in fake.control("requests")
            )
        )
        svc.kill9()
        fake.control("clear_faults")
        assert fake.texts(GROUP) == []

        svc = ServiceProcess(env, "--demo", log=log)
        wait_until(lambda: len(fake.texts(GROUP)) >= 1)
        assert svc.stop() == 0
        svc = ServiceProcess(env, "--demo", log=log)
        time.sleep(3)  # a restart after a clean stop must not send it again
        texts = fake.texts(GROUP)
        assert len(texts) == 1 and "KRITIS" in texts[0]  # default language: id
        assert "123456:PROCESS-test" not in log.read_text()  # the token never reaches the log
    finally:
        svc.stop()
