"""Login required (ONTWATCH_LOGIN_REQUIRED=true): the login page, the pages and live updates
behind a session, roles on the ONT page, logout back to the login page."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from tests.browser.chrome import console
from tests.browser.conftest import Browsers, StartService
from tests.browser.dom import attrs, wait_for
from tests.browser.live import LiveService, inventory

pytestmark = pytest.mark.e2e
PASSWORDS = {"vina": secrets.token_urlsafe(12), "opan": secrets.token_urlsafe(12)}


@pytest.fixture(scope="module")
def live(start: StartService) -> Iterator[LiveService]:
    svc = start(token=secrets.token_urlsafe(24), ONTWATCH_LOGIN_REQUIRED="true")
    svc.import_onts(inventory(8))
    svc.push("2", "OFF", 1)
    svc.cli("user", "add", "vina", "--role", "viewer", "--password-stdin",
            stdin=PASSWORDS["vina"] + "\n")  # fmt: skip
    svc.cli("user", "add", "opan", "--role", "operator", "--password-stdin",
            stdin=PASSWORDS["opan"] + "\n")  # fmt: skip
    yield svc


def js(d: WebDriver, script: str) -> object:
    return d.execute_script("return " + script)


def path(d: WebDriver) -> str:
    return str(js(d, "location.pathname"))


def log_in(d: WebDriver, name: str, password: str) -> None:
    form = d.find_element("id", "login-form")
    form.find_element("name", "username").send_keys(name)
    form.find_element("name", "password").send_keys(password)
    form.find_element("css selector", "button[type=submit]").click()


def connected(d: WebDriver) -> None:
    wait_for(d, lambda d: js(d, "document.getElementById('live-status').dataset.state"),
             "connected", what="live-status")  # fmt: skip


def test_pages_need_a_login_then_work_live_until_logout(
    live: LiveService, browsers: Browsers
) -> None:
    d = browsers.open(live.url("/map?cluster=0"))
    wait_for(d, path, "/login", what="redirect to the login page")
    assert "Baciro" not in d.page_source and "127.20." not in d.page_source
    for p in ("/", "/notifications", "/onts/2"):
        d.get(live.url(p))
        assert path(d) == "/login", p

    d.get(live.url("/map?cluster=0"))
    log_in(d, "vina", "not-" + PASSWORDS["vina"])
    wait_for(d, lambda d: bool(d.find_elements("id", "login-error")), True, what="#login-error")
    wrong_password = d.find_element("id", "login-error").text
    assert path(d) == "/login"
    cookies_before = {c["name"] for c in d.get_cookies()}
    d.get(live.url("/login"))
    log_in(d, "nobody", PASSWORDS["vina"])
    wait_for(d, lambda d: bool(d.find_elements("id", "login-error")), True, what="#login-error")
    assert d.find_element("id", "login-error").text == wrong_password  # no user enumeration

    d.get(live.url("/map?cluster=0"))
    log_in(d, "vina", PASSWORDS["vina"])
    wait_for(d, path, "/map", what="back to /map after login")
    session = [c for c in d.get_cookies() if c["name"] not in cookies_before | {"lang"}]
    assert session and all(c["httpOnly"] for c in session), session
    assert all(c.get("sameSite") in ("Lax", "Strict") for c in session), session
    assert js(d, "document.cookie").find(session[0]["value"]) < 0
    connected(d)
    assert d.find_elements("id", "logout-form")
    live.push("5", "OFF", 3)
    wait_for(d, lambda d: js(d,
        "document.querySelector('.ont-marker[data-ont-id=\"5\"]')?.dataset.severity"),
        "critical", what="live marker behind the login")  # fmt: skip

    for p, selector in (("/", "#stat-total"), ("/notifications", "#notif-table tr[data-id]")):
        d.get(live.url(p))
        assert path(d) == p
        connected(d)
        assert d.find_elements("css selector", selector), (p, selector)
    assert live.get("/api/stats")["total"] == int(d.execute_script(
        "return fetch('/api/stats').then(r => r.json()).then(j => j.total)"))  # fmt: skip

    d.find_element("css selector", "#logout-form button[type=submit]").click()
    wait_for(d, path, "/login", what="login page after logout")
    status = d.execute_script("return fetch('/api/stats').then(r => r.status)")
    assert status == 401, status
    # that refused fetch is logged by the browser; it was the only thing logged
    time.sleep(1.0)  # the browser logs it (twice) a moment after the answer
    logged = [e for e in console(d) if e.level == "SEVERE"]
    assert logged, "a refused fetch should show in the console (is the log being read?)"
    assert all("/api/stats" in e.message and "401" in e.message for e in logged), logged
    d.get(live.url("/notifications"))
    assert path(d) == "/login"
    d.back()  # a page kept from before the logout finds its stream refused: to the login page
    wait_for(d, path, "/login", what="login page after going back")
    time.sleep(1.0)
    logged = [e for e in console(d) if e.level == "SEVERE"]
    assert all(" 401 " in e.message for e in logged), logged


def test_viewer_marks_read_and_operator_also_acks(live: LiveService, browsers: Browsers) -> None:
    viewer = browsers.open(live.url("/login?next=/onts/2"))
    log_in(viewer, "vina", PASSWORDS["vina"])
    wait_for(viewer, path, "/onts/2", what="viewer on the ONT page")
    assert not viewer.find_elements("css selector", "#ont-actions button[data-action=ack]")
    viewer.get(live.url("/notifications"))
    connected(viewer)
    first = attrs(viewer, "#notif-table tbody tr.unread[data-id]", "data-id")[0]
    viewer.find_element("css selector", f'button.mark-read[data-id="{first}"]').click()
    wait_for(viewer, lambda d: first in attrs(d, "#notif-table tbody tr.read[data-id]", "data-id"),
             True, what="row marked read")  # fmt: skip
    items = live.get("/api/notifications?limit=100")
    assert {str(n["id"]): n["read"] for n in items}[first] is True

    operator = browsers.open(live.url("/login?next=/onts/2"))
    log_in(operator, "opan", PASSWORDS["opan"])
    wait_for(operator, path, "/onts/2", what="operator on the ONT page")
    connected(operator)
    ack = operator.find_element("css selector", "#ont-actions button[data-action=ack]")
    assert ack.is_enabled()
    ack.click()
    wait_for(operator, lambda d: (live.get("/api/onts/2").get("incident") or {}).get("acked_by"),
             "opan", what="incident acknowledged by the operator")  # fmt: skip
