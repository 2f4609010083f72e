"""The service restarts under open pages: they say so, reconnect by themselves and show what
changed while they were away (no reload by the user)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from tests.browser.conftest import Browsers, StartService
from tests.browser.dom import text, wait_for
from tests.browser.live import LiveService, inventory

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def live(start: StartService) -> Iterator[LiveService]:
    svc = start()
    svc.import_onts(inventory(8))
    yield svc


def state(d: WebDriver) -> str:
    return str(d.execute_script("return document.getElementById('live-status').dataset.state"))


def marker_status(ont_id: str) -> object:
    return lambda d: d.execute_script(
        'return document.querySelector(`.ont-marker[data-ont-id="${arguments[0]}"]`)'
        "?.dataset.status ?? null",
        ont_id,
    )


def test_pages_come_back_after_a_restart_with_what_they_missed(
    live: LiveService, browsers: Browsers
) -> None:
    dash = browsers.open(live.url("/"))
    live_map = browsers.open(live.url("/map?cluster=0"))
    for d in (dash, live_map):
        wait_for(d, state, "connected", what="connected before")
    live.push("2", "OFF", 1)
    wait_for(dash, lambda d: text(d, "#stat-offline"), "1", what="first change live")

    live.svc.stop()
    for d in (dash, live_map):
        wait_for(d, state, "reconnecting", what="pages notice the service is gone")
    live.restart()
    live.push("4", "OFF", 3)  # right away: the pages have not reconnected yet
    live.push("2", "ON", 0)
    for d in (dash, live_map):
        wait_for(d, state, "connected", limit=20, what="reconnected")
    # The browser itself logs each request that found the port closed while the service was
    # away (the stream's retries, a session check): expected here. The pages' own warnings
    # and any other error still fail the test.
    browsers.errors = [
        (url, e)
        for url, e in browsers.collect()
        if not (e.source == "network" and "ERR_CONNECTION_REFUSED" in e.message)
    ]
    stats = live.get("/api/stats")
    wait_for(dash, lambda d: text(d, "#stat-offline"), str(stats["offline"]), limit=10,
             what="dashboard caught up")  # fmt: skip
    wait_for(dash, lambda d: text(d, "#unread-count"), str(stats["unread"]), limit=10,
             what="unread caught up")  # fmt: skip
    wait_for(live_map, marker_status("4"), "OFF", limit=10, what="marker 4 caught up")
    wait_for(live_map, marker_status("2"), "ON", limit=10, what="marker 2 caught up")
    # and live again afterwards
    live.push("6", "OFF", 1)
    wait_for(live_map, marker_status("6"), "OFF", what="live after the restart")
