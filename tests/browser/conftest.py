"""Fixtures of the browser suite: a real service per module, Chromium windows, console checks.

Chromium missing: the tests skip on a developer machine, and fail when `CI` is set.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from tests.browser.chrome import DESKTOP, ConsoleEntry, chromium_missing, console_errors, new_driver
from tests.browser.live import LiveService, start_service
from tests.fakes.tile_server import ThreadedTileServer

StartService = Callable[..., LiveService]


@pytest.fixture(scope="session", autouse=True)
def chromium() -> None:
    """Skip without Chromium, except on CI, where its absence is a failure."""
    why = chromium_missing()
    if why is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and the browser tests cannot run: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def tile_url() -> Iterator[str]:
    """A local tile server on loopback, behind the services' tile cache."""
    with ThreadedTileServer() as server:
        yield server.url_template


@pytest.fixture(scope="module")
def start(tmp_path_factory: pytest.TempPathFactory, tile_url: str) -> Iterator[StartService]:
    """Start services (stopped at the end of the module); each has its own database."""
    started: list[LiveService] = []

    def make(*args: str, token: str | None = None, **extra: str) -> LiveService:
        workdir = tmp_path_factory.mktemp("svc")
        live = start_service(workdir, tile_url, *args, token=token, **extra)
        started.append(live)
        return live

    yield make
    for live in started:
        live.stop()


class Browsers:
    """Chromium windows opened by one test; console errors fail the test."""

    def __init__(self) -> None:
        self.drivers: list[WebDriver] = []
        self.errors: list[tuple[str, ConsoleEntry]] = []

    def open(
        self, url: str, width: int = DESKTOP[0], height: int = DESKTOP[1], lang: str = "id"
    ) -> WebDriver:
        driver = new_driver(width, height, lang)
        self.drivers.append(driver)
        if url:
            driver.get(url)
        return driver

    def collect(self) -> list[tuple[str, ConsoleEntry]]:
        """Console errors of every open window so far (kept for the final check too)."""
        for driver in self.drivers:
            try:
                url = driver.current_url
                self.errors.extend((url, e) for e in console_errors(driver))
            except Exception as exc:  # a crashed window is an error as well
                self.errors.append(("?", ConsoleEntry("SEVERE", repr(exc), "driver")))
        return self.errors

    def assert_clean(self) -> None:
        errors = self.collect()
        assert not errors, "browser console errors:\n" + "\n".join(
            f"  {url}: {e.level} {e.source}: {e.message}" for url, e in errors
        )

    def close(self) -> None:
        for driver in self.drivers:
            with contextlib.suppress(Exception):  # closing is best effort
                driver.quit()
        self.drivers.clear()


@pytest.fixture
def browsers() -> Iterator[Browsers]:
    """Open Chromium windows with browsers.open(url, width, height); the console must stay clean."""
    b = Browsers()
    try:
        yield b
        b.assert_clean()
    finally:
        b.close()
