"""Spreadsheet text that looks like markup stays text on every page, first paint and live.

The ONT's name, location, area and customer id carry markup that would run script if any
page put it in as HTML. Every page must show it as text, never create the elements, and never
run them (`window.__pwned` stays undefined); the console stays clean (a blocked inline
handler would be a CSP violation there).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from tests.browser.conftest import Browsers, StartService
from tests.browser.dom import wait_for, watch
from tests.browser.live import LiveService, inventory

pytestmark = pytest.mark.e2e

NAME = "<img src=x onerror=window.__pwned=1>"
LOCATION = '"><svg onload=window.__pwned=2>'
AREA = "<b onmouseover=window.__pwned=3>Kali</b>"
CUSTOMER = "</script><script>window.__pwned=4</script>"
HOSTILE_ID = "66"

CHECK = """
return {
  pwned: typeof window.__pwned,
  injected: document.querySelectorAll('img[src="x"], svg[onload], b[onmouseover], [onerror]').length
    + [...document.scripts].filter(s => (s.textContent || '').includes('__pwned=4') && !s.type).length,
  text: document.body.innerText,
};
"""


@pytest.fixture(scope="module")
def live(start: StartService) -> Iterator[LiveService]:
    svc = start()
    rows = inventory(10)
    rows.append({**rows[0], "id": HOSTILE_ID, "name": NAME, "lokasi": LOCATION, "area": AREA,
                 "id_pelanggan": CUSTOMER, "ip": "127.20.9.66"})  # fmt: skip
    svc.import_onts(rows)
    svc.push(HOSTILE_ID, "OFF", 1)  # in the offline list and the notifications from the start
    yield svc


def safe(d: WebDriver, *shown: str) -> str:
    found = d.execute_script(CHECK)
    assert found["pwned"] == "undefined", f"script ran on {d.current_url}"
    assert found["injected"] == 0, f"markup became elements on {d.current_url}"
    for text in shown:
        assert text in found["text"], f"{text!r} not shown as text on {d.current_url}"
    return str(found["text"])


def connected(d: WebDriver) -> None:
    wait_for(d, lambda d: d.execute_script(
        "return document.getElementById('live-status').dataset.state"), "connected",
        what="live-status")  # fmt: skip


def test_first_paint_shows_markup_as_text(live: LiveService, browsers: Browsers) -> None:
    d = browsers.open("")
    pages = {
        "/": (NAME,),
        "/notifications": (NAME,),
        f"/onts/{HOSTILE_ID}": (NAME, LOCATION, AREA, CUSTOMER),
        f"/notifications?area={AREA}": (NAME,),
    }
    for path, shown in pages.items():
        d.get(live.url(path))
        connected(d)
        safe(d, *shown)
        d.find_element("id", "notif-toggle").click()
        wait_for(d, lambda d: d.find_element("id", "notif-dropdown").is_displayed(), True,
                 what="dropdown")  # fmt: skip
        safe(d, NAME)
    assert AREA in d.execute_script(
        "return [...document.querySelectorAll('select[name=area] option')].map(o => o.text)"
    )


def test_map_tooltip_popup_and_filters_show_markup_as_text(
    live: LiveService, browsers: Browsers
) -> None:
    d = browsers.open(live.url(f"/map?cluster=0&ont={HOSTILE_ID}"))
    connected(d)
    wait_for(d, lambda d: d.execute_script("return document.getElementById('map').dataset.ready"),
             "1", what="#map[data-ready]")  # fmt: skip
    marker = d.find_element("css selector", f'.ont-marker[data-ont-id="{HOSTILE_ID}"]')
    d.execute_script("arguments[0].dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))",
                     marker)  # fmt: skip
    marker.click()
    wait_for(d, lambda d: len(d.find_elements("css selector", ".leaflet-popup-content")), 1,
             what="popup open")  # fmt: skip
    popup = d.execute_script("return document.querySelector('.leaflet-popup-content').textContent")
    assert NAME in popup and LOCATION in popup and CUSTOMER in popup, popup
    safe(d, NAME)
    options = d.execute_script(
        "return [...document.querySelectorAll('#filter-area option')].map(o => o.text)"
    )
    assert AREA in options, options
    search = d.find_element("id", "search")
    search.send_keys(NAME)
    wait_for(d, lambda d: d.execute_script(
        "return [...document.querySelectorAll('.ont-marker')].map(e => e.dataset.ontId)"),
        [HOSTILE_ID], what="search by the hostile name")  # fmt: skip
    safe(d)


def test_live_frames_show_markup_as_text(live: LiveService, browsers: Browsers) -> None:
    """Notification rows, dropdown items, toasts and the offline list drawn by the scripts."""
    pages = [browsers.open(live.url(p)) for p in ("/", "/notifications", "/map?cluster=0")]
    for d in pages:
        connected(d)
        watch(d)
    live.push(HOSTILE_ID, "ON", 0)
    live.push(HOSTILE_ID, "OFF", 3)
    newest = str(live.get("/api/notifications?limit=1")[0]["id"])
    for d in pages:
        wait_for(d, lambda d: bool(d.find_elements(
            "css selector", f'#notif-dropdown li.notif-item[data-id="{newest}"]')), True,
            what="newest notification in the dropdown")  # fmt: skip
        wait_for(d, lambda d: d.execute_script("return window.__watch.toasts.length"), 2,
                 what="two toasts")  # fmt: skip
        assert all(NAME in t for t in d.execute_script("return window.__watch.toasts")), d
        safe(d, NAME)
    time.sleep(0.3)  # anything drawn a frame later
    for d in pages:
        safe(d)
