"""Names of statuses, severities and event kinds in Indonesian and English."""

from __future__ import annotations

from i18n import Lang

STATUS: dict[str, dict[Lang, str]] = {
    "ON": {"id": "ON", "en": "ON"},
    "OFF": {"id": "OFF", "en": "OFF"},
    "UNKNOWN": {"id": "TIDAK DIKETAHUI", "en": "UNKNOWN"},
}

SEVERITY: dict[str, dict[Lang, str]] = {
    "ok": {"id": "ok", "en": "ok"},
    "warning": {"id": "peringatan", "en": "warning"},
    "critical": {"id": "kritis", "en": "critical"},
}

KIND: dict[str, dict[Lang, str]] = {
    "opened": {"id": "insiden baru", "en": "new incident"},
    "escalated": {"id": "naik tingkat", "en": "escalated"},
    "resolved": {"id": "pulih", "en": "recovered"},
    "reminder": {"id": "pengingat", "en": "reminder"},
    "invalid_ip": {"id": "IP tidak valid", "en": "invalid IP"},
    "flapping": {"id": "naik-turun", "en": "flapping"},
    "flapping_ended": {"id": "stabil lagi", "en": "stable again"},
    "mass_outage": {"id": "gangguan massal", "en": "mass outage"},
    "mass_outage_resolved": {"id": "gangguan massal pulih", "en": "mass outage resolved"},
    "monitor_offline": {"id": "pemantau buta jaringan", "en": "monitor cannot see the network"},
    "monitor_online": {"id": "pemantau melihat lagi", "en": "monitor sees the network again"},
    "agent_lost": {"id": "agen probe hilang", "en": "probe agent lost"},
    "agent_back": {"id": "agen probe kembali", "en": "probe agent back"},
}


def _word(table: dict[str, dict[Lang, str]], key: str, lang: Lang) -> str:
    entry = table.get(str(key))
    if entry is None:
        return str(key).replace("_", " ")
    return entry.get(lang) or entry["en"]


def status_label(status: str, lang: Lang) -> str:
    """ON / OFF (the same in both languages) or TIDAK DIKETAHUI / UNKNOWN."""
    return _word(STATUS, str(status).upper(), lang)


def severity_label(sev: str, lang: Lang) -> str:
    """ok / peringatan / kritis (id) or ok / warning / critical (en), lower case."""
    return _word(SEVERITY, str(sev).lower(), lang)


def kind_label(kind: str, lang: Lang) -> str:
    """What happened, e.g. 'pulih' / 'recovered', lower case; unknown kinds as they are."""
    return _word(KIND, str(kind), lang)
