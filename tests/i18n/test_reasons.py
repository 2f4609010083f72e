"""Every reason code rendered in Indonesian and English, table-driven."""

from __future__ import annotations

import json

import pytest

from i18n.reasons import render
from monitor.model import Reason, ReasonCode
from tests.i18n.language import english_in

R = Reason.of
WENT_OFF = Reason(ReasonCode.WENT_OFF)
RTO3 = R(ReasonCode.RTO_AT_THRESHOLD, rto=3, threshold=3)

# reason, Indonesian, English
CASES: list[tuple[Reason, str, str]] = [
    (WENT_OFF, "berubah jadi OFF", "went OFF"),
    (RTO3, "rto 3, mencapai batas kritis 3", "rto 3, at or above the critical limit of 3"),
    (R(ReasonCode.RTO_ABOVE_ZERO, rto=1), "rto 1, lebih dari 0", "rto 1, above 0"),
    (R(ReasonCode.OFF_LONGER_THAN, seconds=3600), "OFF lebih dari 1 jam", "OFF for more than 1 h"),
    (
        R(ReasonCode.MASS_OUTAGE_MEMBER, area="Baciro"),
        "bagian dari gangguan massal di Baciro",
        "part of a mass outage in Baciro",
    ),
    (
        R(ReasonCode.MASS_OUTAGE_MEMBER, area=""),
        "bagian dari gangguan massal di seluruh jaringan",
        "part of a mass outage in the whole network",
    ),
    (Reason(ReasonCode.RECOVERED), "ON lagi, rto 0", "ON again, rto 0"),
    (Reason(ReasonCode.NO_PROBLEM), "tidak ada masalah yang diketahui", "no problem known"),
    (Reason(ReasonCode.UNCHANGED), "ulangan: tidak ada perubahan", "repeat: nothing changed"),
    (
        R(ReasonCode.INVALID_IP, ip="127.0.0.300"),
        "alamat IP tidak valid: 127.0.0.300",
        "invalid IP address: 127.0.0.300",
    ),
    (R(ReasonCode.INVALID_IP, ip=""), "alamat IP tidak valid: kosong", "invalid IP address: empty"),
    (
        R(ReasonCode.FLAPPING, transitions=6, window_s=600),
        "6 kali berganti ON/OFF dalam 10 mnt",
        "6 ON/OFF changes in 10 min",
    ),
    (
        R(ReasonCode.FLAPPING_ENDED, window_s=600, status="ON"),
        "stabil selama 10 mnt, sekarang ON",
        "stable for 10 min, now ON",
    ),
    (
        R(ReasonCode.FLAPPING_ENDED, window_s=600, status="UNKNOWN"),
        "stabil selama 10 mnt, sekarang TIDAK DIKETAHUI",
        "stable for 10 min, now UNKNOWN",
    ),
    (
        R(ReasonCode.REMINDER, severity="critical", open_s=7500, cause=RTO3),
        "masih kritis, belum diakui selama 2 jam 5 mnt: rto 3, mencapai batas kritis 3",
        "still critical, unacknowledged for 2 h 5 min: rto 3, at or above the critical limit of 3",
    ),
    (
        R(ReasonCode.MUTE_ENDED, severity="warning", cause=WENT_OFF),
        "bisu berakhir; masih peringatan: berubah jadi OFF",
        "mute ended; still warning: went OFF",
    ),
    (
        R(ReasonCode.MASS_OUTAGE, count=8, size=20, window_s=120),
        "8 dari 20 ONT OFF dalam 2 mnt",
        "8 of 20 ONTs OFF within 2 min",
    ),
    (
        R(ReasonCode.MASS_OUTAGE_ENDED, back=10, members=12, still_off=2),
        "10 dari 12 ONT kembali, 2 masih OFF",
        "10 of 12 ONTs back, 2 still OFF",
    ),
    (
        R(ReasonCode.MASS_OUTAGE_ENDED, back=12, members=12, still_off=0),
        "12 dari 12 ONT kembali",
        "12 of 12 ONTs back",
    ),
    (
        R(ReasonCode.AREA_REMINDER, down=10, size=40, open_s=7500),
        "masih 10 dari 40 ONT OFF, belum diakui selama 2 jam 5 mnt",
        "still 10 of 40 ONTs OFF, unacknowledged for 2 h 5 min",
    ),
    (R(ReasonCode.AREA_STILL_DOWN, down=4), "4 ONT masih mati", "4 ONTs still down"),
    (
        R(ReasonCode.BELOW_THRESHOLD, count=2),
        "2 baru mati: di bawah ambang",
        "2 recently down: below the threshold",
    ),
    (Reason(ReasonCode.NO_AREA), "tanpa area", "no area"),
    (Reason(ReasonCode.NOTHING_DUE), "tidak ada yang jatuh tempo", "nothing due"),
    (
        R(ReasonCode.SEVERAL, parts=(Reason(ReasonCode.NOTHING_DUE), WENT_OFF)),
        "tidak ada yang jatuh tempo; berubah jadi OFF",
        "nothing due; went OFF",
    ),
    (
        R(ReasonCode.MONITOR_BLIND, silent=95, targets=100),
        "95 dari 100 alamat ONT diam dalam satu sapuan: kemungkinan besar jaringan pemantau "
        "sendiri yang terganggu; alarm ONT ditahan sampai ada balasan lagi",
        "95 of 100 ONT addresses silent in one sweep: the monitor's own network is the likely "
        "fault; ONT alerts are held until replies come back",
    ),
    (
        R(ReasonCode.MONITOR_SEES, replied=90, targets=100),
        "balasan kembali (90 dari 100): pemantauan berjalan lagi",
        "replies are back (90 of 100): probing resumed",
    ),
    (
        R(ReasonCode.AGENT_LOST, agent="POP-2", onts=1240, silent_s=45),
        "agen probe POP-2 hilang, 1.240 ONT tidak terpantau (diam 45 dtk)",
        "probe agent POP-2 lost, 1,240 ONTs unobserved (silent 45 s)",
    ),
    (
        R(ReasonCode.AGENT_BACK, agent="POP-2", onts=7, away_s=3700),
        "agen probe POP-2 kembali, 7 ONT terpantau lagi (hilang 1 jam 1 mnt)",
        "probe agent POP-2 back, 7 ONTs observed again (away 1 h 1 min)",
    ),
    (
        R(ReasonCode.AGENT_BLIND, agent="POP-2", silent=95, targets=100),
        "agen probe POP-2 tidak bisa menjangkau ONT-nya: 95 dari 100 alamat diam dalam satu "
        "sapuan; alarm ONT-nya ditahan sampai ada balasan lagi",
        "probe agent POP-2 cannot reach its ONTs: 95 of 100 addresses silent in one sweep; "
        "their alerts are held until replies come back",
    ),
    (
        R(ReasonCode.AGENT_SEES, agent="POP-2", replied=25000, targets=25000),
        "agen probe POP-2 menjangkau ONT-nya lagi (25.000 dari 25.000 membalas)",
        "probe agent POP-2 reaches its ONTs again (25,000 of 25,000 replied)",
    ),
    (
        R(ReasonCode.UNOBSERVED, agent="POP-2"),
        "tidak terpantau: agen probe POP-2 hilang",
        "unobserved: probe agent POP-2 is lost",
    ),
    (
        Reason(ReasonCode.STALE),
        "lebih lama dari pengamatan terakhir: tidak diterapkan",
        "older than the last observation: not applied",
    ),
    (Reason.legacy("went OFF"), "went OFF", "went OFF"),
]


def test_the_table_covers_every_code() -> None:
    assert {r.code for r, _, _ in CASES} == set(ReasonCode)


@pytest.mark.parametrize(("reason", "id_text", "en_text"), CASES, ids=lambda v: str(v)[:40])
def test_render_in_both_languages(reason: Reason, id_text: str, en_text: str) -> None:
    assert render(reason, "id") == id_text
    assert render(reason, "en") == en_text


@pytest.mark.parametrize("reason", [r for r, _, _ in CASES], ids=lambda r: r.code.value)
def test_stored_form_renders_the_same(reason: Reason) -> None:
    stored = json.loads(json.dumps(reason.record()))  # what a payload or history row holds
    assert Reason.from_record(stored) == reason
    for lang in ("id", "en"):
        assert render(stored, lang) == render(reason, lang)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "reason",
    [r for r, _, _ in CASES if r.code is not ReasonCode.LEGACY],
    ids=lambda r: r.code.value,
)
def test_indonesian_has_no_english_words(reason: Reason) -> None:
    text = render(reason, "id")
    assert english_in(text) == [], text
    assert "?" not in text  # every parameter the code needs was given and shown


def test_old_english_text_is_shown_as_it_was() -> None:
    assert render("rto_count 3 >= 3", "id") == "rto_count 3 >= 3"
    assert render(None, "en") == ""


def test_a_missing_parameter_shows_a_question_mark_not_an_error() -> None:
    assert render(Reason(ReasonCode.RTO_AT_THRESHOLD), "en") == (
        "rto ?, at or above the critical limit of ?"
    )


def test_an_unknown_stored_code_is_kept_as_text() -> None:
    assert render({"code": "from_the_future", "params": {}}, "id") == "from_the_future"


def test_text_is_plain_not_html() -> None:
    # Callers escape (Jinja autoescape, the bot's esc()): the renderer must not.
    assert render(R(ReasonCode.MASS_OUTAGE_MEMBER, area="A&B <x>"), "en").endswith("A&B <x>")
