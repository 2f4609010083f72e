"""One answer to "what now?" for every error a Bot API request can end with.

The sender, the outbox delivery, the status message and the incident threads all act on
`classify(exc)`: wait as Telegram says, retry with backoff, or give up (the chat is gone or the
bot blocked; our request is wrong). Two answers refine "bad request" for edits: the message we
meant to edit, pin or reply to is gone (re-create it), and "not modified" (nothing to do).
"""

from __future__ import annotations

import enum
import warnings
from dataclasses import dataclass
from datetime import timedelta

from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)


class Action(enum.StrEnum):
    """What the sender does after a failed request."""

    RETRY_AFTER = "retry_after"  # 429: wait the seconds Telegram gave, then send again
    BACKOFF = "backoff"  # network error, timeout, 5xx: retry with growing waits
    CHAT_GONE = "chat_gone"  # give up: chat not found, bot blocked or kicked, chat migrated
    BAD_REQUEST = "bad_request"  # give up: our bug (a text or a parameter Telegram refuses)
    MESSAGE_GONE = "message_gone"  # the message to edit / pin / reply to no longer exists
    NOT_MODIFIED = "not_modified"  # an edit with the same content: already as wanted


@dataclass(frozen=True, slots=True)
class Verdict:
    """The classification of one error: the action, seconds to wait (429), and why."""

    action: Action
    seconds: float = 0.0
    reason: str = ""

    @property
    def retry(self) -> bool:
        """The request may succeed later as it is."""
        return self.action in (Action.RETRY_AFTER, Action.BACKOFF)


_GONE_MESSAGE = (
    "message to edit not found",
    "message to delete not found",
    "message to pin not found",
    "message to be replied not found",
    "message can't be edited",
    "message_id_invalid",
)


def retry_seconds(exc: RetryAfter) -> float:
    """retry_after in seconds whether PTB gives an int or a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB deprecates the int form; both are handled here
        value = exc.retry_after
    return float(value.total_seconds()) if isinstance(value, timedelta) else float(value)


def classify(exc: BaseException) -> Verdict:
    """The one place that decides how a send error is handled."""
    if isinstance(exc, RetryAfter):
        seconds = retry_seconds(exc)
        return Verdict(Action.RETRY_AFTER, seconds, f"429 retry after {seconds:.0f}s")
    if isinstance(exc, Forbidden | ChatMigrated):
        return Verdict(Action.CHAT_GONE, reason=f"{type(exc).__name__}: {exc.message}")
    if isinstance(exc, BadRequest):
        text = exc.message.lower()
        if "chat not found" in text:
            return Verdict(Action.CHAT_GONE, reason=f"BadRequest: {exc.message}")
        if "not modified" in text:
            return Verdict(Action.NOT_MODIFIED, reason=exc.message)
        if any(gone in text for gone in _GONE_MESSAGE):
            return Verdict(Action.MESSAGE_GONE, reason=f"BadRequest: {exc.message}")
        return Verdict(Action.BAD_REQUEST, reason=f"BadRequest: {exc.message}")
    if isinstance(exc, InvalidToken):
        # A configuration error an operator fixes; never log the message (it holds the token).
        return Verdict(Action.BACKOFF, reason="InvalidToken")
    if isinstance(exc, TelegramError | OSError | TimeoutError):
        return Verdict(Action.BACKOFF, reason=f"{type(exc).__name__}: {exc}")
    return Verdict(Action.BAD_REQUEST, reason=f"{type(exc).__name__}: {exc}")


def metric_kind(verdict: Verdict, exc: BaseException) -> str:
    """The /metrics label of an error (kept from the delivery's earlier counters)."""
    if verdict.action is Action.RETRY_AFTER:
        return "retry_after"
    if isinstance(exc, InvalidToken):
        return "invalid_token"
    if verdict.action is Action.BACKOFF:
        return "network"
    if isinstance(exc, Forbidden):
        return "forbidden"
    return "bad_request"
