"""The language switch: Indonesian by default, English kept by the browser (localStorage and
cookie), server-rendered and live texts in the chosen language."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from tests.browser.conftest import Browsers, StartService
from tests.browser.dom import toasts, wait_for, watch
from tests.browser.live import LiveService, inventory

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def live(start: StartService) -> Iterator[LiveService]:
    svc = start()
    svc.import_onts(inventory(6))
    yield svc


def lang(d: WebDriver) -> str:
    return str(d.execute_script("return document.documentElement.lang"))


def stored(d: WebDriver) -> tuple[str | None, str | None]:
    cookie = next((c["value"] for c in d.get_cookies() if c["name"] == "lang"), None)
    return d.execute_script("return localStorage.getItem('ontwatch.lang')"), cookie


def connected(d: WebDriver) -> None:
    wait_for(d, lambda d: d.execute_script(
        "return document.getElementById('live-status').dataset.state"), "connected",
        what="live-status")  # fmt: skip


def test_switch_is_remembered_and_live_texts_follow(live: LiveService, browsers: Browsers) -> None:
    d = browsers.open(live.url("/"))
    assert lang(d) == "id"
    indonesian_title = d.title
    d.find_element("id", "lang-switch").click()
    wait_for(d, lang, "en", what="html lang after the switch")
    assert d.title != indonesian_title
    assert stored(d) == ("en", "en")

    d.get(live.url("/map?cluster=0"))
    assert lang(d) == "en"
    connected(d)
    watch(d)
    live.push("3", "OFF", 3)
    wait_for(d, lambda d: len(toasts(d)), 1, what="toast")
    stored_text = live.get("/api/notifications?limit=1")[0]["message"]  # the service language
    assert toasts(d)[0] != stored_text and "(id 3)" in toasts(d)[0], (toasts(d), stored_text)

    d.delete_cookie("lang")  # the cookie lost, the browser still remembers: brought back
    d.get(live.url("/notifications"))
    wait_for(d, lang, "en", what="language restored from localStorage")
    assert stored(d) == ("en", "en")

    d.find_element("id", "lang-switch").click()
    wait_for(d, lang, "id", what="back to Indonesian")
    assert stored(d) == ("id", "id")
