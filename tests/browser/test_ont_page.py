"""/onts/{id}: state, incident and history kept current while the page is open."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Browsers, StartService
from tests.browser.dom import attrs, same_load, text, wait_for, watch
from tests.browser.live import inventory

pytestmark = pytest.mark.e2e


def test_state_incident_and_history_follow_pushes(start: StartService, browsers: Browsers) -> None:
    live = start()
    live.import_onts(inventory(4))
    d = browsers.open(live.url("/onts/2"))
    wait_for(d, lambda d: d.execute_script(
        "return document.getElementById('live-status').dataset.state"), "connected",
        what="live-status")  # fmt: skip
    mark = watch(d)
    status = lambda d: d.execute_script(  # noqa: E731
        "const p = document.getElementById('ont-status'); return [p.dataset.status, p.dataset.severity]"
    )
    assert status(d) == ["ON", "ok"]
    for push_status, rto, severity in (
        ("OFF", 1, "warning"),
        ("OFF", 3, "critical"),
        ("ON", 0, "ok"),
    ):
        live.push("2", push_status, rto)
        wait_for(d, status, [push_status, severity], what=f"#ont-status after {push_status} {rto}")
        history = [str(h["id"]) for h in live.get("/api/onts/2")["history"]]
        wait_for(d, lambda d, h=history: set(h) <= set(attrs(d, "#history [data-id]", "data-id")),
                 True, what="#history has every row")  # fmt: skip
        wait_for(d, lambda d: text(d, "#ont-status .rto"), str(rto), what="rto shown")
        open_incident = live.get("/api/onts/2")["incident"] is not None
        wait_for(d, lambda d: bool(text(d, "#ont-incident .severity")), open_incident,
                 what="#ont-incident shown while open, gone when resolved")  # fmt: skip
    assert same_load(d, mark), "no reload"
