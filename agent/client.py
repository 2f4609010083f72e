"""The agent's HTTP client for the centre: the assignment (with its ETag) and reports.

Answers are classified, not raised, so the sender can decide in one place: a 2xx is an ack;
a 401/403 means the token was refused (keep every report, retry slowly, say so loudly); any
other 4xx means this report is bad (set it aside so it never blocks the queue); a 5xx, 408,
429 or no answer at all keeps the report and retries with capped exponential backoff and
jitter, honouring Retry-After. The token goes only into the Authorization header.
"""

from __future__ import annotations

import enum
import gzip
import json
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from monitor.agents import Assignment, ReportAnswer

log = logging.getLogger(__name__)

GZIP_OVER = 1024  # bytes of JSON above which a report goes gzip-compressed
RETRY_AFTER_CAP = 300.0  # never wait longer than this because a server asked
ASSIGNMENT_PATH = "/api/agent/assignment"
REPORT_PATH = "/api/agent/report"


class Verdict(enum.StrEnum):
    """What to do with a report after the centre's answer (or its silence)."""

    ACK = "ack"  # 2xx: delete it
    BAD = "bad"  # 4xx (not 401/403/408/429): set it aside
    REFUSED = "refused"  # 401/403: the token was refused; keep it, retry slowly
    RETRY = "retry"  # 5xx, 408, 429, no answer: keep it, back off


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request's outcome."""

    verdict: Verdict
    status: int | None = None  # HTTP status, None when there was no answer
    answer: ReportAnswer | None = None
    retry_after: float | None = None
    detail: str = ""


class AssignmentError(RuntimeError):
    """The assignment could not be fetched or read; `outcome` says how to retry."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.detail or outcome.verdict.value)
        self.outcome = outcome


def classify(status: int) -> Verdict:
    """The verdict of an HTTP status."""
    if 200 <= status < 300:
        return Verdict.ACK
    if status in (401, 403):
        return Verdict.REFUSED
    if status in (408, 429) or status >= 500:
        return Verdict.RETRY
    if 400 <= status < 500:
        return Verdict.BAD
    return Verdict.RETRY  # 1xx/3xx are not answers this client expects


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date), capped; None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


@dataclass
class Backoff:
    """Capped exponential backoff with full jitter; reset after a success."""

    base: float = 1.0
    cap: float = 60.0
    failures: int = 0
    rng: random.Random | None = None

    def next(self, floor: float | None = None) -> float:
        """The wait before the next try; at least `floor` (a Retry-After) when given."""
        self.failures += 1
        ceiling = min(self.cap, self.base * 2 ** min(self.failures - 1, 30))
        rng = self.rng or random
        wait = ceiling / 2 + rng.uniform(0, ceiling / 2)  # half fixed, half jitter
        return max(wait, floor or 0.0)

    def reset(self) -> None:
        """A success: the next failure starts from the base again."""
        self.failures = 0


def parse_answer(data: Any, fallback_version: str) -> ReportAnswer:
    """A report's answer; missing fields take neutral values (an older centre)."""
    if not isinstance(data, Mapping):
        data = {}

    def number(key: str) -> int:
        value = data.get(key, 0)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    version = data.get("assignment")
    return ReportAnswer(
        accepted=number("accepted"),
        stale=number("stale"),
        refused=number("refused"),
        duplicate=data.get("duplicate") is True,
        want_full=data.get("want_full") is True,
        assignment=version if isinstance(version, str) else fallback_version,
    )


def parse_assignment(data: Any) -> Assignment:
    """The assignment document, checked field by field (ValueError names the field)."""
    if not isinstance(data, Mapping):
        raise ValueError("assignment: not a JSON object")
    agent, version, targets = data.get("agent"), data.get("version"), data.get("targets")
    if not isinstance(agent, str):
        raise ValueError("assignment.agent: not a string")
    if not isinstance(version, str) or not version:
        raise ValueError("assignment.version: not a string")
    if not isinstance(targets, list):
        raise ValueError("assignment.targets: not a list")
    pairs: list[tuple[str, str]] = []
    for n, item in enumerate(targets):
        if not (
            isinstance(item, list | tuple)
            and len(item) == 2
            and all(isinstance(x, str) for x in item)
        ):
            raise ValueError(f"assignment.targets[{n}]: not [ont id, ip]")
        pairs.append((item[0], item[1]))
    knobs: dict[str, int] = {}
    for key, default in (("refresh_s", 300), ("down_after", 2), ("critical_rto", 3)):
        value = data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"assignment.{key}: not a positive integer")
        knobs[key] = value
    return Assignment(agent=agent, version=version, targets=tuple(pairs), **knobs)


def encode_body(report: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The request body and its headers: JSON, gzip-compressed when over GZIP_OVER."""
    raw = json.dumps(report, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    if len(raw) > GZIP_OVER:
        raw = gzip.compress(raw, compresslevel=6, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return raw, headers


class CentralClient:
    """Requests to the centre, one session, the agent's bearer token on each."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 15.0,
        user_agent: str = "ontwatch-agent",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "User-Agent": user_agent}
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 5.0))
        self._session: aiohttp.ClientSession | None = None
        self.bytes_sent = 0  # request bodies, as sent (compressed)
        self.bytes_received = 0

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # auto_decompress stays on for answers; bodies we send are compressed by hand.
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        """Close the session (and its connections)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def assignment(self, etag: str | None) -> tuple[Assignment, str] | None:
        """The assignment and its ETag, or None when unchanged (304). AssignmentError else."""
        headers = {"If-None-Match": etag} if etag else {}
        try:
            async with self._open().get(self.base_url + ASSIGNMENT_PATH, headers=headers) as resp:
                body = await resp.read()
                self.bytes_received += len(body)
                if resp.status == 304:
                    return None
                verdict = classify(resp.status)
                if verdict is not Verdict.ACK:
                    raise AssignmentError(
                        Outcome(
                            verdict,
                            resp.status,
                            retry_after=retry_after(resp.headers.get("Retry-After")),
                            detail=_detail(body),
                        )
                    )
                try:
                    parsed = parse_assignment(json.loads(body))
                except ValueError as exc:
                    raise AssignmentError(
                        Outcome(Verdict.BAD, resp.status, detail=str(exc))
                    ) from None
                return parsed, resp.headers.get("ETag") or f'"{parsed.version}"'
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise AssignmentError(Outcome(Verdict.RETRY, None, detail=_describe(exc))) from None

    async def send(self, report: Mapping[str, Any]) -> Outcome:
        """POST one report; its outcome (never raises for network or HTTP trouble)."""
        body, headers = encode_body(report)
        try:
            async with self._open().post(
                self.base_url + REPORT_PATH, data=body, headers=headers
            ) as resp:
                answer_body = await resp.read()
                self.bytes_sent += len(body)
                self.bytes_received += len(answer_body)
                verdict = classify(resp.status)
                wait = retry_after(resp.headers.get("Retry-After"))
                if verdict is not Verdict.ACK:
                    return Outcome(
                        verdict, resp.status, retry_after=wait, detail=_detail(answer_body)
                    )
                try:
                    data = json.loads(answer_body) if answer_body else {}
                except ValueError:
                    data = {}
                fallback = str(report.get("assignment", ""))
                return Outcome(Verdict.ACK, resp.status, answer=parse_answer(data, fallback))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Outcome(Verdict.RETRY, None, detail=_describe(exc))


def _detail(body: bytes) -> str:
    """The error answer's gist for the log: its "error" and "detail", or its first bytes."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(data, Mapping):
        parts = [str(data.get(k)) for k in ("error", "detail") if data.get(k) is not None]
        if parts:
            return ": ".join(parts)[:300]
    return str(data)[:200]


def _describe(exc: BaseException) -> str:
    """A network failure in a few words (no URL with credentials: there are none in it)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
