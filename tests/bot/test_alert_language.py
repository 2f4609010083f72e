"""Indonesian all the way through: every alert and reply text about reasons has no English."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.alerts import compose
from bot.replies import history_text, ont_text
from bot.texts import TEXTS
from monitor.model import Event, Incident, Ont, OntState, Reason, ReasonCode, Severity, Status
from monitor.ports import HistoryRow, OutboxRow
from storage.codec import event_payload
from tests.fakes.bot_api import parse_html
from tests.i18n.language import english_in
from tests.i18n.test_notices import CASES, ONT

TZ = ZoneInfo("Asia/Jakarta")
NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
ONTS = {str(i): Ont(id=str(i), name=f"Rumah {i}", area="Baciro") for i in range(1, 6)}


def visible(text: str) -> str:
    return parse_html(text)[0]


def row(i: int, event: Event, with_ont: bool) -> OutboxRow:
    return OutboxRow(i, i, -100, 0, event, event_payload(event, ONT if with_ont else None))


@pytest.mark.parametrize(("event", "with_ont"), [c[:2] for c in CASES], ids=lambda v: str(v)[:30])
def test_every_alert_kind_in_indonesian_has_no_english(event: Event, with_ont: bool) -> None:
    (msg,) = compose(-100, [row(1, event, with_ont)], "id", TZ, ONTS.get)
    text = visible(msg.text)
    assert english_in(text) == [], text
    (en,) = compose(-100, [row(1, event, with_ont)], "en", TZ, ONTS.get)
    assert visible(en.text) != text  # English is its own text, not the Indonesian one


def test_the_four_second_outage_reads_as_seconds() -> None:
    resolved = CASES[2][0]
    (msg,) = compose(-100, [row(1, resolved, True)], "id", TZ, ONTS.get)
    text = visible(msg.text)
    assert "setelah mati 4 dtk" in text and not re.search(r"4 d\b", text)


def test_a_big_batch_in_indonesian_has_no_english() -> None:
    rows = [row(i + 1, CASES[i % len(CASES)][0], CASES[i % len(CASES)][1]) for i in range(400)]
    (msg,) = compose(-100, rows, "id", TZ, ONTS.get)
    text = visible(msg.text)
    assert "400 perubahan" in text and english_in(text) == [], english_in(text)


def test_ont_and_history_replies_render_reasons_in_the_chat_language() -> None:
    why = Reason.of(ReasonCode.RTO_AT_THRESHOLD, rto=3, threshold=3)
    state = OntState(
        ont_id="2",
        status=Status.OFF,
        rto_count=3,
        status_since=NOW - timedelta(minutes=5),
        incident=Incident(Severity.CRITICAL, NOW - timedelta(minutes=5), why),
    )
    history = [
        HistoryRow(1, "2", NOW, "probe", "OFF", 3, "critical", why),
        HistoryRow(2, "2", NOW, "push", "UNKNOWN", 0, "warning", Reason(ReasonCode.WENT_OFF)),
    ]
    id_text = visible(ont_text(ONT, state, history, None, "id", TZ, NOW))
    en_text = visible(ont_text(ONT, state, history, None, "en", TZ, NOW))
    assert "mencapai batas kritis 3" in id_text and "kritis" in id_text
    assert "TIDAK DIKETAHUI" in id_text and "peringatan" in id_text
    assert english_in(id_text) == [], id_text
    assert "at or above the critical limit of 3" in en_text and "UNKNOWN" in en_text
    old = [HistoryRow(3, "2", NOW, "push", "OFF", 3, "critical", Reason.legacy("rto_count 3 >= 3"))]
    assert "rto_count 3 &gt;= 3" in history_text(old, "id", TZ, one_ont=False)  # escaped


def test_no_indonesian_bot_text_has_english_words_of_the_rules() -> None:
    found = {}
    for key, entry in TEXTS.items():
        words = english_in(re.sub(r"\{\w+\}", "", entry["id"]))  # placeholders are not text
        if words:
            found[key] = words
    assert found == {}
