"""Fixtures for map tests: a loopback tile server, a renderer on a temp cache, tiny inventories."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from maps.render import MapRenderer
from monitor.model import Incident, Ont, OntState, Reason, ReasonCode, Severity, Status
from tests.fakes.tile_server import TileServer

NOW = datetime(2026, 11, 27, 7, 5, tzinfo=UTC)  # 14:05 WIB
TZ = ZoneInfo("Asia/Jakarta")
UA = "ontwatch/0.1.0 (+https://github.com/ontwatch/ontwatch)"


def state(ont_id: str, status: Status, severity: Severity = Severity.OK) -> OntState:
    """An OntState with an incident of the given severity (none for ok)."""
    inc = None if severity is Severity.OK else Incident(severity, NOW, Reason(ReasonCode.WENT_OFF))
    return OntState(ont_id, status, incident=inc)


@pytest.fixture
async def tile_server() -> AsyncIterator[TileServer]:
    async with TileServer() as server:
        yield server


RendererFactory = Callable[..., MapRenderer]


@pytest.fixture
async def make_renderer(tmp_path: Path) -> AsyncIterator[RendererFactory]:
    """Build renderers on one cache dir; all are closed at the end."""
    made: list[MapRenderer] = []

    def make(tile_url: str, **kw: object) -> MapRenderer:
        kw.setdefault("user_agent", UA)
        r = MapRenderer(tile_url, tmp_path / "tiles", **kw)  # type: ignore[arg-type]
        made.append(r)
        return r

    yield make
    for r in made:
        await r.close()


@pytest.fixture
def trio() -> list[tuple[Ont, OntState]]:
    """Three ONTs well apart: OFF (west), ON (east), warning (north)."""
    return [
        (Ont("off1", "Off one", lat=-7.80, lon=110.36, area="Baciro"), state("off1", Status.OFF)),
        (Ont("on1", "On one", lat=-7.80, lon=110.38, area="Baciro"), state("on1", Status.ON)),
        (
            Ont("warn1", "Warn one", lat=-7.79, lon=110.37, area="Terban"),
            state("warn1", Status.ON, Severity.WARNING),
        ),
    ]
