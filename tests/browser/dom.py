"""Reading the pages the way a person looks at them: text of elements, waits for a change."""

from __future__ import annotations

import time
from typing import Any

from selenium.common.exceptions import JavascriptException
from selenium.webdriver.chrome.webdriver import WebDriver

# Counts every .toast added to #toasts (toasts may fade out before the test looks) and
# marks this page load: a reload loses the mark.
WATCH = """
if (!window.__watch) {
  window.__watch = {load: Math.random(), toasts: []};
  const box = document.getElementById('toasts');
  if (box) new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes)
      if (n.nodeType === 1 && n.classList.contains('toast'))
        window.__watch.toasts.push(n.textContent.trim());
  }).observe(box, {childList: true, subtree: true});
}
return window.__watch.load;
"""


def watch(driver: WebDriver) -> float:
    """Start counting toasts; returns this page load's mark."""
    return float(driver.execute_script(WATCH))


def same_load(driver: WebDriver, mark: float) -> bool:
    """The page was not reloaded since watch() returned mark."""
    return driver.execute_script("return window.__watch && window.__watch.load") == mark


def toasts(driver: WebDriver) -> list[str]:
    """Texts of the toasts added since watch()."""
    return list(driver.execute_script("return window.__watch.toasts"))


def text(driver: WebDriver, selector: str) -> str | None:
    """textContent of the first match, trimmed; None when nothing matches."""
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : null;",
        selector,
    )


def attrs(driver: WebDriver, selector: str, name: str) -> list[str]:
    """The attribute `name` of every match, in document order."""
    return list(
        driver.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.getAttribute(arguments[1]));",
            selector,
            name,
        )
    )


def wait_for(
    driver: WebDriver, probe: Any, expected: Any, *, limit: float = 5.0, what: str = ""
) -> Any:
    """Poll probe(driver) every 20 ms until it equals expected (bounded); returns the value."""
    deadline = time.monotonic() + limit
    value: Any = None
    while True:
        try:
            value = probe(driver)
        except JavascriptException as exc:
            value = f"script error: {exc.msg}"
        if value == expected:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what or 'page'}: expected {expected!r}, still {value!r} after {limit}s "
                f"({driver.current_url})"
            )
        time.sleep(0.02)
