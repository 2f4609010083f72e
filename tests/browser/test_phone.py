"""Phones, 360 and 430 CSS px wide: no sideways scrolling, touch targets of 44 px, a full-height map."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from tests.browser.conftest import Browsers, StartService
from tests.browser.dom import wait_for
from tests.browser.live import LiveService, inventory

pytestmark = pytest.mark.e2e

TOUCH = 44  # CSS px, both ways
HEIGHT = 780
# A spreadsheet cell with no place to break a line: it must wrap or scroll inside its box.
LONG = "Perumahan_Griya_Taman_Asri_Blok_C_No_17_Kelurahan_Rejowinangun_Kotagede"

MEASURE = """
const out = {scrollWidth: document.documentElement.scrollWidth,
             scrollHeight: document.documentElement.scrollHeight,
             innerWidth: window.innerWidth, innerHeight: window.innerHeight, small: []};
// Every visible thing a finger can aim at. Markers and clusters on the map are exempt: their
// position is the information (WCAG 2.5.8 "essential"), and a cluster is tapped to zoom.
const sel = 'a[href], button, select, input:not([type=hidden]), summary, [role=button], [tabindex]';
for (const e of document.querySelectorAll(sel)) {
  if (e.closest('.leaflet-marker-pane')) continue;
  const r = e.getBoundingClientRect();
  const cs = getComputedStyle(e);
  if (r.width === 0 || r.height === 0 || cs.visibility === 'hidden') continue;
  if (r.width < arguments[0] - 0.5 || r.height < arguments[0] - 0.5)
    out.small.push(`${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}`
      + `${e.className && typeof e.className === 'string' ? '.' + e.className.split(' ')[0] : ''}`
      + ` "${e.textContent.trim().slice(0, 24)}" ${Math.round(r.width)}x${Math.round(r.height)}`);
}
const box = (id) => { const n = document.getElementById(id);
  if (!n) return null; const r = n.getBoundingClientRect(); return [r.top, r.bottom]; };
out.map = box('map'); out.legend = box('legend');
return out;
"""


@pytest.fixture(scope="module")
def live(start: StartService) -> Iterator[LiveService]:
    svc = start()
    rows = inventory(40)
    rows[6]["name"] = LONG
    rows[6]["lokasi"] = LONG + "_" + LONG
    svc.import_onts(rows)
    for ont_id, rto in (("7", 3), ("2", 1), ("3", 0), ("11", 2)):
        svc.push(ont_id, "OFF", rto)
    svc.push("3", "ON", 0)
    yield svc


def measure(d: WebDriver) -> dict[str, Any]:
    return d.execute_script(MEASURE, TOUCH)


def problems(d: WebDriver, path: str, width: int) -> list[str]:
    m = measure(d)
    found = [f"{path}: touch target {s}" for s in m["small"]]
    if m["innerWidth"] != width:
        found.append(f"{path}: viewport is {m['innerWidth']} px, not {width} (meta viewport?)")
    if m["scrollWidth"] > m["innerWidth"]:
        found.append(f"{path}: scrolls sideways ({m['scrollWidth']} > {m['innerWidth']} px)")
    return found


def loaded(d: WebDriver, url: str) -> None:
    d.get(url)
    wait_for(d, lambda d: d.execute_script(
        "return document.getElementById('live-status').dataset.state"), "connected",
        what="live-status")  # fmt: skip


@pytest.mark.parametrize("width", [360, 430])
def test_pages_fit_the_phone(live: LiveService, browsers: Browsers, width: int) -> None:
    d = browsers.open("", width, HEIGHT)
    found: list[str] = []
    for path in ("/", "/notifications", "/onts/7", "/map"):
        loaded(d, live.url(path))
        found += problems(d, path, width)
        d.find_element("id", "notif-toggle").click()
        wait_for(d, lambda d: d.find_element("id", "notif-dropdown").is_displayed(), True,
                 what="dropdown open")  # fmt: skip
        found += [f"{p} (dropdown open)" for p in problems(d, path, width)]
        d.find_element("id", "notif-toggle").click()
    assert not found, "\n".join(found)


@pytest.mark.parametrize("width", [360, 430])
def test_map_is_full_height(live: LiveService, browsers: Browsers, width: int) -> None:
    d = browsers.open("", width, HEIGHT)
    loaded(d, live.url("/map"))
    wait_for(d, lambda d: d.execute_script("return document.getElementById('map').dataset.ready"),
             "1", what="#map[data-ready]")  # fmt: skip
    m = measure(d)
    top, bottom = m["map"]
    below = m["legend"][1] if m["legend"] and m["legend"][0] >= bottom - 1 else bottom
    assert abs(below - HEIGHT) <= 1, f"map (and legend) end at {below}, viewport {HEIGHT}: {m}"
    assert bottom - top >= HEIGHT * 0.6, f"map is {bottom - top} px of {HEIGHT}: {m}"
    assert m["scrollHeight"] <= HEIGHT, f"map page scrolls: {m['scrollHeight']} > {HEIGHT}"
