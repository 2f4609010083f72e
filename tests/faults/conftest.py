"""Fixtures of the fault suite and the session summary of its figures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import FakeBotProcess, print_figures


@pytest.fixture
def fake_bot() -> Iterator[FakeBotProcess]:
    """A fresh fake Telegram Bot API process for one test."""
    fake = FakeBotProcess()
    yield fake
    fake.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figures the tests recorded (CI runs without -s)."""
    print_figures(terminalreporter)
