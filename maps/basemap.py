"""The base layer: staticmap fed from tiles we already hold, over a gridded plain background."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from io import BytesIO

from PIL import Image, UnidentifiedImageError
from staticmap import StaticMap

from maps.mercator import TILE_SIZE, Frame
from maps.overlay import draw_grid
from maps.style import FALLBACK_BG
from maps.tile_cache import TileKey

log = logging.getLogger(__name__)


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


class CachedTileMap(StaticMap):  # type: ignore[misc]  # staticmap ships no type hints
    """A StaticMap that draws only the tiles handed to it and never opens a connection.

    staticmap 0.5.7 would fetch with blocking requests, User-Agent "StaticMap", no timeout,
    a new thread pool per render and RuntimeError on failure; here fetching is done before
    (maps.tile_fetch) and a missing tile just leaves the gridded background showing.
    """

    def __init__(self, frame: Frame, tiles: Mapping[TileKey, bytes], s: float) -> None:
        super().__init__(
            frame.width,
            frame.height,
            url_template="",  # never used: get() below refuses
            tile_size=TILE_SIZE,
            background_color=_hex(FALLBACK_BG),
        )
        self._frame = frame
        self._tiles = tiles
        self._s = s
        self.drawn = 0  # tiles pasted
        self.wanted = 0  # tiles the frame covers

    def get(self, url: str, **kwargs: object) -> tuple[int, bytes]:
        """Never fetch: this map only draws tiles it was given."""
        raise RuntimeError("CachedTileMap does not fetch tiles")

    def _draw_base_layer(self, image: Image.Image) -> None:
        draw_grid(image, self._frame, self._s)  # visible wherever a tile is missing
        n = 2**self.zoom
        for z, tx, ty in self._frame.tiles():
            self.wanted += 1
            data = self._tiles.get((z, tx, ty))
            if data is None:
                continue
            try:
                tile = Image.open(BytesIO(data))
                tile.load()
            except (UnidentifiedImageError, OSError, ValueError):
                log.warning("map tiles: tile %s/%s/%s is not a readable image", z, tx, ty)
                continue
            if tile.mode != "RGB":
                tile = tile.convert("RGBA")
            # Tile x was wrapped at the date line; place it at the copy nearest the centre.
            x = tx + n * round((self.x_center - tx - 0.5) / n)
            box = (self._x_to_px(x), self._y_to_px(ty))
            if tile.mode == "RGBA":
                image.paste(tile, box, tile)
            else:
                image.paste(tile, box)
            self.drawn += 1

    def _draw_features(self, image: Image.Image) -> None:
        # Markers are drawn by maps.overlay (sprites, clusters, counts); staticmap's 2x canvas
        # with a LANCZOS resize would cost tens of ms for nothing.
        return


def draw_base(frame: Frame, tiles: Mapping[TileKey, bytes], s: float) -> tuple[Image.Image, int]:
    """The base image for a frame and how many of its tiles were missing."""
    m = CachedTileMap(frame, tiles, s)
    lon, lat = frame.center_lonlat
    image = m.render(zoom=frame.zoom, center=(lon, lat))
    return image, m.wanted - m.drawn


def draw_plain(frame: Frame, s: float) -> Image.Image:
    """A base image with no tiles at all: background and coordinate grid."""
    image = Image.new("RGB", (frame.width, frame.height), FALLBACK_BG)
    draw_grid(image, frame, s)
    return image
