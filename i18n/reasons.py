"""Reason codes rendered as text: one template per code and language, parameters by name.

Parameters are rendered by their name: `*_s` and `seconds` as durations, `severity` and
`status` as their labels, `cause` and `parts` as nested reasons, `area` and `ip` with a word
for "none"; other whole numbers with their thousands grouped ('1.240' / '1,240'). A missing
parameter shows as '?', never as an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from i18n import Lang
from i18n.durations import format_duration
from i18n.numbers import format_count
from i18n.words import severity_label, status_label
from monitor.model import Reason, ReasonCode

TEMPLATES: dict[ReasonCode, dict[Lang, str]] = {
    ReasonCode.WENT_OFF: {"id": "berubah jadi OFF", "en": "went OFF"},
    ReasonCode.RTO_AT_THRESHOLD: {
        "id": "rto {rto}, mencapai batas kritis {threshold}",
        "en": "rto {rto}, at or above the critical limit of {threshold}",
    },
    ReasonCode.RTO_ABOVE_ZERO: {"id": "rto {rto}, lebih dari 0", "en": "rto {rto}, above 0"},
    ReasonCode.OFF_LONGER_THAN: {
        "id": "OFF lebih dari {seconds}",
        "en": "OFF for more than {seconds}",
    },
    ReasonCode.MASS_OUTAGE_MEMBER: {
        "id": "bagian dari gangguan massal di {area}",
        "en": "part of a mass outage in {area}",
    },
    ReasonCode.RECOVERED: {"id": "ON lagi, rto 0", "en": "ON again, rto 0"},
    ReasonCode.NO_PROBLEM: {
        "id": "tidak ada masalah yang diketahui",
        "en": "no problem known",
    },
    ReasonCode.UNCHANGED: {"id": "ulangan: tidak ada perubahan", "en": "repeat: nothing changed"},
    ReasonCode.INVALID_IP: {"id": "alamat IP tidak valid: {ip}", "en": "invalid IP address: {ip}"},
    ReasonCode.FLAPPING: {
        "id": "{transitions} kali berganti ON/OFF dalam {window_s}",
        "en": "{transitions} ON/OFF changes in {window_s}",
    },
    ReasonCode.FLAPPING_ENDED: {
        "id": "stabil selama {window_s}, sekarang {status}",
        "en": "stable for {window_s}, now {status}",
    },
    ReasonCode.REMINDER: {
        "id": "masih {severity}, belum diakui selama {open_s}: {cause}",
        "en": "still {severity}, unacknowledged for {open_s}: {cause}",
    },
    ReasonCode.MUTE_ENDED: {
        "id": "bisu berakhir; masih {severity}: {cause}",
        "en": "mute ended; still {severity}: {cause}",
    },
    ReasonCode.MASS_OUTAGE: {
        "id": "{count} dari {size} ONT OFF dalam {window_s}",
        "en": "{count} of {size} ONTs OFF within {window_s}",
    },
    ReasonCode.MASS_OUTAGE_ENDED: {
        "id": "{back} dari {members} ONT kembali",
        "en": "{back} of {members} ONTs back",
    },
    ReasonCode.AREA_REMINDER: {
        "id": "masih {down} dari {size} ONT OFF, belum diakui selama {open_s}",
        "en": "still {down} of {size} ONTs OFF, unacknowledged for {open_s}",
    },
    ReasonCode.AREA_STILL_DOWN: {"id": "{down} ONT masih mati", "en": "{down} ONTs still down"},
    ReasonCode.BELOW_THRESHOLD: {
        "id": "{count} baru mati: di bawah ambang",
        "en": "{count} recently down: below the threshold",
    },
    ReasonCode.NO_AREA: {"id": "tanpa area", "en": "no area"},
    ReasonCode.NOTHING_DUE: {"id": "tidak ada yang jatuh tempo", "en": "nothing due"},
    ReasonCode.SEVERAL: {"id": "{parts}", "en": "{parts}"},
    ReasonCode.MONITOR_BLIND: {
        "id": "{silent} dari {targets} alamat ONT diam dalam satu sapuan: kemungkinan besar "
        "jaringan pemantau sendiri yang terganggu; alarm ONT ditahan sampai ada balasan lagi",
        "en": "{silent} of {targets} ONT addresses silent in one sweep: the monitor's own "
        "network is the likely fault; ONT alerts are held until replies come back",
    },
    ReasonCode.MONITOR_SEES: {
        "id": "balasan kembali ({replied} dari {targets}): pemantauan berjalan lagi",
        "en": "replies are back ({replied} of {targets}): probing resumed",
    },
    ReasonCode.AGENT_LOST: {
        "id": "agen probe {agent} hilang, {onts} ONT tidak terpantau (diam {silent_s})",
        "en": "probe agent {agent} lost, {onts} ONTs unobserved (silent {silent_s})",
    },
    ReasonCode.AGENT_BACK: {
        "id": "agen probe {agent} kembali, {onts} ONT terpantau lagi (hilang {away_s})",
        "en": "probe agent {agent} back, {onts} ONTs observed again (away {away_s})",
    },
    ReasonCode.AGENT_BLIND: {
        "id": "agen probe {agent} tidak bisa menjangkau ONT-nya: {silent} dari {targets} alamat diam "
        "dalam satu sapuan; alarm ONT-nya ditahan sampai ada balasan lagi",
        "en": "probe agent {agent} cannot reach its ONTs: {silent} of {targets} addresses "
        "silent in one sweep; their alerts are held until replies come back",
    },
    ReasonCode.AGENT_SEES: {
        "id": "agen probe {agent} menjangkau ONT-nya lagi ({replied} dari {targets} membalas)",
        "en": "probe agent {agent} reaches its ONTs again ({replied} of {targets} replied)",
    },
    ReasonCode.UNOBSERVED: {
        "id": "tidak terpantau: agen probe {agent} hilang",
        "en": "unobserved: probe agent {agent} is lost",
    },
    ReasonCode.STALE: {
        "id": "lebih lama dari pengamatan terakhir: tidak diterapkan",
        "en": "older than the last observation: not applied",
    },
    ReasonCode.LEGACY: {"id": "{text}", "en": "{text}"},
}

# Added to a template when the parameter is present and not zero.
EXTRAS: dict[ReasonCode, tuple[str, dict[Lang, str]]] = {
    ReasonCode.MASS_OUTAGE_ENDED: (
        "still_off",
        {"id": ", {still_off} masih OFF", "en": ", {still_off} still OFF"},
    ),
}

NONE_WORDS: dict[str, dict[Lang, str]] = {
    "area": {"id": "seluruh jaringan", "en": "the whole network"},
    "ip": {"id": "kosong", "en": "empty"},
}


class _Values(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def render(reason: Reason | Mapping[str, Any] | str | None, lang: Lang) -> str:
    """The reason as one plain-text phrase in lang (a stored dict or old text works too)."""
    r = reason if isinstance(reason, Reason) else Reason.from_record(reason)
    texts = TEMPLATES.get(r.code, TEMPLATES[ReasonCode.LEGACY])
    template = texts.get(lang) or texts["en"]
    extra = EXTRAS.get(r.code)
    if extra is not None and r.param(extra[0]):
        template += extra[1].get(lang) or extra[1]["en"]
    values = _Values({name: _value(name, value, lang) for name, value in r.params})
    return template.format_map(values)


def _value(name: str, value: object, lang: Lang) -> str:
    if isinstance(value, Reason):
        return render(value, lang)
    if isinstance(value, tuple):
        return "; ".join(render(v, lang) for v in value)
    if name in NONE_WORDS and not value:
        words = NONE_WORDS[name]
        return words.get(lang) or words["en"]
    if value is None:
        return "?"
    if (name == "seconds" or name.endswith("_s")) and isinstance(value, int | float):
        return format_duration(float(value), lang)
    if name == "severity":
        return severity_label(str(value), lang)
    if name == "status":
        return status_label(str(value), lang)
    if isinstance(value, int) and not isinstance(value, bool):
        return format_count(value, lang)  # '1.240 ONT' / '1,240 ONTs'
    return str(value)
