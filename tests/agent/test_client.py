"""The agent's client: answers classified, backoff bounded, against a real server on loopback."""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from agent.client import (
    GZIP_OVER,
    RETRY_AFTER_CAP,
    AssignmentError,
    Backoff,
    CentralClient,
    Verdict,
    classify,
    encode_body,
    parse_assignment,
    retry_after,
)
from tests.agent.centre import FakeCentre

CLASSES = [
    (200, Verdict.ACK),
    (202, Verdict.ACK),
    (400, Verdict.BAD),
    (404, Verdict.BAD),
    (409, Verdict.BAD),
    (413, Verdict.BAD),
    (422, Verdict.BAD),
    (401, Verdict.REFUSED),
    (403, Verdict.REFUSED),
    (408, Verdict.RETRY),
    (429, Verdict.RETRY),
    (500, Verdict.RETRY),
    (502, Verdict.RETRY),
    (503, Verdict.RETRY),
    (504, Verdict.RETRY),
]


@pytest.mark.parametrize(("status", "verdict"), CLASSES)
def test_classify(status: int, verdict: Verdict) -> None:
    """2xx ack; 401/403 token refused; 408/429/5xx retry; other 4xx: the report is bad."""
    assert classify(status) is verdict


def test_retry_after_seconds_dates_and_nonsense() -> None:
    now = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
    assert retry_after("7", now) == 7.0
    assert retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert retry_after("99999", now) == RETRY_AFTER_CAP
    assert retry_after("-5", now) == 0.0
    assert retry_after("soon", now) is None and retry_after(None, now) is None
    assert retry_after("nan", now) is None


def test_backoff_grows_is_capped_jittered_and_resets() -> None:
    """Exponential from the base, never past the cap, never under half of its ceiling."""
    b = Backoff(base=1.0, cap=20.0, rng=random.Random(7))
    waits = [b.next() for _ in range(12)]
    ceilings = [min(20.0, 2.0**i) for i in range(12)]
    assert all(c / 2 <= w <= c for w, c in zip(waits, ceilings, strict=True))
    assert max(waits) <= 20.0 and waits[-1] >= 10.0
    assert len({round(w, 6) for w in waits[6:]}) > 1  # jitter: capped waits are not all equal
    assert b.next(floor=45.0) == 45.0  # Retry-After beats the backoff
    b.reset()
    assert b.next() <= 1.0


def test_bodies_over_1_kb_go_gzip() -> None:
    small, h1 = encode_body({"obs": []})
    assert "Content-Encoding" not in h1 and json.loads(small) == {"obs": []}
    report = {"obs": [[str(i), 1764657600.0, 0] for i in range(200)]}
    big, h2 = encode_body(report)
    assert h2["Content-Encoding"] == "gzip" and len(json.dumps(report)) > GZIP_OVER
    assert json.loads(gzip.decompress(big)) == report and len(big) < GZIP_OVER


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ([], "assignment"),
        ({"version": "v", "targets": []}, "assignment.agent"),
        ({"agent": "A", "targets": []}, "assignment.version"),
        ({"agent": "A", "version": "v"}, "assignment.targets"),
        ({"agent": "A", "version": "v", "targets": [["1"]]}, r"assignment.targets\[0\]"),
        ({"agent": "A", "version": "v", "targets": [], "refresh_s": 0}, "assignment.refresh_s"),
        ({"agent": "A", "version": "v", "targets": [], "down_after": "2"}, "down_after"),
    ],
)
def test_a_bad_assignment_names_its_field(doc: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        parse_assignment(doc)


async def test_assignment_with_etag_then_304() -> None:
    """The first fetch gets the document and its ETag; the next sends If-None-Match: 304."""
    centre = await FakeCentre(targets=[("1", "127.0.0.1"), ("2", "127.0.0.2")]).start()
    client = CentralClient(centre.url, centre.token)
    try:
        got = await client.assignment(None)
        assert got is not None
        assignment, etag = got
        assert assignment.targets == (("1", "127.0.0.1"), ("2", "127.0.0.2"))
        assert assignment.agent == "POP-T" and etag == f'"{assignment.version}"'
        assert await client.assignment(etag) is None
        centre.targets.append(("3", "127.0.0.3"))
        changed = await client.assignment(etag)
        assert changed is not None and len(changed[0].targets) == 3
        assert centre.assignment_gets == [None, etag, etag]
    finally:
        await client.close()
        await centre.stop()


async def test_assignment_refused_and_unreachable() -> None:
    centre = await FakeCentre().start()
    wrong = CentralClient(centre.url, "not-the-token")
    try:
        with pytest.raises(AssignmentError) as refused:
            await wrong.assignment(None)
        assert refused.value.outcome.verdict is Verdict.REFUSED
    finally:
        await wrong.close()
        await centre.stop()
    gone = CentralClient(centre.url, centre.token, timeout=2)
    try:
        with pytest.raises(AssignmentError) as down:
            await gone.assignment(None)
        assert down.value.outcome.verdict is Verdict.RETRY and down.value.outcome.status is None
    finally:
        await gone.close()


async def test_send_outcomes_against_the_fake_centre() -> None:
    """Ack with the parsed answer; a big report arrives gzip; 400, 401, 503 + Retry-After."""
    centre = await FakeCentre().start()
    client = CentralClient(centre.url, centre.token)
    report = {"epoch": "e", "seq": 1, "obs": [[str(i), 1764657600.5, 0] for i in range(100)]}
    try:
        ok = await client.send(report)
        assert ok.verdict is Verdict.ACK and ok.answer is not None and ok.answer.accepted == 100
        assert centre.encodings == ["gzip"] and centre.received[0] == report
        again = await client.send(report)
        assert again.answer is not None and again.answer.duplicate
        centre.status = 400
        bad = await client.send({**report, "seq": 2})
        assert bad.verdict is Verdict.BAD and bad.status == 400 and "obs" in bad.detail
        centre.status, centre.retry_after = 503, "12"
        busy = await client.send({**report, "seq": 3})
        assert busy.verdict is Verdict.RETRY and busy.retry_after == 12.0
        centre.status = None
        other = CentralClient(centre.url, "wrong")
        refused = await other.send({**report, "seq": 4})
        await other.close()
        assert refused.verdict is Verdict.REFUSED and refused.status == 401
        assert client.bytes_sent > 0
    finally:
        await client.close()
        await centre.stop()
    gone = CentralClient(centre.url, centre.token, timeout=2)
    down = await gone.send(report)
    await gone.close()
    assert down.verdict is Verdict.RETRY and down.status is None and down.detail
