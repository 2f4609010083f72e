"""Logging: one line per event, plain or JSON, with secrets redacted and user text escaped."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# C0 controls, DEL, C1 controls and the Unicode line/paragraph separators: anything a
# terminal or a log reader could take as a new line or a command (ESC sequences).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_JSON_RAW = re.compile("[\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
DEDUP_WINDOW = 60.0  # seconds during which an identical warning/error is counted, not logged
DEDUP_KEYS = 1024


def _escape_one(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """Control characters as visible escapes, so user text can never start a log line."""
    return _CONTROLS.sub(_escape_one, text)


class RedactFilter(logging.Filter):
    """Replaces secrets (the bot token, the API token) wherever they appear in a record."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, redacted, so formatters never see the secret."""
        if not self.secrets:
            return True
        message = record.getMessage()
        for secret in self.secrets:
            message = message.replace(secret, "<redacted>")
        record.msg, record.args = message, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            for secret in self.secrets:
                text = text.replace(secret, "<redacted>")
            record.exc_text, record.exc_info = text, None
        return True


class DedupFilter(logging.Filter):
    """Repeated identical warnings and errors: the first is logged, the rest are counted.

    Identical means same logger, level and rendered message (and exception type). The next
    occurrence after `window` seconds is logged with how many were folded before it, so a
    flood (e.g. accept() failing thousands of times a second) costs one line a minute.
    """

    def __init__(self, window: float = DEDUP_WINDOW, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.window = window
        self.clock = clock
        self._seen: OrderedDict[tuple[object, ...], tuple[float, int]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a repeat inside the window; the first after it carries the count."""
        if record.levelno < logging.WARNING:
            return True
        exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        key = (record.name, record.levelno, record.getMessage(), exc)
        now = self.clock()
        first, folded = self._seen.get(key, (None, 0))
        if first is not None and now - first < self.window:
            self._seen[key] = (first, folded + 1)
            return False
        self._seen[key] = (now, 0)
        self._seen.move_to_end(key)
        while len(self._seen) > DEDUP_KEYS:
            self._seen.popitem(last=False)
        if folded:
            record.msg = f"{record.getMessage()} (and {folded} more like it before this)"
            record.args = None
        return True


class TextFormatter(logging.Formatter):
    """The plain format, with control characters escaped and tracebacks indented."""

    def format(self, record: logging.LogRecord) -> str:
        """One line for the message; traceback lines (if any) indented under it."""
        saved = record.msg, record.args, record.exc_text
        record.msg, record.args = escape_controls(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            lines = record.exc_text.split("\n")
            record.exc_text = "\n".join("    " + escape_controls(line) for line in lines)
        try:
            return super().format(record)
        finally:
            record.msg, record.args, record.exc_text = saved


def text_formatter() -> TextFormatter:
    """The service's plain-text formatter."""
    return TextFormatter(TEXT_FORMAT)


class JsonFormatter(logging.Formatter):
    """One JSON object per line (json escapes control characters itself)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        # json leaves DEL, C1 controls and U+2028/2029 raw with ensure_ascii=False; many line
        # readers split on them, so they are escaped too (still valid JSON).
        return _JSON_RAW.sub(
            lambda m: f"\\u{ord(m.group(0)):04x}", json.dumps(out, ensure_ascii=False)
        )


def setup_logging(level: str, *, json_lines: bool = False, secrets: Iterable[str] = ()) -> None:
    """Configure the root logger for the service."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(DedupFilter())
    handler.addFilter(RedactFilter(secrets))
    handler.setFormatter(JsonFormatter() if json_lines else text_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO, and the Bot API URL contains the token.
    for noisy in ("httpx", "httpcore", "apscheduler.executors.default", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
