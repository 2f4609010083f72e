"""The pages on aiohttp's test server, wired to a real engine on a temporary SQLite file."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from monitor.engine import Engine, StoreUnavailable
from monitor.model import Observation, Ont, Status
from monitor.view import EngineView
from storage.queries import Queries
from tests.api.conftest import make_deps
from tests.conftest import ManualClock, sample_onts
from web import texts
from web.app import WebDeps, setup

HOSTILE = "<img src=x onerror=alert(1)>"
TZ = ZoneInfo("Asia/Jakarta")
PAGES = ["/", "/map", "/notifications", "/onts/1", "/onts/evil"]


@dataclass
class Who:
    """The principal a test's requests carry: by default the open loopback demo's, an admin
    named "local" (as web/auth.py gives it); None is an anonymous caller."""

    principal: Any = field(default_factory=lambda: Principal("local", "admin"))


@dataclass(frozen=True)
class Principal:
    """What the auth middleware puts in request["principal"]."""

    name: str
    role: str


def build_app(engine: Engine, reads: Queries, clock: ManualClock, who: Who) -> web.Application:
    @web.middleware
    async def principal(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if who.principal is not None:
            request["principal"] = who.principal
        return await handler(request)

    app = create_app(make_deps(engine, reads, clock, None))
    app.middlewares.append(principal)
    setup(app, WebDeps(view=EngineView(engine), reads=reads, clock=clock, tz=TZ, lang="id"))
    return app


async def seed(engine: Engine, clock: ManualClock) -> None:
    """Three ONTs in Baciro, one with a hostile name and area; two go OFF, one recovers."""
    evil = Ont(id="evil", name=HOSTILE, area=HOSTILE, ip="127.0.9.9", lat=-7.8, lon=110.4)
    await engine.upsert([*sample_onts(3), evil])
    await engine.ingest(Observation.push("1", Status.OFF, 3, clock()))
    clock.advance(minutes=5)
    await engine.ingest(Observation.push("evil", Status.OFF, 1, clock()))
    await engine.ingest(Observation.push("2", Status.OFF, 0, clock()))
    clock.advance(minutes=2)
    await engine.ingest(Observation.push("2", Status.ON, 0, clock()))


@pytest.fixture
def who() -> Who:
    return Who()


@pytest.fixture
async def client(
    engine: Engine, reads: Queries, clock: ManualClock, who: Who
) -> AsyncIterator[TestClient]:
    await seed(engine, clock)
    async with TestClient(TestServer(build_app(engine, reads, clock, who))) as c:
        yield c


async def page(client: TestClient, path: str, lang: str | None = None) -> str:
    cookies = {"lang": lang} if lang else None
    r = await client.get(path, cookies=cookies)
    assert r.status == 200, (path, r.status, await r.text())
    assert r.content_type == "text/html"
    return await r.text()


class Tags(HTMLParser):
    """Every start tag of a page with its attributes, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    @classmethod
    def of(cls, body: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
        parser = cls()
        parser.feed(body)
        return parser.tags


def json_block(body: str, block_id: str) -> Any:
    m = re.search(rf'<script type="application/json" id="{block_id}">(.*?)</script>', body, re.S)
    assert m, block_id
    return json.loads(m.group(1))


def text_of(body: str, element_id: str) -> str:
    m = re.search(rf'id="{element_id}"[^>]*>(.*?)<', body, re.S)
    assert m, element_id
    return html.unescape(m.group(1)).strip()


# -- every page ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("lang", ["id", "en"])
async def test_every_page_renders_in_both_languages(
    client: TestClient, path: str, lang: str
) -> None:
    body = await page(client, path, lang)
    assert f'<html lang="{lang}">' in body
    for needed in ('id="lang-switch"', 'id="unread-count"', 'id="notif-toggle"', 'id="toasts"'):
        assert needed in body, needed
    assert 'id="live-status" data-state=' in body
    for href in ('href="/"', 'href="/map"', 'href="/notifications"'):
        assert href in body
    assert texts.LABELS["nav_dashboard"][lang] in body


@pytest.mark.parametrize("path", PAGES)
async def test_indonesian_pages_carry_no_english_labels(client: TestClient, path: str) -> None:
    body = await page(client, path, "id")
    body = re.sub(r"<script.*?</script>", "", body, flags=re.S)
    visible = html.unescape(re.sub(r"<[^>]*>", " ", body))  # text, not URLs or attributes
    titles = " ".join(
        html.unescape(t) for t in re.findall(r'(?:title|placeholder|aria-label)="([^"]*)"', body)
    )
    visible += " " + titles
    english = {e["en"] for e in texts.LABELS.values() if e["en"] != e["id"] and len(e["en"]) > 4}
    found = sorted(w for w in english if "{" not in w and w in visible)
    assert found == []


async def test_the_language_comes_from_the_cookie_and_defaults_to_the_setting(
    client: TestClient,
) -> None:
    assert '<html lang="id">' in await page(client, "/")
    assert '<html lang="en">' in await page(client, "/", "en")
    assert '<html lang="id">' in await page(client, "/", "xx")  # unknown: the default


@pytest.mark.parametrize("path", PAGES)
async def test_a_hostile_name_stays_text(client: TestClient, path: str) -> None:
    body = await page(client, path)
    assert HOSTILE not in body
    assert "<img" not in body
    if path in ("/", "/onts/evil", "/notifications"):
        assert html.escape(HOSTILE, quote=False) in body


@pytest.mark.parametrize("path", PAGES)
async def test_no_inline_script_or_style(client: TestClient, path: str) -> None:
    body = await page(client, path)
    for tag, attrs in Tags.of(body):
        names = {name for name, _ in attrs}
        assert "style" not in names, tag
        assert not [n for n in names if n.startswith("on")], (tag, names)
    for attrs in re.findall(r"<script([^>]*)>", body):
        assert "src=" in attrs or 'type="application/json"' in attrs, attrs
    for m in re.finditer(r"<script([^>]*)>(.*?)</script>", body, re.S):
        if "src=" in m.group(1):
            assert m.group(2) == ""


# -- dashboard -------------------------------------------------------------------------------


async def test_dashboard_shows_the_data_on_first_paint(client: TestClient) -> None:
    body = await page(client, "/")
    assert text_of(body, "stat-total") == "4"
    assert text_of(body, "stat-offline") == "2"
    assert text_of(body, "stat-online") == "1"
    assert text_of(body, "stat-unknown") == "1"
    unread = int(text_of(body, "stat-unread"))
    assert unread >= 3 and text_of(body, "unread-count") == str(unread)
    assert text_of(body, "sev-critical") == "1"  # rto 3
    assert text_of(body, "sev-warning") == "1"
    offline = re.search(r'<tbody id="offline-list">(.*?)</tbody>', body, re.S)
    assert offline
    rows = re.findall(r'<tr data-ont-id="([^"]+)"', offline.group(1))
    assert rows == ["1", "evil"]  # longest down first
    assert '<td class="rto">3</td>' in offline.group(1)
    assert "27-11-2026 08:00:00 WIB" in offline.group(1)  # 01:00 UTC in Asia/Jakarta
    assert 'data-area="Baciro"' in re.search(r'id="worst-areas".*?</ul>', body, re.S).group(0)  # type: ignore[union-attr]
    latest = re.search(r'id="latest-notifications".*?</ul>', body, re.S).group(0)  # type: ignore[union-attr]
    ids = [int(i) for i in re.findall(r'<li data-id="(\d+)"', latest)]
    assert ids and ids == sorted(ids, reverse=True)


async def test_dashboard_in_english(client: TestClient) -> None:
    body = await page(client, "/", "en")
    assert "Offline ONTs (longest first)" in body
    assert "Latest notifications" in body


async def test_dashboard_lists_mass_outages(
    engine: Engine, reads: Queries, clock: ManualClock, who: Who
) -> None:
    onts = [
        Ont(id=f"m{i}", name=f"M {i}", area="Kotabaru", lat=-7.78, lon=110.37) for i in range(8)
    ]
    await engine.upsert(onts, [Observation.push(o.id, Status.ON, 0, clock()) for o in onts])
    clock.advance(seconds=30)
    await engine.ingest_many([Observation.push(o.id, Status.OFF, 0, clock()) for o in onts])
    assert EngineView(engine).outages(), "the rules should have opened a mass outage"
    async with TestClient(TestServer(build_app(engine, reads, clock, who))) as c:
        body = await page(c, "/")
        outages = re.search(r'<ul id="outages".*?</ul>', body, re.S)
        assert outages and '<li data-area="Kotabaru" class="unacked"' in outages.group(0)
        assert "8 ONT" in outages.group(0)
        assert 'class="ack-area" data-area="Kotabaru"' in outages.group(0)
        r = await c.post("/api/areas/Kotabaru/ack")
        assert r.status == 200 and (await r.json())["acked"] is True
        body = await page(c, "/")
        outages = re.search(r'<ul id="outages".*?</ul>', body, re.S)
        assert outages and '<li data-area="Kotabaru" class="acked"' in outages.group(0)
        assert "ack-area" not in outages.group(0)


# -- map -------------------------------------------------------------------------------------


async def test_map_page_carries_every_ont_as_data(client: TestClient) -> None:
    body = await page(client, "/map")
    onts = {o["id"]: o for o in json_block(body, "ont-data")}
    assert set(onts) == {"1", "2", "3", "evil"}
    assert onts["1"]["status"] == "OFF" and onts["1"]["severity"] == "critical"
    assert onts["1"]["category"] == "offline"
    assert onts["2"]["category"] == "online"
    assert onts["3"]["category"] == "unknown"
    assert onts["evil"]["name"] == HOSTILE  # data, parsed by map.js, shown with textContent
    assert 'id="map"' in body and 'data-cluster="1"' in body
    for control in ("filter-status", "filter-area", "search", "kiosk-toggle", "shortcuts"):
        assert f'id="{control}"' in body, control
    assert '<option value="OFF">' in body
    assert '<option value="Baciro">' in body
    assert "/static/vendor/leaflet/leaflet.js" in body
    assert "/static/vendor/markercluster/leaflet.markercluster.js" in body
    assert "/static/js/map.js" in body


async def test_map_kiosk_and_cluster_switches(client: TestClient) -> None:
    body = await page(client, "/map?kiosk=1&cluster=0&status=off")
    assert re.search(r'<body class="[^"]*\bkiosk\b', body)
    assert 'data-cluster="0"' in body
    assert '<option value="OFF" selected>' in body
    plain = await page(client, "/map")
    assert not re.search(r'<body class="[^"]*\bkiosk\b', plain)


# -- notifications ---------------------------------------------------------------------------


def table_ids(body: str) -> list[int]:
    table = re.search(r'<table id="notif-table".*?</table>', body, re.S)
    assert table
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', table.group(0))]


async def test_notifications_newest_first_with_read_marks(
    client: TestClient, reads: Queries
) -> None:
    stored = await reads.notifications(limit=100)
    body = await page(client, "/notifications")
    assert table_ids(body) == [n.id for n in stored]
    first = stored[-1].id
    await reads.mark_read(first)
    body = await page(client, "/notifications")
    assert f'<tr data-id="{first}" class="read' in body
    assert f'<tr data-id="{stored[0].id}" class="unread' in body
    assert f'class="mark-read" data-id="{stored[0].id}"' in body
    assert 'id="mark-all-read"' in body and 'id="notif-filter"' in body
    assert "Asia/Jakarta" in body and "WIB" in body


async def test_notification_filters(client: TestClient, reads: Queries) -> None:
    body = await page(client, "/notifications?severity=critical")
    crit = [n.id for n in await reads.notifications(severity="critical")]
    assert crit and table_ids(body) == crit
    body = await page(client, "/notifications?ont=evil")
    evil = [n.id for n in await reads.notifications(ont_id="evil")]
    assert evil and table_ids(body) == evil
    await reads.mark_read(evil[0])
    body = await page(client, "/notifications?unread=1&ont=evil")
    assert evil[0] not in table_ids(body)
    body = await page(client, "/notifications?area=Baciro")
    assert table_ids(body) == [n.id for n in await reads.notifications(area="Baciro")]


async def test_notification_paging(
    engine: Engine, reads: Queries, clock: ManualClock, who: Who
) -> None:
    onts = sample_onts(60)
    await engine.upsert(onts, [Observation.push(o.id, Status.ON, 0, clock()) for o in onts])
    for o in onts:  # 120 notifications: OFF opens, ON resolves; one ONT at a time (no outage)
        clock.advance(minutes=3)
        await engine.ingest(Observation.push(o.id, Status.OFF, 0, clock()))
        clock.advance(minutes=1)
        await engine.ingest(Observation.push(o.id, Status.ON, 0, clock()))
    every = [n.id for n in await reads.notifications(limit=1000)]
    assert len(every) >= 55
    async with TestClient(TestServer(build_app(engine, reads, clock, who))) as c:
        body = await page(c, "/notifications")
        first = table_ids(body)
        assert first == every[:50]
        assert 'id="prev-page"' not in body
        nxt = html.unescape(re.search(r'id="next-page" href="([^"]+)"', body).group(1))  # type: ignore[union-attr]
        body = await page(c, nxt)
        assert table_ids(body) == every[50:100]
        prev = html.unescape(re.search(r'id="prev-page" href="([^"]+)"', body).group(1))  # type: ignore[union-attr]
        assert table_ids(await page(c, prev)) == first


@pytest.mark.parametrize(
    ("query", "field"),
    [("severity=loud", "severity"), ("before=abc", "before"), ("unread=maybe", "unread")],
)
async def test_bad_notification_filters_are_a_400_page_naming_the_field(
    client: TestClient, query: str, field: str
) -> None:
    r = await client.get(f"/notifications?{query}")
    assert r.status == 400 and r.content_type == "text/html"
    assert field in await r.text()


# -- one ONT ---------------------------------------------------------------------------------


async def test_ont_page_shows_state_incident_and_history(
    client: TestClient, reads: Queries
) -> None:
    body = await page(client, "/onts/1", "en")
    status = re.search(r'<section class="panel" id="ont-status"[^>]*>', body)
    assert status and 'data-status="OFF"' in status.group(0)
    assert 'data-severity="critical"' in status.group(0)
    assert 'id="ont-incident"' in body and "Not acknowledged" in body
    history = re.search(r'<tbody id="history">(.*?)</tbody>', body, re.S)
    assert history
    ids = [int(i) for i in re.findall(r'<tr data-id="(\d+)"', history.group(1))]
    assert ids == [h.id for h in await reads.history("1", 100)]
    assert "https://www.google.com/maps/dir/?api=1&amp;destination=-7.790000,110.380000" in body
    assert 'id="ont-actions"' in body  # the open loopback demo is an admin


async def test_unknown_ont_is_a_404_page_and_api_errors_stay_json(client: TestClient) -> None:
    r = await client.get("/onts/nope")
    assert r.status == 404 and r.content_type == "text/html"
    assert "nope" in await r.text()
    r = await client.get("/no/such/page", cookies={"lang": "en"})
    assert r.status == 404 and r.content_type == "text/html"
    assert "Page not found" in await r.text()
    r = await client.get("/api/onts/nope")
    assert r.status == 404 and r.content_type == "application/json"
    assert (await r.json())["error"] == "unknown ONT"


@pytest.mark.parametrize(
    ("role", "shown"), [("viewer", False), ("operator", True), ("admin", True)]
)
async def test_operator_actions_shown_by_role(
    client: TestClient, who: Who, role: str, shown: bool
) -> None:
    who.principal = Principal("budi", role)
    body = await page(client, "/onts/1")
    assert ('id="ont-actions"' in body) is shown
    assert 'id="logout-form"' in body  # a named principal logged in


async def test_operator_actions_through_the_api(
    client: TestClient, engine: Engine, who: Who
) -> None:
    view = EngineView(engine)
    r = await client.post("/api/onts/1/ack")
    assert r.status == 200 and (await r.json())["acked"] is True
    state = view.get("1")[1]  # type: ignore[index]
    assert state.incident is not None and state.incident.acked_at is not None
    r = await client.post("/api/onts/1/mute", json={"minutes": 60})
    assert r.status == 200
    assert view.mute("ont:1") is not None
    assert "Dibisukan sampai" in await page(client, "/onts/1")
    r = await client.post("/api/onts/1/unmute")
    assert r.status == 200 and (await r.json())["unmuted"] is True
    assert view.mute("ont:1") is None
    for bad in ({"minutes": 0}, {"minutes": "x"}, {}, {"minutes": True}):
        r = await client.post("/api/onts/1/mute", json=bad)
        assert r.status == 422 and (await r.json())["error"] == "invalid minutes"
    assert view.mute("ont:1") is None  # nothing half-changed
    r = await client.post("/api/onts/nope/ack")
    assert r.status == 404 and (await r.json())["error"] == "unknown ONT"
    r = await client.post("/api/areas/Nowhere/ack")
    assert r.status == 404 and (await r.json())["detail"] == {"area": "Nowhere"}
    who.principal = Principal("vera", "viewer")
    r = await client.post("/api/onts/1/mute", json={"minutes": 60})
    assert r.status == 403
    assert view.mute("ont:1") is None


# -- static files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "ctype"),
    [
        ("/static/vendor/leaflet/leaflet.js", "javascript"),
        ("/static/vendor/leaflet/leaflet.css", "text/css"),
        ("/static/vendor/markercluster/leaflet.markercluster.js", "javascript"),
        ("/static/vendor/markercluster/MarkerCluster.css", "text/css"),
        ("/static/js/map.js", "javascript"),
        ("/static/js/live.js", "javascript"),
        ("/static/css/ontwatch.css", "text/css"),
    ],
)
async def test_static_files_are_served_from_the_service(
    client: TestClient, path: str, ctype: str
) -> None:
    r = await client.get(path)
    assert r.status == 200, path
    assert ctype in r.content_type
    assert len(await r.read()) > 500
    assert "Cache-Control" in r.headers


async def test_static_js_uses_no_innerhtml(client: TestClient) -> None:
    from web.app import STATIC

    for path in (STATIC / "js").glob("*.js"):
        source = re.sub(r"^\s*//.*$", "", path.read_text(), flags=re.M)  # code, not comments
        assert "innerHTML" not in source and "insertAdjacentHTML" not in source, path.name
        assert "eval(" not in source, path.name


class FailingReads(Queries):
    """Queries whose notification reads fail the way a broken or missing database does."""

    def __init__(self, inner: Queries, error: Exception) -> None:
        super().__init__(inner.db)
        self.error = error

    async def notifications(self, **kw: Any) -> list[Any]:  # type: ignore[override]
        raise self.error


@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        (RuntimeError("boom"), 500, "Something went wrong on the server."),
        (StoreUnavailable("disk I/O error"), 503, "Storage unavailable, try again."),
    ],
)
async def test_a_failing_read_is_an_html_error_page_and_the_next_request_works(
    engine: Engine,
    reads: Queries,
    clock: ManualClock,
    who: Who,
    error: Exception,
    status: int,
    words: str,
) -> None:
    await seed(engine, clock)
    broken = FailingReads(reads, error)
    async with TestClient(TestServer(build_app(engine, broken, clock, who))) as c:
        r = await c.get("/notifications", cookies={"lang": "en"})
        assert r.status == status and r.content_type == "text/html"
        body = await r.text()
        assert words in body and "boom" not in body and "Traceback" not in body
        r = await c.get("/api/stats")  # one bad request never fails another's
        assert r.status == 200


async def test_the_map_page_is_compressed_for_browsers_that_ask(client: TestClient) -> None:
    r = await client.get("/map", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert r.status == 200 and r.headers.get("Content-Encoding") == "gzip"
    r = await client.get("/map", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in r.headers
    assert json_block(await r.text(), "ont-data")
