"""Who may see what, on the real service: a role x route matrix in each access mode, sessions
(idle and absolute expiry with an injected clock, disabling, logout), throttled logins,
cookie flags, the login page and its `next`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from storage.users import Users
from tests.conftest import ManualClock
from tests.web.access_service import (
    ADMIN_TOKEN,
    PASSWORD,
    READ_TOKEN,
    base,
    login,
    running,
    session,
)
from web.access import Role, required_role
from web.auth import safe_next
from web.login import LoginThrottle, escaped

# (class, method, path, JSON body): representative routes of every class.
ROUTES: list[tuple[str, str, str, Any]] = [
    ("public", "GET", "/login", None),
    ("public", "GET", "/healthz", None),
    ("public", "GET", "/static/css/ontwatch.css", None),
    ("page", "GET", "/", None),
    ("page", "GET", "/map", None),
    ("page", "GET", "/notifications", None),
    ("page", "GET", "/onts/1", None),
    ("read", "GET", "/api/onts", None),
    ("read", "GET", "/api/stats", None),
    ("read", "GET", "/api/notifications", None),
    ("read", "GET", "/api/events", None),
    ("read", "GET", "/tiles/1/1/1.png", None),
    ("read", "GET", "/api/map.png?view=all", None),
    ("read", "GET", "/metrics", None),
    ("viewer", "POST", "/api/notifications/mark-read", None),
    ("operator", "POST", "/api/onts/1/ack", None),
    ("operator", "POST", "/api/onts/1/mute", {"minutes": 60}),
    ("operator", "POST", "/api/areas/Baciro/ack", None),
    ("admin", "POST", "/api/ont-status/2", {"status": "ON", "rto_count": 0}),
    ("admin", "POST", "/api/onts", {"id": "50", "name": "Baru"}),
    ("admin", "DELETE", "/api/onts/999", None),
]
NEED = {"public": 0, "page": 1, "read": 1, "viewer": 1, "operator": 2, "admin": 3}
ROLE_NAME = {2: "operator", 3: "admin"}
# principal -> (how it authenticates, its level when it does)
PRINCIPALS = {
    "anonymous": ("none", 0),
    "wrong-token": ("token:not-the-token", 0),
    "viewer": ("login:viewer", 1),
    "operator": ("login:operator", 2),
    "admin": ("login:admin", 3),
    "read-token": (f"token:{READ_TOKEN}", 1),
    "admin-token": (f"token:{ADMIN_TOKEN}", 3),
}


async def outcome(http: aiohttp.ClientSession, url: str, method: str, body: Any) -> str:
    """'allowed', 'login' (redirect to the login page), '401', or '403 <role>'."""
    timeout = aiohttp.ClientTimeout(total=10)
    kw: dict[str, Any] = {"allow_redirects": False, "timeout": timeout}
    if body is not None:
        kw["json"] = body
    async with http.request(method, url, **kw) as r:
        if r.status in (301, 302, 303, 307) and r.headers["Location"].startswith("/login?next="):
            return "login"
        if r.status == 401:
            assert (await r.json())["error"]
            return "401"
        if r.status == 403:
            err = await r.json()
            return f"403 {err['detail']['role']}"
        return "allowed"


async def client_for(svc: Any, how: str) -> aiohttp.ClientSession:
    kind, _, value = how.partition(":")
    http = session(headers={"Authorization": f"Bearer {value}"} if kind == "token" else {})
    if kind == "login":
        assert await login(http, svc, value) == 200
    return http


async def matrix(svc: Any, expect: Any) -> list[str]:
    """Every principal x route; the lines where the outcome is not the expected one."""
    wrong = []
    for principal, (how, level) in PRINCIPALS.items():
        http = await client_for(svc, how)
        try:
            for cls, method, path, body in ROUTES:
                got = await outcome(http, base(svc) + path, method, body)
                want = expect(cls, method, principal, level)
                if got != want:
                    wrong.append(f"{principal:12} {method:6} {path:32} want {want:14} got {got}")
        finally:
            await http.close()
    return wrong


def strict(cls: str, method: str, principal: str, level: int) -> str:
    """Login required: credentials or nothing."""
    need = NEED[cls]
    if need == 0 or level >= need:
        return "allowed"
    if level == 0:
        return "login" if cls == "page" else "401"
    return f"403 {ROLE_NAME[need]}"


def open_demo(cls: str, method: str, principal: str, level: int) -> str:
    """Open loopback: no credentials is the local admin; a logged-in user keeps their role.

    No token is configured here, so every bearer token is just an unknown one."""
    anonymous = level == 0 or principal.endswith("token")
    return strict(cls, method, principal, 3 if anonymous else level)


def token_guarded(cls: str, method: str, principal: str, level: int) -> str:
    """Loopback with ONTWATCH_API_TOKEN: reads open, every write needs credentials."""
    if level == 0 and method == "GET":
        return "allowed"
    return strict(cls, method, principal, level)


async def test_matrix_with_login_required(tmp_path: Path) -> None:
    async with running(
        tmp_path, login_required=True, api_token=ADMIN_TOKEN, read_token=READ_TOKEN
    ) as svc:
        assert await matrix(svc, strict) == []


async def test_matrix_on_the_open_loopback_demo(tmp_path: Path) -> None:
    async with running(tmp_path) as svc:
        assert await matrix(svc, open_demo) == []


async def test_matrix_on_loopback_with_a_token(tmp_path: Path) -> None:
    async with running(tmp_path, api_token=ADMIN_TOKEN, read_token=READ_TOKEN) as svc:
        assert await matrix(svc, token_guarded) == []


ACCESS_TABLE = [
    ("GET", "/login", None),
    ("POST", "/login", None),
    ("POST", "/logout", None),
    ("GET", "/static/js/map.js", None),
    ("HEAD", "/static/css/ontwatch.css", None),
    ("GET", "/healthz", None),
    ("GET", "/", Role.VIEWER),
    ("GET", "/api/events", Role.VIEWER),
    ("GET", "/tiles/3/4/5.png", Role.VIEWER),
    ("GET", "/metrics", Role.VIEWER),
    ("POST", "/api/notifications/mark-read", Role.VIEWER),
    ("POST", "/api/notifications/mark-read/12", Role.VIEWER),
    ("POST", "/api/onts/A%2F1/ack", Role.OPERATOR),
    ("POST", "/api/onts/1/mute", Role.OPERATOR),
    ("POST", "/api/onts/1/unmute", Role.OPERATOR),
    ("POST", "/api/areas/Baciro/ack", Role.OPERATOR),
    ("POST", "/api/onts//ack", Role.ADMIN),  # an empty id is no ack route
    ("POST", "/api/onts/1/ack/x", Role.ADMIN),
    ("POST", "/api/notifications/mark-read/1/2", Role.ADMIN),
    ("POST", "/static/x.js", Role.ADMIN),
    ("GET", "/loginx", Role.VIEWER),
    ("POST", "/api/ont-status/1", Role.ADMIN),
    ("DELETE", "/api/onts/1", Role.ADMIN),
    ("PUT", "/api/onts/1", Role.ADMIN),
    ("OPTIONS", "/api/onts", Role.ADMIN),
]


@pytest.mark.parametrize(("method", "path", "need"), ACCESS_TABLE)
def test_access_table(method: str, path: str, need: Role | None) -> None:
    assert required_role(method, path) == need


NEXT = [
    ("/map?kiosk=1", "/map?kiosk=1"),
    ("/onts/JP%20816", "/onts/JP%20816"),
    (None, "/"),
    ("", "/"),
    ("https://evil.example/", "/"),
    ("//evil.example/x", "/"),
    ("/\\evil.example", "/"),
    ("/x\\y", "/"),
    ("/x\r\nSet-Cookie: a=b", "/"),
    ("javascript:alert(1)", "/"),
    ("/login?next=/map", "/"),
    ("/logout", "/"),
]


@pytest.mark.parametrize(("given", "want"), NEXT)
def test_next_must_be_a_local_path(given: str | None, want: str) -> None:
    assert safe_next(given) == want


async def test_pages_redirect_to_login_and_back(tmp_path: Path) -> None:
    async with running(tmp_path, login_required=True) as svc, session() as http:
        async with http.get(base(svc) + "/map?cluster=0", allow_redirects=False) as r:
            assert r.status == 302
            target = URL(r.headers["Location"])
            assert target.path == "/login" and target.query["next"] == "/map?cluster=0"
        async with http.get(base(svc) + r.headers["Location"]) as page:
            html = await page.text()
            assert page.status == 200 and 'id="login-form"' in html
            assert 'value="/map?cluster=0"' in html and 'name="password"' in html
        form = {"username": "viewer", "password": PASSWORD, "next": "/map?cluster=0"}
        async with http.post(base(svc) + "/login", data=form, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/map?cluster=0"
        async with http.get(base(svc) + "/map?cluster=0", allow_redirects=False) as r:
            assert r.status == 200
        evil = {**form, "next": "//evil.example/"}
        async with http.post(base(svc) + "/login", data=evil, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/"


async def test_wrong_password_and_unknown_user_get_the_same_answer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(tmp_path, login_required=True) as svc, session() as http:
        answers = []
        for name in ("viewer", "nobody"):
            form = {"username": name, "password": "wrong-password-1"}
            async with http.post(base(svc) + "/login", data=form) as r:
                html = await r.text()
                answers.append((r.status, html.replace(name, "NAME")))
                assert 'id="login-error"' in html
            async with http.post(base(svc) + "/login", json=form) as r:
                answers.append((r.status, await r.text()))
        assert answers[0] == answers[2] and answers[1] == answers[3]
        assert answers[0][0] == 200  # the form page, with #login-error
        assert answers[1][0] == 401 and "Set-Cookie" not in r.headers
    logged = [r.getMessage() for r in caplog.records if r.name == "ontwatch.login"]
    assert any("failed login for user viewer from 127.0.0.1" in m for m in logged)
    assert not any("wrong-password-1" in m for m in logged)


async def test_failed_login_names_are_escaped_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with running(tmp_path, login_required=True) as svc, session() as http:
        forged = "x\nINFO ontwatch login: user admin (admin)\x1b[2J"
        async with http.post(
            base(svc) + "/login", json={"username": forged, "password": "whatever-1"}
        ) as r:
            assert r.status == 401
    lines = [r.getMessage() for r in caplog.records if r.name == "ontwatch.login"]
    assert lines and all("\n" not in m and "\x1b" not in m for m in lines)
    assert escaped("a\nb\x1bc") == "a\\nb\\x1bc"


async def test_cookie_flags_and_logout(tmp_path: Path) -> None:
    async with running(tmp_path, login_required=True) as svc, session() as http:
        form = {"username": "operator", "password": PASSWORD}
        async with http.post(base(svc) + "/login", data=form, allow_redirects=False) as r:
            cookie = r.cookies["ontwatch_session"]
            raw = r.headers["Set-Cookie"]
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
        assert not cookie["secure"]  # plain http, no trusted proxy
        assert "HttpOnly" in raw and "SameSite=Lax" in raw and "Secure" not in raw
        assert len(cookie.value) >= 43
        async with http.get(base(svc) + "/api/stats") as r:
            assert r.status == 200
        async with http.post(base(svc) + "/logout", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/login"
            assert r.cookies["ontwatch_session"].value == ""
        assert svc.db is not None and await Users(svc.db).sessions_of("operator") == 0
        # The old cookie value, replayed: the server-side session is gone.
        replay = {"Cookie": f"ontwatch_session={cookie.value}"}
        async with (
            aiohttp.ClientSession() as other,
            other.get(base(svc) + "/api/stats", headers=replay) as r,
        ):
            assert r.status == 401
            assert (await r.json())["error"] == "session expired, log in again"


async def test_cookie_is_secure_behind_a_trusted_https_proxy(tmp_path: Path) -> None:
    async with running(tmp_path, login_required=True, trust_proxy=True) as svc:
        for proto, secure in (("https", True), ("http", False)):
            async with (
                session() as http,
                http.post(
                    base(svc) + "/login",
                    json={"username": "viewer", "password": PASSWORD},
                    headers={"X-Forwarded-Proto": proto},
                ) as r,
            ):
                assert r.status == 200
                assert bool(r.cookies["ontwatch_session"]["secure"]) is secure
    (tmp_path / "untrusted").mkdir()
    async with (
        running(tmp_path / "untrusted", login_required=True) as svc,
        session() as http,
        http.post(
            base(svc) + "/login",
            json={"username": "viewer", "password": PASSWORD},
            headers={"X-Forwarded-Proto": "https"},
        ) as r,
    ):
        assert not r.cookies["ontwatch_session"]["secure"]  # not trusted: ignored


async def test_idle_and_absolute_expiry(tmp_path: Path) -> None:
    clock = ManualClock()
    limits = {"session_idle_minutes": 30, "session_absolute_minutes": 120}
    async with running(tmp_path, clock, login_required=True, **limits) as svc, session() as http:
        assert await login(http, svc, "viewer") == 200
        for _ in range(4):  # used every 25 min: alive through 100 min
            clock.advance(minutes=25)
            async with http.get(base(svc) + "/api/stats") as r:
                assert r.status == 200
        clock.advance(minutes=25)  # 125 min since login: past the absolute limit
        async with http.get(base(svc) + "/api/stats") as r:
            assert r.status == 401
        async with http.get(base(svc) + "/", allow_redirects=False) as r:
            assert r.status == 302
        assert await login(http, svc, "viewer") == 200
        clock.advance(minutes=31)  # idle too long
        async with http.get(base(svc) + "/api/stats") as r:
            assert r.status == 401


async def test_disabled_or_removed_user_is_out_at_once(tmp_path: Path) -> None:
    async with running(tmp_path, login_required=True) as svc:
        assert svc.db is not None
        users = Users(svc.db)
        async with session() as a, session() as b:
            assert await login(a, svc, "operator") == 200
            assert await login(b, svc, "viewer") == 200
            await users.set_disabled("operator")
            await users.remove("viewer")
            for http in (a, b):
                async with http.get(base(svc) + "/api/onts") as r:
                    assert r.status == 401
            assert await login(a, svc, "operator") == 401
            await users.set_disabled("operator", disabled=False)
            assert await login(a, svc, "operator") == 200


async def test_failed_logins_are_slowed_per_user_and_per_address(tmp_path: Path) -> None:
    async with running(tmp_path, login_required=True, trust_proxy=True) as svc, session() as http:

        async def attempt(name: str, password: str, address: str) -> int:
            async with http.post(
                base(svc) + "/login",
                json={"username": name, "password": password},
                headers={"X-Forwarded-For": address},
            ) as r:
                if r.status == 429:
                    assert int(r.headers["Retry-After"]) >= 1
                return r.status

        # Per user: three free mistakes from different addresses, then even the right
        # password waits.
        got = [await attempt("admin", "wrong-pass", f"127.10.0.{i}") for i in range(1, 5)]
        assert got == [401, 401, 401, 401]
        assert await attempt("admin", PASSWORD, "127.10.0.9") == 429
        assert await attempt("operator", PASSWORD, "127.10.0.9") == 200  # others unaffected
        # Per address: one address spraying names is slowed for every name.
        got = [await attempt(f"user{i}", "wrong-pass", "127.9.9.9") for i in range(4)]
        assert got == [401, 401, 401, 401]
        assert await attempt("viewer", PASSWORD, "127.9.9.9") == 429
        assert await attempt("viewer", PASSWORD, "127.1.1.1") == 200


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_waits_double_then_cap_then_forget() -> None:
    t = FakeMonotonic()
    gate = LoginThrottle(free=3, base=1.0, cap=8.0, forget=60.0, clock=t)
    waits = []
    for _ in range(8):
        waits.append(gate.wait("ayu", "1.2.3.4"))
        gate.failed("ayu", "1.2.3.4")
    assert waits == [0, 0, 0, 0, 1.0, 2.0, 4.0, 8.0]  # after each failure, at this instant
    assert gate.wait("ayu", "5.6.7.8") == 8.0  # the user key, from elsewhere
    assert gate.wait("budi", "1.2.3.4") == 8.0  # the address key, for another name
    t.now += 8.0
    assert gate.wait("ayu", "1.2.3.4") == 0
    gate.failed("ayu", "1.2.3.4")
    assert gate.wait("ayu", "9.9.9.9") == 8.0  # still counted: capped, not reset
    t.now += 61
    assert gate.wait("ayu", "1.2.3.4") == 0 and len(gate) == 0  # forgotten
    gate.failed("ayu", "1.2.3.4")
    assert gate.wait("ayu", "1.2.3.4") == 0  # a fresh start: one free mistake used


def test_throttle_memory_is_bounded() -> None:
    t = FakeMonotonic()
    gate = LoginThrottle(max_keys=100, clock=t)
    for i in range(10_000):
        gate.failed(f"name{i}", f"127.0.{i // 250}.{i % 250}")
    assert len(gate) <= 100


def test_success_clears_the_user_but_not_the_address() -> None:
    t = FakeMonotonic()
    gate = LoginThrottle(free=1, clock=t)
    gate.failed("ayu", "127.1.1.1")
    gate.failed("ayu", "127.1.1.1")
    gate.succeeded("ayu")
    assert gate.wait("ayu", "2.2.2.2") == 0
    assert gate.wait("ayu", "127.1.1.1") > 0
