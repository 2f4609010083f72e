"""On CI a missing tool is a failure, not a skip.

Locally a test may skip when chromium, nftables, hadolint or ICMP sockets are missing. On CI
(`CI` set, as `.ci/run` runs) `.ci/run` installs all of them, so such a skip means the install
failed and the test proved nothing: the run fails, naming the skipped tests. Only the skips
that CI machines cannot avoid (no Docker engine there) are allowed.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

ALLOWED_ON_CI = ("docker compose",)  # CI machines have no Docker engine

_skipped: list[str] = []


def _on_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember skips whose reason is not one CI may have."""
    if not report.skipped or not _on_ci() or hasattr(report, "wasxfail"):
        return
    reason = (
        str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    )
    if not any(allowed in reason for allowed in ALLOWED_ON_CI):
        _skipped.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when CI skipped a test for a missing tool."""
    if _skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name the skips that failed the run."""
    if _skipped:
        terminalreporter.section("skipped on CI: a tool .ci/run installs is missing")
        for line in _skipped:
            terminalreporter.write_line(line)
