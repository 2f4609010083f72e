"""The real `ontwatch run` process with the bot on: kill -9 with undelivered rows, restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ontwatch.demo import demo_database
from tests.e2e.harness import FakeBotProcess, wait_until
from tests.process import ServiceProcess, free_port, service_env

pytestmark = pytest.mark.e2e
GROUP = -100777


@pytest.fixture
def fake() -> Iterator[FakeBotProcess]:
    server = FakeBotProcess()
    yield server
    server.stop()


def test_undelivered_alert_survives_kill9_and_goes_out_once(
    tmp_path: Path, fake: FakeBotProcess
) -> None:
    env = service_env(
        tmp_path / "db.sqlite",
        free_port(),
        TELEGRAM_BOT_TOKEN="123456:PROCESS-test",
        TELEGRAM_API_URL=fake.url,
        ONTWATCH_ALERT_CHATS=str(GROUP),
        ONTWATCH_GROUP_WAIT="0",
        ONTWATCH_STATUS_MESSAGE="off",  # only alerts here; the pinned board has its own tests
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

        # Restarts on the same database: --demo would start afresh, so run on its database.
        env = {**env, "ONTWATCH_DB": str(demo_database(Path(env["ONTWATCH_DB"])))}
        svc = ServiceProcess(env, log=log)
        wait_until(lambda: len(fake.texts(GROUP)) >= 1)
        assert svc.stop() == 0
        svc = ServiceProcess(env, log=log)
        time.sleep(3)  # a restart after a clean stop must not send it again
        texts = fake.texts(GROUP)
        assert len(texts) == 1 and "KRITIS" in texts[0]  # default language: id
        assert "123456:PROCESS-test" not in log.read_text()  # the token never reaches the log
    finally:
        svc.stop()
