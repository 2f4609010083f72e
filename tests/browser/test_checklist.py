"""The older system's test procedure, literally: three pages open, five pushes, no reload.

Open /map, / and /notifications; run the five-step sequence; each page shows each step
(marker, toast, unread badge, dropdown, dashboard counts, notification rows) without a
reload, and the history is still there after one. What each page should show is read from
the JSON API after every step, so the pages are checked against the service's own truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from tests.browser.conftest import Browsers, StartService
from tests.browser.dom import attrs, same_load, text, toasts, wait_for, watch
from tests.browser.live import LiveService, inventory

pytestmark = pytest.mark.e2e

# The five-step sequence of `ontwatch simulate` and what the rules make of it.
STEPS = [("OFF", 0, "warning"), ("ON", 0, "ok"), ("OFF", 1, "warning"), ("ON", 0, "ok"),
         ("OFF", 3, "critical")]  # fmt: skip
LIMIT = 5.0  # seconds a page may take to show a step (the bench measures the real figure)


@pytest.fixture(scope="module")
def live(start: StartService) -> Iterator[LiveService]:
    svc = start()
    svc.import_onts(inventory(12))
    yield svc


@dataclass
class Truth:
    """What the JSON API says after a step."""

    stats: dict[str, Any]
    notification_ids: list[int]  # newest first
    ont: dict[str, Any]


def truth(live: LiveService, ont_id: str) -> Truth:
    notes = live.get("/api/notifications?limit=100")
    items = notes["items"] if isinstance(notes, dict) else notes
    return Truth(
        live.get("/api/stats"), [int(n["id"]) for n in items], live.get(f"/api/onts/{ont_id}")
    )


def marker(ont_id: str, name: str) -> Any:
    return lambda d: d.execute_script(
        'const m = document.querySelector(`.ont-marker[data-ont-id="${arguments[0]}"]`);'
        "return m ? m.dataset[arguments[1]] : null;",
        ont_id,
        name,
    )


def check_header(d: WebDriver, t: Truth, page: str) -> None:
    wait_for(d, lambda d: text(d, "#unread-count"), str(t.stats["unread"]), limit=LIMIT,
             what=f"{page} #unread-count")  # fmt: skip
    newest = str(t.notification_ids[0])
    wait_for(d, lambda d: attrs(d, "#notif-dropdown li.notif-item[data-id]", "data-id")[:1],
             [newest], limit=LIMIT, what=f"{page} dropdown newest item")  # fmt: skip


def check_map(d: WebDriver, t: Truth, ont_id: str, alerts: int) -> None:
    wait_for(d, marker(ont_id, "status"), t.ont["status"], limit=LIMIT, what="marker data-status")
    wait_for(d, marker(ont_id, "severity"), t.ont["severity"], limit=LIMIT,
             what="marker data-severity")  # fmt: skip
    wait_for(d, lambda d: len(toasts(d)), alerts, limit=LIMIT, what="toasts on /map")
    assert t.ont["name"] in toasts(d)[-1], toasts(d)


def check_dashboard(d: WebDriver, t: Truth, ont_id: str) -> None:
    s = t.stats
    for key in ("total", "online", "offline", "unknown", "unread"):
        wait_for(d, lambda d, k=key: text(d, f"#stat-{k}"), str(s[key]), limit=LIMIT,
                 what=f"#stat-{key}")  # fmt: skip
    for sev in ("warning", "critical"):
        wait_for(d, lambda d, v=sev: text(d, f"#sev-{v}"), str(s["by_severity"][sev]),
                 limit=LIMIT, what=f"#sev-{sev}")  # fmt: skip
    row = f'#offline-list tr[data-ont-id="{ont_id}"]'
    if t.ont["status"] == "OFF":
        wait_for(d, lambda d: text(d, f"{row} .rto"), str(t.ont["rto_count"]), limit=LIMIT,
                 what="offline-list row rto")  # fmt: skip
        assert text(d, f"{row} .since") and text(d, f"{row} .duration")
    else:
        wait_for(d, lambda d: text(d, row), None, limit=LIMIT, what="offline-list row gone")
    wait_for(d, lambda d: attrs(d, "#latest-notifications li[data-id]", "data-id")[:1],
             [str(t.notification_ids[0])], limit=LIMIT, what="latest notification")  # fmt: skip


def check_notifications(d: WebDriver, t: Truth) -> None:
    ids = [str(i) for i in t.notification_ids]
    wait_for(d, lambda d: attrs(d, "#notif-table tbody tr[data-id]", "data-id"), ids,
             limit=LIMIT, what="#notif-table rows")  # fmt: skip
    assert attrs(d, "#notif-table tbody tr.unread[data-id]", "data-id") == ids


def test_five_steps_live_on_three_pages_then_history_after_reload(
    live: LiveService, browsers: Browsers
) -> None:
    ont_id = "5"
    before = truth(live, ont_id)
    assert before.ont["status"] == "ON" and before.notification_ids == []
    pages = {
        "map": browsers.open(live.url("/map?cluster=0")),
        "dashboard": browsers.open(live.url("/")),
        "notifications": browsers.open(live.url("/notifications")),
    }
    for d in pages.values():
        wait_for(d, lambda d: d.execute_script(
            "return document.getElementById('live-status').dataset.state"), "connected",
            what="live-status")  # fmt: skip
    wait_for(pages["map"], marker(ont_id, "status"), "ON", what="first paint marker")
    marks = {name: watch(d) for name, d in pages.items()}

    for n, (status, rto, severity) in enumerate(STEPS, start=1):
        push = live.push(ont_id, status, rto)
        assert (push.body["status"], push.body["severity"]) == (status, severity), push.body
        t = truth(live, ont_id)
        assert len(t.notification_ids) == n, f"step {n}: one notification per step"
        check_map(pages["map"], t, ont_id, alerts=n)
        check_dashboard(pages["dashboard"], t, ont_id)
        check_notifications(pages["notifications"], t)
        for name, d in pages.items():
            check_header(d, t, name)
            assert same_load(d, marks[name]), f"step {n}: {name} was reloaded"

    final = truth(live, ont_id)
    assert final.ont["severity"] == "critical" and final.stats["by_severity"]["critical"] == 1
    for name, d in pages.items():
        d.refresh()
        assert not same_load(d, marks[name])
    check_notifications(pages["notifications"], final)
    check_dashboard(pages["dashboard"], final, ont_id)
    wait_for(pages["map"], marker(ont_id, "severity"), "critical", what="marker after reload")
    for name, d in pages.items():
        check_header(d, final, name)
    ont_page = pages["notifications"]
    ont_page.get(live.url(f"/onts/{ont_id}"))
    history = [str(h["id"]) for h in final.ont["history"]]
    assert len(history) >= len(STEPS) + 1, history  # the import and the five steps
    shown = attrs(ont_page, "#history [data-id]", "data-id")
    assert set(history) <= set(shown), (history, shown)


def test_simulate_command_reaches_open_pages(live: LiveService, browsers: Browsers) -> None:
    """`ontwatch simulate ID` itself (through the running service), watched by open pages."""
    ont_id = "9"
    before = truth(live, ont_id)
    dash = browsers.open(live.url("/"))
    notes = browsers.open(live.url("/notifications"))
    for d in (dash, notes):
        wait_for(d, lambda d: d.execute_script(
            "return document.getElementById('live-status').dataset.state"), "connected",
            what="live-status")  # fmt: skip
    marks = {id(d): watch(d) for d in (dash, notes)}
    out = live.cli("simulate", ont_id, "--delay", "0.2")
    assert "through its API" in out and out.count("step ") == 5, out
    after = truth(live, ont_id)
    assert len(after.notification_ids) == len(before.notification_ids) + 5
    assert after.ont["severity"] == "critical"
    check_dashboard(dash, after, ont_id)
    check_notifications(notes, after)
    for d in (dash, notes):
        check_header(d, after, "page")
        assert same_load(d, marks[id(d)])
        assert len(toasts(d)) == 5, toasts(d)


def test_clustered_map_follows_changes(live: LiveService, browsers: Browsers) -> None:
    """/map as users get it (clusters): the cluster holding a changed ONT takes its colour."""
    ont_id = "7"  # Prenggan (3, 7, 11): not with the ONTs the other tests turned OFF (Baciro)
    assert live.get(f"/api/onts/{ont_id}")["status"] == "ON"
    d = browsers.open(live.url("/map"))
    wait_for(d, lambda d: d.execute_script("return document.getElementById('map').dataset.ready"),
             "1", what="#map[data-ready]")  # fmt: skip
    offline_icons = "#map .ont-cluster.cat-offline, #map .ont-marker.cat-offline"
    mark = watch(d)
    before = len(d.find_elements("css selector", offline_icons))
    assert d.find_elements("css selector", "#map .ont-cluster"), "clustered by default"
    live.push(ont_id, "OFF", 3)
    wait_for(d, lambda d: len(d.find_elements("css selector", offline_icons)), before + 1,
             what="one more offline cluster or marker")  # fmt: skip
    live.push(ont_id, "ON", 0)
    wait_for(d, lambda d: len(d.find_elements("css selector", offline_icons)), before,
             what="back to its earlier colour")  # fmt: skip
    assert same_load(d, mark)
