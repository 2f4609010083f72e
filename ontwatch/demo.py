"""The demo: a few hundred ONTs around Yogyakarta with loopback IPs, in a database of its own.

`ontwatch run --demo` never touches the configured database (ONTWATCH_DB): it runs on
`demo/ontwatch.db` in the same folder, deleted and created afresh at every start, so the
README's steps print the same alerts every time.
"""

from __future__ import annotations

import random
from pathlib import Path

from monitor.model import Ont

# (kelurahan, lat, lon) of real neighbourhoods; the ONTs are invented.
AREAS = [
    ("Baciro", -7.7950, 110.3820),
    ("Demangan", -7.7830, 110.3900),
    ("Prenggan", -7.8270, 110.3980),
    ("Rejowinangun", -7.8160, 110.3930),
    ("Purbayan", -7.8290, 110.4010),
    ("Bausasran", -7.7960, 110.3740),
    ("Kadipaten", -7.8070, 110.3580),
    ("Wirobrajan", -7.8010, 110.3480),
]
PLACES = ["Pos Ronda", "Balai RW", "Masjid", "Rumah", "Warung", "Kantor Kelurahan", "Sekolah"]


def demo_inventory(count: int = 320, seed: int = 7) -> list[Ont]:
    """A reproducible inventory of `count` ONTs in 8 areas, IPs in 127.10.0.0/16."""
    rng = random.Random(seed)
    onts = []
    for i in range(1, count + 1):
        area, lat, lon = AREAS[(i - 1) % len(AREAS)]
        rt, rw = rng.randint(1, 20), rng.randint(1, 12)
        onts.append(
            Ont(
                id=str(i),
                name=f"{area} RT {rt:02d} RW {rw:02d}",
                customer_id=f"DM{i:06d}",
                location=f"{rng.choice(PLACES)} RT {rt:02d} Kelurahan {area}",
                lat=round(lat + rng.gauss(0, 0.0035), 6),
                lon=round(lon + rng.gauss(0, 0.0035), 6),
                ip=f"127.10.{i // 250}.{i % 250 + 1}",
                area=area,
            )
        )
    return onts


def demo_database(configured: Path) -> Path:
    """The demo's own database beside the configured one: `<folder>/demo/ontwatch.db`."""
    return configured.parent / "demo" / "ontwatch.db"


def fresh_demo_database(configured: Path) -> Path:
    """The demo database with its last run deleted (its tile cache stays); its path."""
    path = demo_database(configured)
    if path.resolve() == configured.resolve():
        raise ValueError(f"ONTWATCH_DB {configured} is the demo's own database; choose another")
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    return path
