"""Log forging: user text (ONT names) cannot write fake log lines or raw control characters."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from ontwatch.logs import DedupFilter, escape_controls, text_formatter
from tests.process import ServiceProcess, free_port, service_env

FORGED = "Rumah\n2026-01-01 00:00:00,000 ERROR ontwatch: database wiped\r\x1b[2J\x07\x85end\u2028x"


def _format(record_msg: str, *args: object) -> str:
    record = logging.LogRecord("ontwatch.alerts", logging.INFO, __file__, 1, record_msg, args, None)
    return text_formatter().format(record)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("bell\x07", "bell\\x07"),
        ("del\x7f", "del\\x7f"),
        ("c1\x85", "c1\\x85"),
        ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
        ("tab\tok", "tab\\tok"),
        ("back\\slash", "back\\slash"),
        ("Pos RT 01 — Baciro", "Pos RT 01 — Baciro"),
    ],
)
def test_escape_controls_table(raw: str, shown: str) -> None:
    assert escape_controls(raw) == shown


def test_text_log_line_stays_one_line() -> None:
    line = _format("ALERT WARNING %s", FORGED)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\x85" not in line
    assert "\\n2026-01-01 00:00:00,000 ERROR" in line


def test_traceback_lines_cannot_look_like_log_lines() -> None:
    try:
        raise ValueError(FORGED)
    except ValueError:
        record = logging.LogRecord(
            "ontwatch", logging.ERROR, __file__, 1, "failed %s", ("x",), exc_info=True
        )
        import sys

        record.exc_info = sys.exc_info()
    out = text_formatter().format(record)
    lines = out.split("\n")
    assert all(line.startswith("    ") for line in lines[1:])
    assert "\x1b" not in out and "\r" not in out


def test_repeated_identical_errors_logged_once_with_count() -> None:
    now = [1000.0]
    dedup = DedupFilter(window=60.0, clock=lambda: now[0])
    shown: list[str] = []

    def emit(msg: str, level: int = logging.ERROR) -> None:
        record = logging.LogRecord("asyncio", level, __file__, 7, msg, None, None)
        if dedup.filter(record):
            shown.append(record.getMessage())

    for _ in range(500):
        emit("socket.accept() out of system resource")
        now[0] += 0.01
    emit("a different error")
    assert shown == ["socket.accept() out of system resource", "a different error"]
    now[0] += 61
    emit("socket.accept() out of system resource")
    assert len(shown) == 3 and "499 more" in shown[2]
    for _ in range(3):
        emit("info lines are never folded", logging.INFO)
    assert shown.count("info lines are never folded") == 3


def test_service_log_has_no_forged_line(tmp_path: Path) -> None:
    """The real process: an ONT named with a fake log line, pushed OFF, logged as one line."""
    log = tmp_path / "service.log"
    svc = ServiceProcess(service_env(tmp_path / "db.sqlite", free_port()), log=log)
    try:
        code, _ = svc.request("POST", "/api/onts", {"id": "77", "name": FORGED, "area": "A"})
        assert code in (200, 201)
        assert (
            svc.request("POST", "/api/ont-status/77", {"status": "OFF", "rto_count": 1})[0] == 200
        )
        deadline = time.monotonic() + 10
        while "ALERT" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        svc.stop()
    raw = log.read_bytes()
    text = raw.decode()
    alert = [line for line in text.splitlines() if "ALERT" in line]
    assert alert, text[-2000:]
    assert "database wiped" in alert[0]
    assert not any(line.startswith("2026-01-01") for line in text.splitlines())
    for byte in (b"\x1b", b"\x07", b"\r", "\x85".encode(), "\u2028".encode()):
        assert byte not in raw


def test_json_lines_stay_one_object_per_line(tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    env = service_env(tmp_path / "db.sqlite", free_port(), ONTWATCH_LOG_JSON="true")
    svc = ServiceProcess(env, log=log)
    try:
        svc.request("POST", "/api/onts", {"id": "78", "name": FORGED, "area": "A"})
        svc.request("POST", "/api/ont-status/78", {"status": "OFF", "rto_count": 1})
        time.sleep(0.5)
    finally:
        svc.stop()
    objects = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any("database wiped" in o["msg"] for o in objects)
    assert b"\x1b" not in log.read_bytes()
