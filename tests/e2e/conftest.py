"""Fixtures of the end-to-end suite: the fake Bot API process and a local tile server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import FakeBotProcess, print_figures
from tests.fakes.tile_server import ThreadedTileServer


@pytest.fixture
def fake_bot() -> Iterator[FakeBotProcess]:
    """A fresh fake Telegram Bot API process for one test."""
    fake = FakeBotProcess()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def tile_url() -> Iterator[str]:
    """URL template of a local tile server on loopback (one per session)."""
    with ThreadedTileServer() as server:
        yield server.url_template


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figures the tests recorded (CI runs without -s)."""
    print_figures(terminalreporter)
