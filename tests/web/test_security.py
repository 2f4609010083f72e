"""Headers on every answer, the Host check (DNS rebinding), the Origin check on writes and
the Content-Type rule, on the real service; the pure parts table-driven.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.web.access_service import ADMIN_TOKEN, base, login, running, session
from web.security import CSP, HostPolicy, same_origin, split_host

EXPECTED_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def assert_headers(r: aiohttp.ClientResponse, what: str) -> None:
    assert r.headers.get("Content-Security-Policy") == EXPECTED_CSP, what
    assert r.headers.get("Referrer-Policy") == "same-origin", what
    assert r.headers.get("X-Content-Type-Options") == "nosniff", what


def test_the_policy_is_the_one_asked_for() -> None:
    assert CSP == EXPECTED_CSP
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP


HEADER_ROUTES = [
    ("GET", "/", None),
    ("GET", "/map", None),
    ("GET", "/notifications", None),
    ("GET", "/onts/1", None),
    ("GET", "/login", None),
    ("GET", "/api/onts", None),
    ("GET", "/api/stats", None),
    ("GET", "/healthz", None),
    ("GET", "/static/css/ontwatch.css", None),
    ("GET", "/static/css/login.css", None),
    ("GET", "/api/onts/nope", None),  # a JSON 404
    ("GET", "/no/such/page", None),  # a page 404
    ("POST", "/api/ont-status/1", {"status": "DOWN"}),  # a JSON 422
    ("GET", "/api/events", None),  # the stream
]


@pytest.mark.parametrize("login_required", [False, True])
async def test_security_headers_on_every_answer(tmp_path: Path, login_required: bool) -> None:
    async with running(tmp_path, login_required=login_required) as svc, session() as http:
        # Without a login too: the 401s and redirects carry them.
        for method, path, body in HEADER_ROUTES:
            async with http.request(
                method, base(svc) + path, json=body, allow_redirects=False
            ) as r:
                assert_headers(r, f"anonymous {method} {path} -> {r.status}")
        assert await login(http, svc, "admin") == 200
        for method, path, body in HEADER_ROUTES:
            async with http.request(method, base(svc) + path, json=body) as r:
                assert_headers(r, f"admin {method} {path} -> {r.status}")


HOSTS = [
    ("127.0.0.1:5000", True),
    ("localhost:5000", True),
    ("LOCALHOST", True),
    ("[::1]:5000", True),
    ("127.20.10.2:5000", True),  # an address the service is reached by: an IP is no rebinding
    ("noc.example.net", True),  # in ONTWATCH_PUBLIC_NAMES
    ("NOC.Example.Net.:443", True),
    ("evil.example", False),
    ("localhost.evil.example", False),
    ("noc.example.net.evil.example", False),
    ("", False),
    ("a b", False),
    ("user@noc.example.net", False),
    ("noc.example.net:99999", False),
    (None, True),  # HTTP/1.0: no Host at all (no browser sends that)
]


@pytest.mark.parametrize(("host", "allowed"), HOSTS)
def test_host_policy(host: str | None, allowed: bool) -> None:
    policy = HostPolicy.for_bind("127.0.0.1", ["noc.example.net"])
    assert policy.allows(host) is allowed


def test_public_names_may_carry_a_port_or_a_dot() -> None:
    policy = HostPolicy.for_bind("0.0.0.0", ["NOC.example.net:443", "ont.lan.", " "])
    assert policy.allows("noc.example.net") and policy.allows("ont.lan:5000")
    assert policy.names == {"noc.example.net", "ont.lan", "localhost"}


def test_bind_name_is_allowed() -> None:
    assert HostPolicy.for_bind("monitor.lan").allows("monitor.lan:5000")
    assert not HostPolicy.for_bind("0.0.0.0").allows("monitor.lan:5000")


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("a.b:80", ("a.b", 80)),
        ("[::1]", ("::1", None)),
        ("A.B", ("a.b", None)),
        ("a.b:x", None),
        ("a/b", None),
    ],
)
def test_split_host(value: str, parsed: Any) -> None:
    assert split_host(value) == parsed


ORIGINS = [
    ("http://127.0.0.1:5000", "127.0.0.1:5000", True),
    ("http://localhost:5000", "127.0.0.1:5000", False),  # another origin, same machine
    ("http://127.0.0.1:5001", "127.0.0.1:5000", False),
    ("https://noc.example.net", "noc.example.net", True),  # TLS proxy: Host without a port
    ("https://noc.example.net:443", "noc.example.net", True),
    ("http://noc.example.net", "noc.example.net", True),
    ("https://noc.example.net:8443", "noc.example.net", False),
    ("http://127.0.0.1:5000/some/page?x=1", "127.0.0.1:5000", True),  # a Referer
    ("null", "127.0.0.1:5000", False),
    ("file:///etc/passwd", "127.0.0.1:5000", False),
    ("http://127.0.0.1:5000", None, False),
    ("http://[::1]:5000", "[::1]:5000", True),
]


@pytest.mark.parametrize(("origin", "host", "same"), ORIGINS)
def test_same_origin(origin: str, host: str | None, same: bool) -> None:
    assert same_origin(origin, host) is same


async def test_foreign_host_is_refused_everywhere(tmp_path: Path) -> None:
    async with running(tmp_path, public_names=("noc.example.net",)) as svc, session() as http:
        for path in ("/", "/api/onts", "/healthz", "/login", "/static/css/ontwatch.css"):
            async with http.get(base(svc) + path, headers={"Host": "evil.example"}) as r:
                assert r.status == 421, path
                err = await r.json()
                assert err["error"] == "unknown host name" and err["detail"]["header"] == "Host"
                assert_headers(r, path)
        async with http.post(
            base(svc) + "/api/ont-status/1",
            json={"status": "OFF"},
            headers={"Host": f"evil.example:{svc.port}"},
        ) as r:
            assert r.status == 421
        async with http.get(base(svc) + "/api/onts/1") as r:
            assert (await r.json())["status"] == "UNKNOWN"  # the refused push changed nothing
        for host in ("noc.example.net", f"localhost:{svc.port}", f"127.0.0.1:{svc.port}"):
            async with http.get(base(svc) + "/api/stats", headers={"Host": host}) as r:
                assert r.status == 200, host


async def test_a_valid_token_may_use_any_host_name(tmp_path: Path) -> None:
    """Agents, routers and Prometheus reach the service by names nobody listed; a rebinding
    page cannot, as it knows no token (a wrong one is refused like none)."""
    async with running(tmp_path, api_token=ADMIN_TOKEN) as svc, session() as http:
        for token, status in ((ADMIN_TOKEN, 200), ("guess", 421), (None, 421)):
            headers = {"Host": "ontwatch.internal:5000"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            async with http.get(base(svc) + "/api/stats", headers=headers) as r:
                assert r.status == status, token


WRITES = [
    # (headers, body, expected status)
    ({"Content-Type": "application/json"}, b'{"status": "OFF"}', 200),
    ({"Content-Type": "application/json; charset=utf-8"}, b'{"status": "ON"}', 200),
    ({"Content-Type": "application/x-www-form-urlencoded"}, b"status=OFF&rto_count=1", 200),
    ({}, b"status=ON&rto_count=0", 200),  # /tool fetch without a Content-Type
    ({"Content-Type": "text/plain"}, b'{"status": "OFF"}', 415),
    ({"Content-Type": "text/plain;charset=UTF-8"}, b"status=OFF", 415),
    ({"Content-Type": "application/xml"}, b"<status>OFF</status>", 415),
    ({"Content-Type": "application/octet-stream"}, b'{"status": "OFF"}', 415),
]


@pytest.mark.parametrize(("headers", "body", "status"), WRITES)
async def test_write_content_types(
    tmp_path: Path, headers: dict[str, str], body: bytes, status: int
) -> None:
    async with (
        running(tmp_path) as svc,
        session(skip_auto_headers=["Content-Type"]) as http,
        http.post(base(svc) + "/api/ont-status/1", data=body, headers=headers) as r,
    ):
        assert r.status == status, await r.text()
        if status == 415:
            assert (await r.json())["detail"]["header"] == "Content-Type"


async def test_origin_check_on_writes(tmp_path: Path) -> None:
    async with running(tmp_path) as svc, session() as http:
        own = base(svc)
        cases = [
            ({"Origin": own}, 200),
            ({"Origin": "http://evil.example"}, 403),
            ({"Origin": f"http://localhost:{svc.port}"}, 403),
            ({"Referer": own + "/notifications"}, 200),
            ({"Referer": "http://evil.example/x"}, 403),
            ({"Origin": "null"}, 403),
            ({}, 200),  # scripts send neither
        ]
        for headers, status in cases:
            async with http.post(
                own + "/api/notifications/mark-read", headers=headers
            ) as r:  # a body-less write: only the Origin rule applies
                assert r.status == status, headers
                if status == 403:
                    assert (await r.json())["detail"]["header"] in {"Origin", "Referer"}
        # Reads are not writes: a foreign Origin on a GET is not refused (CORS keeps the
        # answer from the foreign page anyway).
        async with http.get(own + "/api/stats", headers={"Origin": "http://evil.example"}) as r:
            assert r.status == 200


async def test_login_and_logout_forms_are_origin_checked(tmp_path: Path) -> None:
    async with running(tmp_path, login_required=True) as svc, session() as http:
        form = {"username": "viewer", "password": "s3cret-passw0rd"}
        async with http.post(
            base(svc) + "/login", data=form, headers={"Origin": "http://evil.example"}
        ) as r:
            assert r.status == 403
        async with http.post(
            base(svc) + "/login", data=form, headers={"Origin": base(svc)}, allow_redirects=False
        ) as r:
            assert r.status == 303


async def test_mikrotik_form_push_with_the_token_when_login_is_required(tmp_path: Path) -> None:
    """/tool fetch http-method=post http-header-field="Authorization: Bearer ..." http-data=..."""
    async with (
        running(tmp_path, login_required=True, api_token=ADMIN_TOKEN) as svc,
        aiohttp.ClientSession(skip_auto_headers=["Content-Type"]) as http,
    ):
        for ctype in ("application/x-www-form-urlencoded", None):
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            if ctype:
                headers["Content-Type"] = ctype
            async with http.post(
                base(svc) + "/api/ont-status/2", data=b"status=OFF&rto_count=1", headers=headers
            ) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["status"] == "OFF"
        async with http.post(
            base(svc) + "/api/ont-status/2",
            data=b"status=ON&rto_count=0",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ) as r:
            assert r.status == 401  # and without the token: refused
