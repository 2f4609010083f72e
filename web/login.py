"""GET/POST /login and POST /logout; failed logins slowed per user name and per address.

The answer to an unknown user and to a wrong password is the same (same text, same status,
one scrypt each). Failed logins are logged with the (escaped) user name and the address;
passwords never are.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from web import texts
from web.auth import (
    ACCESS,
    SESSION_COOKIE,
    client_address,
    is_https,
    safe_next,
    session_principal,
)

log = logging.getLogger("ontwatch.login")
routes = web.RouteTableDef()
TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_FIELD = 1024


# -- throttling --------------------------------------------------------------------------


@dataclass(slots=True)
class _Failures:
    count: int
    last: float
    until: float


class LoginThrottle:
    """Exponential waits after repeated failures, per key ("user:NAME", "addr:IP").

    The first `free` failures cost nothing (typing mistakes); then each failure doubles the
    wait from `base` up to `cap` seconds. A key forgets after `forget` seconds without a
    failure. At most `max_keys` keys are kept (the least recently failed go first), so a
    spray of names or addresses costs bounded memory.
    """

    def __init__(
        self,
        *,
        free: int = 3,
        base: float = 1.0,
        cap: float = 300.0,
        forget: float = 900.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free, self.base, self.cap, self.forget = free, base, cap, forget
        self.max_keys = max_keys
        self.clock = clock
        self._keys: OrderedDict[str, _Failures] = OrderedDict()

    @staticmethod
    def keys(user: str, address: str) -> tuple[str, str]:
        """The two keys an attempt counts against."""
        return f"user:{user.strip().lower()[:64]}", f"addr:{address}"

    def wait(self, user: str, address: str) -> float:
        """Seconds before this user name from this address may try again (0: now)."""
        now = self.clock()
        waits = [self._entry(k, now) for k in self.keys(user, address)]
        return max((e.until - now for e in waits if e is not None), default=0.0)

    def failed(self, user: str, address: str) -> None:
        """Count a failure against both keys."""
        now = self.clock()
        for key in self.keys(user, address):
            entry = self._entry(key, now) or _Failures(0, now, now)
            entry.count += 1
            entry.last = now
            if entry.count > self.free:
                entry.until = now + min(self.cap, self.base * 2 ** (entry.count - self.free - 1))
            self._keys[key] = entry
            self._keys.move_to_end(key)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)

    def succeeded(self, user: str) -> None:
        """A good login clears its user name's failures (the address keeps its own)."""
        self._keys.pop(self.keys(user, "")[0], None)

    def __len__(self) -> int:
        return len(self._keys)

    def _entry(self, key: str, now: float) -> _Failures | None:
        entry = self._keys.get(key)
        if entry is not None and now - entry.last > self.forget and now >= entry.until:
            del self._keys[key]
            return None
        return entry


THROTTLE = web.AppKey("login_throttle", LoginThrottle)


def throttle(app: web.Application) -> LoginThrottle:
    """The app's throttle (made on first use)."""
    found = app.get(THROTTLE)
    if found is None:
        found = app[THROTTLE] = LoginThrottle()
    return found


def escaped(text: str, limit: int = 64) -> str:
    """A user-supplied string safe for one log line: control and non-ASCII characters escaped."""
    return ascii(text[:limit])[1:-1]


# -- the page ----------------------------------------------------------------------------


def _lang(request: web.Request) -> texts.Lang:
    chosen = request.query.get("lang") or request.cookies.get("lang")
    return texts.lang_of(chosen, request.app[ACCESS].lang)


_FALLBACK_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
)


def _fallback_context(lang: texts.Lang) -> dict[str, Any]:
    """What base.html needs when the pages (web/app.py) are not set up on this app."""
    return {
        "lang": lang,
        "other_lang": texts.other(lang),
        "t": texts.labels(lang),
        "js_texts": {},
        "tz_name": "UTC",
        "kiosk": False,
        "header": None,
        "logged_in": False,
        "principal_name": "",
    }


def render_login(
    request: web.Request, *, status: int = 200, error: str = "", next_path: str = "/"
) -> web.Response:
    """The login page; error is a LOGIN_LABELS key (already formatted by the caller)."""
    lang = _lang(request)
    labels = {k: v[lang] for k, v in texts.LOGIN_LABELS.items()}
    context = {"page": "login", "login": labels, "error": error, "next": next_path}
    if request.config_dict.get(aiohttp_jinja2.APP_KEY) is not None:
        response = aiohttp_jinja2.render_template("login.html", request, context)
    else:
        html = _FALLBACK_ENV.get_template("login.html").render(
            {**_fallback_context(lang), **context}
        )
        response = web.Response(text=html, content_type="text/html")
    response.set_status(status)
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.get("/login")
async def login_page(request: web.Request) -> web.Response:
    """The login form."""
    return render_login(request, next_path=safe_next(request.query.get("next")))


async def _credentials(request: web.Request) -> tuple[str, str, str, bool]:
    """(username, password, next, as_json) from a form or a JSON body."""
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        as_json = True
    else:
        body = dict(await request.post())
        as_json = False
    fields = [body.get(k, "") for k in ("username", "password", "next")]
    user, password, nxt = (f if isinstance(f, str) else "" for f in fields)
    return user.strip()[:MAX_FIELD], password[:MAX_FIELD], safe_next(nxt or "/"), as_json


def _answer(
    request: web.Request, as_json: bool, status: int, key: str, nxt: str, **values: object
) -> web.Response:
    lang = _lang(request)
    message = texts.LOGIN_LABELS[key][lang].format(**values)
    if as_json:
        response = web.json_response({"error": message, "detail": values or None}, status=status)
    else:  # the page says it in #login-error; a 4xx would be a console error in the browser
        response = render_login(request, error=message, next_path=nxt)
    if "seconds" in values:
        response.headers["Retry-After"] = str(values["seconds"])
    return response


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    """Check the password; on success a new session cookie and a redirect to ?next."""
    cfg = request.app[ACCESS]
    user_name, password, nxt, as_json = await _credentials(request)
    if not user_name or not password:
        return _answer(request, as_json, 400, "bad_request", nxt)
    address = client_address(request)
    gate = throttle(request.app)
    wait = gate.wait(user_name, address)
    if wait > 0:
        log.warning("login refused (throttled) for user %s from %s", escaped(user_name), address)
        return _answer(request, as_json, 429, "throttled", nxt, seconds=max(1, round(wait)))
    user = await cfg.users.authenticate(user_name, password) if cfg.users else None
    if user is None:
        gate.failed(user_name, address)
        log.warning("failed login for user %s from %s", escaped(user_name), address)
        return _answer(request, as_json, 401, "failed", nxt)
    gate.succeeded(user_name)
    assert cfg.users is not None
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await cfg.users.close_session(old)  # never keep a session id from before the login
    token = await cfg.users.open_session(user, cfg.clock())
    log.info("login: user %s (%s) from %s", escaped(user.name), user.role, address)
    if as_json:
        response: web.Response = web.json_response({"name": user.name, "role": user.role})
    else:
        response = web.Response(status=303, headers={"Location": nxt})
    set_session_cookie(request, response, token)
    return response


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    """HttpOnly, SameSite=Lax, Path=/, Secure over HTTPS, for the absolute session lifetime."""
    cfg = request.app[ACCESS]
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(cfg.policy.absolute.total_seconds()),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=is_https(request),
    )


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    """Delete the session server-side and the cookie; back to the login page."""
    cfg = request.app[ACCESS]
    principal = await session_principal(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token and cfg.users is not None:
        await cfg.users.close_session(token)
    if principal is not None:
        log.info("logout: user %s", escaped(principal.name))
    response = web.Response(status=303, headers={"Location": "/login"})
    response.del_cookie(SESSION_COOKIE, path="/")
    response.headers["Cache-Control"] = "no-store"
    return response
