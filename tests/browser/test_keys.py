"""Keyboard shortcuts: / search, o offline only, n notifications, f full screen (kiosk), ? the list.

Keys are typed into the page as a person would (selenium key events on the focused element);
a shortcut typed into the search field is text, not a command.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from tests.browser.conftest import Browsers, StartService
from tests.browser.dom import attrs, wait_for
from tests.browser.live import LiveService, inventory

pytestmark = pytest.mark.e2e
OFF = {"3", "8", "13"}


@pytest.fixture(scope="module")
def live(start: StartService) -> Iterator[LiveService]:
    svc = start()
    svc.import_onts(inventory(16))
    for ont_id in sorted(OFF):
        svc.push(ont_id, "OFF", 1)
    yield svc


def press(d: WebDriver, keys: str) -> None:
    """Type keys into whatever has the focus (the page itself when nothing does)."""
    ActionChains(d).send_keys(keys).perform()


def js(d: WebDriver, script: str) -> object:
    return d.execute_script("return " + script)


def open_map(browsers: Browsers, live: LiveService, query: str = "?cluster=0") -> WebDriver:
    d = browsers.open(live.url("/map" + query))
    wait_for(d, lambda d: js(d, "document.getElementById('map').dataset.ready"), "1",
             what="#map[data-ready]")  # fmt: skip
    wait_for(d, lambda d: js(d, "document.getElementById('live-status').dataset.state"),
             "connected", what="live-status")  # fmt: skip
    return d


def shown_markers(d: WebDriver) -> set[str]:
    return set(attrs(d, ".ont-marker[data-ont-id]", "data-ont-id"))


def test_slash_focuses_search_and_typed_keys_stay_text(
    live: LiveService, browsers: Browsers
) -> None:
    d = open_map(browsers, live)
    press(d, "/")
    wait_for(d, lambda d: js(d, "document.activeElement.id"), "search", what="focus after /")
    press(d, "of?n")  # shortcuts, but typed into the field
    assert d.find_element("id", "search").get_attribute("value") == "of?n"
    assert js(d, "document.getElementById('filter-status').value") == ""
    assert js(d, "document.body.classList.contains('kiosk')") is False
    assert js(d, "document.getElementById('shortcuts').open") is False
    assert js(d, "document.getElementById('notif-dropdown').hidden") is True


def test_o_toggles_offline_only(live: LiveService, browsers: Browsers) -> None:
    d = open_map(browsers, live)
    everyone = {o["id"] for o in live.get("/api/onts")}
    wait_for(d, shown_markers, everyone, what="all markers")
    press(d, "o")
    wait_for(d, lambda d: js(d, "document.getElementById('filter-status').value"), "OFF",
             what="status filter after o")  # fmt: skip
    wait_for(d, shown_markers, OFF, what="only OFF markers after o")
    assert set(attrs(d, ".ont-marker[data-ont-id]", "data-status")) == {"OFF"}
    press(d, "o")
    wait_for(d, shown_markers, everyone, what="all markers after o again")


@pytest.mark.parametrize("path", ["/map?cluster=0", "/"])
def test_n_opens_and_closes_the_notifications(
    live: LiveService, browsers: Browsers, path: str
) -> None:
    d = browsers.open(live.url(path))
    wait_for(d, lambda d: js(d, "document.getElementById('live-status').dataset.state"),
             "connected", what="live-status")  # fmt: skip
    press(d, "n")
    wait_for(d, lambda d: d.find_element("id", "notif-dropdown").is_displayed(), True,
             what="dropdown after n")  # fmt: skip
    assert d.find_element("id", "notif-toggle").get_attribute("aria-expanded") == "true"
    items = attrs(d, "#notif-dropdown li.notif-item[data-id]", "data-id")
    assert len(items) == len(OFF), items
    press(d, "n")
    wait_for(d, lambda d: d.find_element("id", "notif-dropdown").is_displayed(), False,
             what="dropdown after n again")  # fmt: skip


def test_f_kiosk_hides_controls_and_keeps_the_map_fitted(
    live: LiveService, browsers: Browsers
) -> None:
    d = open_map(browsers, live)
    assert d.find_element("id", "filter-status").is_displayed()
    press(d, "f")
    wait_for(d, lambda d: js(d, "document.body.classList.contains('kiosk')"), True,
             what="body.kiosk after f")  # fmt: skip
    assert "kiosk=1" in d.current_url
    assert d.find_element("id", "kiosk-toggle").get_attribute("aria-pressed") == "true"
    for hidden in ("filter-status", "filter-area", "search", "lang-switch"):
        assert not d.find_element("id", hidden).is_displayed(), hidden
    # every ONT stays in view: the map was fitted to them after the layout change
    wait_for(d, lambda d: js(d, """(() => { const m = document.getElementById('map').getBoundingClientRect();
      return [...document.querySelectorAll('.ont-marker')].every(e => { const r = e.getBoundingClientRect();
        return r.left >= m.left && r.right <= m.right && r.top >= m.top && r.bottom <= m.bottom; }); })()"""),
        True, what="markers inside the map")  # fmt: skip
    press(d, "f")
    wait_for(d, lambda d: js(d, "document.body.classList.contains('kiosk')"), False,
             what="kiosk off after f again")  # fmt: skip
    assert d.find_element("id", "filter-status").is_displayed()


def test_kiosk_query_starts_in_kiosk(live: LiveService, browsers: Browsers) -> None:
    d = open_map(browsers, live, "?kiosk=1")
    assert js(d, "document.body.classList.contains('kiosk')") is True
    assert not d.find_element("id", "search").is_displayed()


def test_question_mark_shows_the_list(live: LiveService, browsers: Browsers) -> None:
    d = open_map(browsers, live)
    press(d, "?")
    wait_for(d, lambda d: js(d, "document.getElementById('shortcuts').open"), True,
             what="#shortcuts open after ?")  # fmt: skip
    keys = [k.text for k in d.find_elements("css selector", "#shortcuts kbd")]
    assert keys == ["/", "o", "n", "f", "?"], keys
    press(d, Keys.ESCAPE)
    wait_for(d, lambda d: js(d, "document.getElementById('shortcuts').open"), False,
             what="#shortcuts closed by Escape")  # fmt: skip
