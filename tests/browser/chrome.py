"""Headless Chromium for tests, benches and screenshots: Debian's binaries, loopback only.

The driver path is always given, so selenium-manager never runs (and never downloads).
Chromium is told to resolve no host name but loopback and to do no background networking.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DESKTOP = (1366, 900)

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-default-apps",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    # Three pages open side by side, like three screens: no throttling of the hidden ones.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    # Nothing but loopback: every other host name fails to resolve.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
)


def chromium_missing() -> str | None:
    """Why a browser cannot be started here, or None when Chromium and its driver are present."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (path.is_file() and os.access(path, os.X_OK)):
            return f"{path} is not installed (Debian packages chromium and chromium-driver)"
    return None


def new_driver(width: int = DESKTOP[0], height: int = DESKTOP[1], lang: str = "id") -> WebDriver:
    """A headless Chromium window of the given size, recording the console."""
    os.environ.setdefault("SE_OFFLINE", "true")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--lang={lang}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(20)
    set_viewport(driver, width, height)
    return driver


def set_viewport(driver: WebDriver, width: int, height: int) -> None:
    """Make the page's viewport (not the outer window) exactly width x height CSS px."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


@dataclass(frozen=True, slots=True)
class ConsoleEntry:
    """One browser console line."""

    level: str
    message: str
    source: str


def console(driver: WebDriver) -> list[ConsoleEntry]:
    """Console lines since the last call (the driver clears them as it hands them over)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")
    return [
        ConsoleEntry(str(e.get("level")), str(e.get("message")), str(e.get("source", "")))
        for e in entries
    ]


def console_errors(driver: WebDriver) -> list[ConsoleEntry]:
    """Errors since the last call: script errors, failed loads, CSP violations (SEVERE), and
    the pages' own warnings (console.warn is how their live handlers report a failure)."""
    return [
        e
        for e in console(driver)
        if e.level == "SEVERE" or (e.level == "WARNING" and e.source == "console-api")
    ]


def clock_offset(d: WebDriver, samples: int = 15) -> float:
    """Page wall clock minus this process's (ms), from the round trip with the least delay."""
    best: tuple[float, float] | None = None
    for _ in range(samples):
        t0 = time.time() * 1000
        page = float(d.execute_script("return performance.timeOrigin + performance.now()"))
        t1 = time.time() * 1000
        if best is None or t1 - t0 < best[0]:
            best = (t1 - t0, page - (t0 + t1) / 2)
    assert best is not None
    return best[1]
