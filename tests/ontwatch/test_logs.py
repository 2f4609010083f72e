"""Log lines: one per event, plain or JSON, secrets redacted even in tracebacks."""

from __future__ import annotations

import io
import json
import logging

import pytest

from ontwatch.logs import JsonFormatter, RedactFilter

TOKEN = "123456:AAE-secret-part"


def capture(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    handler.addFilter(RedactFilter([TOKEN]))
    logger = logging.getLogger(f"test-{id(out)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, out


@pytest.mark.parametrize("json_lines", [False, True])
def test_token_never_reaches_the_output(json_lines: bool) -> None:
    fmt = JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(message)s")
    logger, out = capture(fmt)
    logger.info("POST https://api.telegram.org/bot%s/sendMessage", TOKEN)
    try:
        raise RuntimeError(f"failed for {TOKEN}")
    except RuntimeError:
        logger.exception("delivery failed")
    text = out.getvalue()
    assert TOKEN not in text and "secret-part" not in text
    assert text.count("<redacted>") == 2
    if json_lines:
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        assert [r["level"] for r in lines] == ["INFO", "ERROR"]
        assert "RuntimeError" in lines[1]["exc"]
        assert len(text.strip().splitlines()) == 2  # one line per event, traceback included
