"""The dashboard's "Probe agents" panel in real Chromium against a real `ontwatch run`.

An agent is added with `ontwatch agents add` while the service runs; the open dashboard shows
it (the stream's `agents` frame), turns it ok when it reports over HTTP with its own token,
and marks it lost when it falls silent — all without a reload.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Browsers, StartService
from tests.browser.dom import attrs, same_load, text, wait_for, watch
from tests.browser.live import LiveService, inventory

pytestmark = pytest.mark.e2e

ROW = '#agents-list tr[data-agent="POP-1"]'
# The stream looks at the agents every 5 s; the desk reloads configs every 5 s.
SHOW = 15.0
# An agent silent for 10 s (ONTWATCH_AGENT_LOST_AFTER=2 x 5 s, never under 10 s) is lost;
# the desk checks every second, the stream looks every 5 s.
LOSE = 30.0


@pytest.fixture(scope="module")
def live(start: StartService) -> Iterator[LiveService]:
    svc = start(ONTWATCH_AGENT_LOST_AFTER="2")
    svc.import_onts(inventory(12))  # Baciro holds ONTs 1, 5, 9
    yield svc


def report(live: LiveService, token: str, seq: int, ids: list[str]) -> dict[str, Any]:
    """One report as an agent sends it (docs/agents.md), with the agent's own token."""
    now = time.time()
    body = {
        "epoch": "browser-test",
        "seq": seq,
        "sent_at": now,
        "interval": 5.0,
        "assignment": "",
        "full": seq == 1,
        "sweep": {"at": now - 0.5, "duration": 0.42, "targets": len(ids), "replied": len(ids),
                  "silent": 0, "retried": 0, "held": False},
        "queue": {"depth": 3, "oldest": None, "dropped": 0},
        "obs": [[i, now - 0.5, 0] for i in ids],
    }  # fmt: skip
    req = urllib.request.Request(
        live.url("/api/agent/report"), data=json.dumps(body).encode(), method="POST"
    )
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def row_state(driver: Any) -> str | None:
    found = attrs(driver, ROW, "data-state")
    return found[0] if found else None


def test_panel_follows_an_agent_live(live: LiveService, browsers: Browsers, tmp_path: Path) -> None:
    driver = browsers.open(live.url("/"))
    mark = watch(driver)
    assert driver.execute_script("return document.getElementById('agents-panel').hidden")
    token_file = tmp_path / "agent.token"
    live.cli("agents", "add", "POP-1", "--area", "Baciro", "--token-file", str(token_file))
    token = token_file.read_text().strip()
    wait_for(driver, row_state, "waiting", limit=SHOW, what="a new agent")
    assert not driver.execute_script("return document.getElementById('agents-panel').hidden")
    assert text(driver, f"{ROW} .onts") == "3"
    assert text(driver, f"{ROW} .contact") == "belum pernah"
    answer = report(live, token, 1, ["1", "5", "9"])
    assert (answer["accepted"], answer["refused"]) == (3, 0)
    wait_for(driver, row_state, "ok", limit=SHOW, what="a reporting agent")
    assert text(driver, f"{ROW} .state") == "normal"
    assert text(driver, f"{ROW} .sweep") == "0,42 dtk"
    assert text(driver, f"{ROW} .queue") == "3"
    assert (text(driver, f"{ROW} .contact") or "").endswith(" dtk lalu")
    # silence: lost, highlighted, never a reload
    wait_for(driver, row_state, "lost", limit=LOSE, what="a silent agent")
    assert attrs(driver, ROW, "class") == ["agent-lost"]
    assert (text(driver, f"{ROW} .state") or "").startswith("hilang sejak ")
    colour = driver.execute_script(
        "return getComputedStyle(document.querySelector(arguments[0] + ' td')).backgroundColor",
        ROW,
    )
    assert colour not in ("rgba(0, 0, 0, 0)", "transparent", "rgb(255, 255, 255)")
    assert live.get("/api/onts/1")["status"] == "UNKNOWN"
    # back: the next report makes it ok again
    report(live, token, 2, ["1", "5", "9"])
    wait_for(driver, row_state, "ok", limit=SHOW, what="an agent back")
    assert same_load(driver, mark)
