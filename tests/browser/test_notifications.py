"""The notification history page: filters, paging, mark one read and mark all read, and the
read marks reaching the other open pages live."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from tests.browser.conftest import Browsers, StartService
from tests.browser.dom import attrs, text, wait_for
from tests.browser.live import LiveService, inventory

pytestmark = pytest.mark.e2e
PAGE = 50  # rows a page shows (web/pages.py PAGE_SIZE); the test only needs "more than a page"


@pytest.fixture(scope="module")
def live(start: StartService) -> Iterator[LiveService]:
    svc = start()
    svc.import_onts(inventory(40))
    for i in range(1, 41):  # 40 incidents opened, a third of them critical, then recoveries
        svc.push(str(i), "OFF", 3 if i % 3 == 0 else 1)
    for i in range(1, 41):
        svc.push(str(i), "ON", 0)
    oldest = api(svc)[-5:]
    for n in oldest:  # a few read, so that "unread only" has something to leave out
        assert svc.call("POST", f"/api/notifications/mark-read/{n['id']}")[0] == 200
    yield svc


def api(live: LiveService, query: str = "") -> list[dict[str, Any]]:
    return live.get("/api/notifications?limit=1000" + query)


def rows(d: WebDriver) -> list[str]:
    return attrs(d, "#notif-table tbody tr[data-id]", "data-id")


def connected(d: WebDriver) -> None:
    wait_for(d, lambda d: d.execute_script(
        "return document.getElementById('live-status').dataset.state"), "connected",
        what="live-status")  # fmt: skip


def test_paging_covers_the_history_once_newest_first(live: LiveService, browsers: Browsers) -> None:
    everything = [str(n["id"]) for n in api(live)]
    assert len(everything) > PAGE, len(everything)
    d = browsers.open(live.url("/notifications"))
    seen = rows(d)
    pages = 1
    while d.find_elements("id", "next-page") and pages < 10:
        d.find_element("id", "next-page").click()
        pages += 1
        seen += rows(d)
    assert seen == everything, "pages together are the history, newest first, no repeats"
    assert d.find_elements("id", "prev-page")
    d.find_element("id", "prev-page").click()
    assert rows(d) == everything[:PAGE]


@pytest.mark.parametrize("field", ["severity", "area", "ont", "unread"])
def test_each_filter_matches_the_api(live: LiveService, browsers: Browsers, field: str) -> None:
    d = browsers.open(live.url("/notifications"))
    form = d.find_element("id", "notif-filter")
    if field == "severity":
        Select(form.find_element("name", "severity")).select_by_value("critical")
        expected = api(live, "&severity=critical")
    elif field == "area":
        Select(form.find_element("name", "area")).select_by_value("Demangan")
        expected = api(live, "&area=Demangan")
    elif field == "ont":
        form.find_element("name", "ont").send_keys("3")
        expected = api(live, "&ont_id=3")
    else:
        form.find_element("name", "unread").click()
        expected = api(live, "&unread=1")
    form.find_element("css selector", "button[type=submit]").click()
    wait_for(d, lambda d: field in d.current_url, True, what="filter in the address")
    ids = [str(n["id"]) for n in expected][:PAGE]
    assert ids and len(expected) < len(api(live)), "the filter must narrow"
    assert rows(d) == ids


def test_mark_read_reaches_the_other_pages(live: LiveService, browsers: Browsers) -> None:
    notes = browsers.open(live.url("/notifications"))
    dash = browsers.open(live.url("/"))
    for d in (notes, dash):
        connected(d)
    unread = live.get("/api/stats")["unread"]
    assert unread > 1
    first = attrs(notes, "#notif-table tbody tr.unread[data-id]", "data-id")[0]
    notes.find_element("css selector", f'button.mark-read[data-id="{first}"]').click()
    for d in (notes, dash):
        wait_for(d, lambda d: text(d, "#unread-count"), str(unread - 1), what="unread after one")
    wait_for(dash, lambda d: text(d, "#stat-unread"), str(unread - 1), what="#stat-unread")
    row_class = notes.find_element("css selector", f'tr[data-id="{first}"]').get_attribute("class")
    assert "read" in row_class.split() and "unread" not in row_class.split(), row_class

    notes.find_element("id", "mark-all-read").click()
    for d in (notes, dash):
        wait_for(d, lambda d: text(d, "#unread-count"), "0", what="unread after all")
    wait_for(notes, lambda d: attrs(d, "#notif-table tbody tr.unread", "data-id"), [],
             what="no unread rows")  # fmt: skip
    wait_for(dash, lambda d: attrs(d, "#latest-notifications li.unread", "data-id"), [],
             what="no unread on the dashboard")  # fmt: skip
    assert live.get("/api/stats")["unread"] == 0
