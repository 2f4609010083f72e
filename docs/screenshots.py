"""Regenerate the README's screenshots: dashboard and map, desktop and phone, in Chromium.

    .venv/bin/python docs/screenshots.py          # or: make screenshots
    .venv/bin/python docs/screenshots.py --out /tmp/shots

Runs the real service (`ontwatch run --demo`: 320 demo ONTs around Yogyakarta) on a free
loopback port with map tiles from the local test tile server (generated city-like tiles, so
the pictures never depend on, or contact, OpenStreetMap), turns one area and a few scattered
ONTs OFF, and photographs the pages in headless Chromium. Writes dashboard.png, map.png,
dashboard-phone.png and map-phone.png. Nothing but 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selenium.webdriver.chrome.webdriver import WebDriver  # noqa: E402

from ontwatch.demo import AREAS, demo_inventory  # noqa: E402
from tests.browser.chrome import chromium_missing, console_errors, new_driver  # noqa: E402
from tests.browser.live import LiveService, start_service  # noqa: E402
from tests.fakes.tile_server import ThreadedTileServer  # noqa: E402

DESKTOP = (1366, 900)
PHONE = (390, 844)  # a common phone, inside the 360-430 px the pages are made for
DARK_AREA = "Prenggan"  # a whole kelurahan dark: one mass outage
# (id, status, rto): two more ONTs down, four answering with timeouts (warnings)
SCATTERED = [("1", "OFF", 3), ("22", "OFF", 0), ("6", "ON", 1), ("13", "ON", 2), ("47", "ON", 1),
             ("60", "ON", 2)]  # fmt: skip


def darken(live: LiveService) -> None:
    """One area OFF in one bulk push (a mass outage), then a few single ONTs."""
    onts = demo_inventory()
    area = [o.id for o in onts if o.area == DARK_AREA]
    assert area and DARK_AREA in {a[0] for a in AREAS}
    live.bulk([{"id": i, "status": "OFF", "rto_count": 4} for i in area])
    for ont_id, status, rto in SCATTERED:
        live.push(ont_id, status, rto)
    time.sleep(1.0)


def settled(d: WebDriver, map_page: bool) -> None:
    """Live, and (on the map) every marker placed and every visible tile loaded."""
    deadline = time.monotonic() + 20
    script = "return document.getElementById('live-status').dataset.state === 'connected'" + (
        " && document.getElementById('map').dataset.ready === '1'"
        " && [...document.querySelectorAll('img.leaflet-tile')].every(i => i.complete)"
        " && document.querySelectorAll('img.leaflet-tile').length > 0"
        if map_page
        else ""
    )
    while not d.execute_script(script):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{d.current_url} did not settle")
        time.sleep(0.1)
    time.sleep(0.8)  # cluster animations and fonts


def shoot(d: WebDriver, url: str, size: tuple[int, int], scale: float, out: Path) -> None:
    width, height = size
    d.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": width < 600},
    )
    d.get(url)
    settled(d, "/map" in url)
    shot = d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    out.write_bytes(base64.b64decode(shot["data"]))
    errors = console_errors(d)
    if errors:
        raise RuntimeError(f"{url}: console errors {[e.message for e in errors]}")
    print(f"{out} ({width}x{height} CSS px, x{scale}, {out.stat().st_size // 1024} KB)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for the PNG files")
    args = ap.parse_args()
    why = chromium_missing()
    if why:
        print(f"screenshots: {why}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shots-") as tmp, ThreadedTileServer() as tiles:
        live = start_service(Path(tmp), tiles.url_template, "--demo")
        d = new_driver(*DESKTOP)
        try:
            darken(live)
            shoot(d, live.url("/"), DESKTOP, 1, args.out / "dashboard.png")
            shoot(d, live.url("/map"), DESKTOP, 1, args.out / "map.png")
            shoot(d, live.url("/"), PHONE, 2, args.out / "dashboard-phone.png")
            shoot(d, live.url("/map"), PHONE, 2, args.out / "map-phone.png")
        finally:
            d.quit()
            live.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
