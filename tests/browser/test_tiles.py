"""Map tiles come through the service: real tiles from the (local) tile server, and grey grid
tiles, not a broken page, when the tile server is dead."""

from __future__ import annotations

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from maps.style import FALLBACK_BG
from tests.browser.conftest import Browsers, StartService
from tests.browser.dom import wait_for
from tests.browser.live import inventory
from tests.fakes.tile_server import closed_port

pytestmark = pytest.mark.e2e

TILES = """
const tiles = [...document.querySelectorAll('#map img.leaflet-tile')];
if (!tiles.length || !tiles.every(t => t.complete)) return null;
return tiles.map(t => {
  const c = document.createElement('canvas');
  c.width = c.height = 1;
  const g = c.getContext('2d');
  g.drawImage(t, 3, 3, 1, 1, 0, 0, 1, 1);  // a pixel off the grid lines
  return {src: new URL(t.src).pathname, width: t.naturalWidth, rgb: [...g.getImageData(0, 0, 1, 1).data].slice(0, 3)};
});
"""


def loaded_tiles(d: WebDriver) -> list[dict[str, object]]:
    """Every tile image of the map once all have loaded (bounded wait)."""
    wait_for(d, lambda d: d.execute_script(TILES) is not None, True, limit=20,
             what="every tile loaded")  # fmt: skip
    return list(d.execute_script(TILES))


def test_tiles_through_the_service(start: StartService, browsers: Browsers) -> None:
    live = start()
    live.import_onts(inventory(8))
    d = browsers.open(live.url("/map"))
    tiles = loaded_tiles(d)
    assert all(str(t["src"]).startswith("/tiles/") and t["width"] == 256 for t in tiles), tiles
    assert all(tuple(t["rgb"]) != FALLBACK_BG for t in tiles), "real tiles, not the fallback"


def test_dead_tile_server_gives_grey_tiles_and_a_working_map(
    start: StartService, browsers: Browsers
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/{{z}}/{{x}}/{{y}}.png"
    live = start(ONTWATCH_TILE_URL=dead)
    live.import_onts(inventory(8))
    d = browsers.open(live.url("/map?cluster=0"))
    tiles = loaded_tiles(d)
    assert tiles and all(t["width"] == 256 for t in tiles), tiles
    assert all(tuple(t["rgb"]) == FALLBACK_BG for t in tiles), tiles[:3]
    assert len(d.find_elements("css selector", ".ont-marker")) == 8
    live.push("1", "OFF", 3)
    wait_for(d, lambda d: d.execute_script(
        "return document.querySelector('.ont-marker[data-ont-id=\"1\"]').dataset.severity"),
        "critical", what="still live")  # fmt: skip
