"""Map rendering benchmark: MapRenderer vs plain staticmap on 10,000 ONTs, local tiles only.

    .venv/bin/python bench/map_bench.py                 # figures
    .venv/bin/python bench/map_bench.py --onts 10000 --runs 7
    .venv/bin/python bench/map_bench.py --sample docs/map-sample.png   # regenerate the sample

Tiles come from tests/fakes/tile_server.py on 127.0.0.1 (generated PNGs); nothing else is
contacted. Both contenders draw the same markers from the same tile server at 800x600 and
encode a PNG at the same compression level. Target: <= 300 ms median for 10,000 ONTs with a
warm tile cache, and faster than staticmap with its own auto-zoom.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maps.render import MapRenderer, encode_png
from maps.style import COLOURS, category_of
from maps.tile_fetch import default_user_agent
from maps.view import MapView
from monitor.model import Incident, Ont, OntState, Reason, ReasonCode, Severity, Status
from tests.fakes.tile_server import ThreadedTileServer

CENTRE = (-7.80, 110.37)  # Yogyakarta
AREAS = (  # kelurahan around the city centre: (name, lat offset, lon offset)
    ("Baciro", 0.0, 0.025),
    ("Demangan", 0.018, 0.022),
    ("Terban", 0.022, 0.0),
    ("Kotabaru", 0.006, 0.008),
    ("Klitren", 0.012, 0.035),
    ("Sosromenduran", -0.008, -0.008),
    ("Suryatmajan", -0.004, 0.004),
    ("Wirobrajan", -0.01, -0.03),
)
OUTAGE_AREA = "Klitren"
TZ = ZoneInfo("Asia/Jakarta")
TIME_CAP_S = 120.0  # the whole bench stops adding runs past this


def demo_inventory(n: int, seed: int = 7) -> list[tuple[Ont, OntState]]:
    """n ONTs in 8 kelurahan of Yogyakarta; Klitren is in a mass outage (all OFF, critical)."""
    rnd = random.Random(seed)
    since = datetime(2026, 1, 1, tzinfo=UTC)
    items = []
    for i in range(n):
        area, dlat, dlon = AREAS[i % len(AREAS)]
        ont_id = str(1000 + i)
        lat = CENTRE[0] + dlat + rnd.gauss(0, 0.004)
        lon = CENTRE[1] + dlon + rnd.gauss(0, 0.004)
        no_coords = rnd.random() < 0.01
        ont = Ont(
            ont_id,
            name=f"{area} RT {rnd.randint(1, 30)} no {rnd.randint(1, 99)}",
            lat=None if no_coords else round(lat, 6),
            lon=None if no_coords else round(lon, 6),
            ip=f"127.0.{(i >> 8) & 255}.{i & 255}",
            area=area,
        )
        roll = rnd.random()
        if area == OUTAGE_AREA:
            why = Reason.of(ReasonCode.MASS_OUTAGE_MEMBER, area=area)
            inc = Incident(Severity.CRITICAL, since, why, mass_outage=area)
            state = OntState(ont_id, Status.OFF, rto_count=3, incident=inc)
        elif roll < 0.03:
            why = Reason.of(ReasonCode.OFF_LONGER_THAN, seconds=3600)
            inc = Incident(Severity.CRITICAL, since, why)
            state = OntState(ont_id, Status.OFF, rto_count=5, incident=inc)
        elif roll < 0.08:
            inc = Incident(Severity.WARNING, since, Reason.of(ReasonCode.RTO_ABOVE_ZERO, rto=1))
            state = OntState(ont_id, Status.ON, rto_count=1, incident=inc)
        elif roll < 0.10:
            state = OntState(ont_id, Status.UNKNOWN)
        else:
            state = OntState(ont_id, Status.ON)
        items.append((ont, state))
    return items


def _bench_ours(tile_url: str, items: list, runs: int, deadline: float) -> tuple[list[float], int]:
    """Median-able timings of MapRenderer.render with a warm cache; also tiles fetched warm."""

    async def go() -> tuple[list[float], int]:
        with tempfile.TemporaryDirectory() as cache_dir:
            renderer = MapRenderer(tile_url, Path(cache_dir), user_agent=default_user_agent())
            now = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
            await renderer.render(MapView("all"), items, now=now, tz=TZ)  # warms the tile cache
            before = renderer.fetcher.requests_made
            times = []
            for i in range(runs):
                if time.monotonic() > deadline:
                    break
                # A new minute makes a new title, so the short-lived result cache cannot
                # answer: every run plans, reads tiles from disk, draws and encodes.
                at = now + timedelta(minutes=i + 1)
                t0 = time.perf_counter()
                await renderer.render(MapView("all"), items, now=at, tz=TZ)
                times.append(time.perf_counter() - t0)
            fetched = renderer.fetcher.requests_made - before
            await renderer.close()
            return times, fetched

    return asyncio.run(go())


def _bench_staticmap(tile_url: str, items: list, runs: int, deadline: float) -> list[float]:
    """Plain staticmap: CircleMarkers, its own auto-zoom, its own tile fetching (local)."""
    from staticmap import CircleMarker, StaticMap

    times = []
    for _ in range(runs):
        if time.monotonic() > deadline:
            break
        t0 = time.perf_counter()
        m = StaticMap(800, 600, url_template=tile_url, headers={"User-Agent": "bench"})
        m.tile_request_timeout = 5  # bounded, even though staticmap's default has none
        # Offline last so it is drawn on top, as in ours.
        for ont, state in sorted(items, key=lambda it: category_of(it[1])):
            if ont.lat is not None and ont.lon is not None:
                m.add_marker(CircleMarker((ont.lon, ont.lat), COLOURS[category_of(state)], 8))
        image = m.render()
        encode_png(image)
        times.append(time.perf_counter() - t0)
    return times


def _auto_zoom_time(items: list) -> float:
    """staticmap's own zoom search alone, for reference."""
    from staticmap import CircleMarker, StaticMap

    m = StaticMap(800, 600)
    for ont, _ in items:
        if ont.lat is not None and ont.lon is not None:
            m.add_marker(CircleMarker((ont.lon, ont.lat), "red", 8))
    t0 = time.perf_counter()
    m._calculate_zoom()
    return time.perf_counter() - t0


SAMPLE_OUTAGE_AREA = "Demangan"


async def _demo_items(db_path: Path) -> list[tuple[Ont, OntState]]:
    """The real demo inventory through the real engine, with one area gone dark.

    `ontwatch run --demo`'s ONTs; every ONT of SAMPLE_OUTAGE_AREA pushed OFF (a mass outage, as
    the engine decides it), three others with a lost probe or two.
    """
    from monitor.engine import Engine
    from monitor.model import Observation, Source
    from ontwatch.demo import demo_inventory as real_demo
    from storage.database import Database
    from storage.store import SqliteStore

    now = datetime(2026, 11, 27, 7, 5, tzinfo=UTC)
    db = await Database(db_path).open()
    engine = Engine(SqliteStore(db), clock=lambda: now)
    await engine.start()
    onts = real_demo()
    await engine.upsert(
        onts, [Observation.push(o.id, Status.ON, 0, now, source=Source.IMPORT) for o in onts]
    )
    dark = [o.id for o in onts if o.area == SAMPLE_OUTAGE_AREA]
    await engine.ingest_many([Observation.push(i, Status.OFF, 1, now) for i in dark])
    await engine.ingest_many([Observation.push(i, Status.ON, 1, now) for i in ("3", "12", "50")])
    items = engine.items()
    await engine.stop()
    await db.close()
    return items


def write_sample(path: Path, n: int) -> None:
    """Render the demo inventory's /map image (one area in a mass outage) from local tiles."""
    del n  # the demo inventory has its own size

    async def go(tile_url: str) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            items = await _demo_items(Path(tmp) / "demo.db")
            renderer = MapRenderer(tile_url, Path(tmp) / "tiles", user_agent=default_user_agent())
            now = datetime(2026, 11, 27, 7, 5, tzinfo=UTC)
            png = await renderer.render(MapView("all"), items, now=now, tz=TZ)
            await renderer.close()
            return png

    with ThreadedTileServer() as server:
        png = asyncio.run(go(server.url_template))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    print(f"wrote {path} ({len(png):,} bytes, the demo inventory, {SAMPLE_OUTAGE_AREA} dark)")


def main() -> None:
    """Run the benchmark (or write the sample image) and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--onts", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--sample", type=Path, help="write the demo /map image here and exit")
    ap.add_argument("--sample-onts", type=int, default=320)
    args = ap.parse_args()
    if args.sample:
        write_sample(args.sample, args.sample_onts)
        return
    runs = max(1, min(args.runs, 50))
    items = demo_inventory(max(1, min(args.onts, 100_000)))
    deadline = time.monotonic() + TIME_CAP_S
    with ThreadedTileServer() as server:
        ours, fetched_warm = _bench_ours(server.url_template, items, runs, deadline)
        before = server.count
        theirs = _bench_staticmap(server.url_template, items, runs, deadline)
        theirs_tiles = (server.count - before) / max(1, len(theirs))
    zoom_s = _auto_zoom_time(items)
    ms = 1000.0
    print(f"map bench: {len(items):,} ONTs, 800x600 PNG, local tiles on 127.0.0.1")
    print(
        f"  ontwatch MapRenderer (warm cache): median {statistics.median(ours) * ms:.0f} ms, "
        f"min {min(ours) * ms:.0f} ms, max {max(ours) * ms:.0f} ms over {len(ours)} runs; "
        f"tiles fetched while warm: {fetched_warm}"
    )
    print(
        f"  plain staticmap (auto-zoom, {theirs_tiles:.0f} tile GETs/render): median "
        f"{statistics.median(theirs) * ms:.0f} ms, min {min(theirs) * ms:.0f} ms, "
        f"max {max(theirs) * ms:.0f} ms over {len(theirs)} runs"
    )
    print(f"  staticmap auto-zoom search alone: {zoom_s * ms:.0f} ms")
    target = statistics.median(ours) <= 0.300 and statistics.median(ours) < statistics.median(
        theirs
    )
    print(f"  target (<= 300 ms and faster than staticmap): {'met' if target else 'NOT met'}")


if __name__ == "__main__":
    main()
