"""Labels of the web pages, in Indonesian and English (every label in both languages)."""

from __future__ import annotations

from i18n import LANGS, Lang
from i18n.durations import UNITS
from i18n.words import KIND, SEVERITY, STATUS, kind_label, severity_label, status_label

__all__ = ["LANGS", "Lang", "js_labels", "label", "labels", "lang_of", "other"]

LABELS: dict[str, dict[Lang, str]] = {
    # header, navigation, common
    "nav_dashboard": {"id": "Dasbor", "en": "Dashboard"},
    "nav_map": {"id": "Peta", "en": "Map"},
    "nav_notifications": {"id": "Notifikasi", "en": "Notifications"},
    "notifications": {"id": "Notifikasi", "en": "Notifications"},
    "no_notifications": {"id": "Belum ada notifikasi.", "en": "No notifications yet."},
    "more_stored": {
        "id": "{count} notifikasi lain tersimpan (anggota gangguan massal) — muat ulang halaman",
        "en": "{count} more notifications stored (members of a mass outage) — reload the page",
    },
    "all_notifications": {"id": "Semua notifikasi", "en": "All notifications"},
    "live_connected": {"id": "Langsung", "en": "Live"},
    "live_reconnecting": {"id": "Menyambung ulang…", "en": "Reconnecting…"},
    "lang_switch": {"id": "English", "en": "Bahasa Indonesia"},
    "lang_switch_title": {"id": "Ganti bahasa", "en": "Change language"},
    "logout": {"id": "Keluar", "en": "Log out"},
    "close": {"id": "Tutup", "en": "Close"},
    "none": {"id": "tidak ada", "en": "none"},
    "more_rows": {"id": "dan {n} lainnya", "en": "and {n} more"},
    # dashboard
    "dashboard_title": {"id": "Dasbor jaringan", "en": "Network dashboard"},
    "stat_total": {"id": "Total ONT", "en": "Total ONTs"},
    "stat_online": {"id": "Online", "en": "Online"},
    "stat_offline": {"id": "Mati", "en": "Offline"},
    "stat_unknown": {"id": "Tidak diketahui", "en": "Unknown"},
    "stat_unread": {"id": "Belum dibaca", "en": "Unread"},
    "incidents_by_severity": {"id": "Insiden per tingkat", "en": "Incidents by severity"},
    "outages": {"id": "Gangguan massal", "en": "Mass outages"},
    "no_outages": {"id": "Tidak ada gangguan massal.", "en": "No mass outages."},
    "outage_line": {
        "id": "{count} ONT mati sejak {since}",
        "en": "{count} ONTs down since {since}",
    },
    "acked": {"id": "diakui", "en": "acknowledged"},
    "worst_areas": {"id": "Area terburuk", "en": "Worst areas"},
    "no_worst_areas": {"id": "Semua area normal.", "en": "Every area is fine."},
    "area_line": {
        "id": "{offline} dari {total} mati, {critical} kritis",
        "en": "{offline} of {total} offline, {critical} critical",
    },
    "offline_list": {"id": "ONT mati (terlama dulu)", "en": "Offline ONTs (longest first)"},
    "no_offline": {"id": "Semua ONT online.", "en": "Every ONT is online."},
    "latest_notifications": {"id": "Notifikasi terbaru", "en": "Latest notifications"},
    "agents": {"id": "Agen probe", "en": "Probe agents"},
    "col_agent": {"id": "Agen", "en": "Agent"},
    "col_state": {"id": "Keadaan", "en": "State"},
    "col_onts": {"id": "ONT", "en": "ONTs"},
    "col_contact": {"id": "Kontak terakhir", "en": "Last contact"},
    "col_sweep": {"id": "Sapuan", "en": "Sweep"},
    "col_queue": {"id": "Antrean", "en": "Queue"},
    "agent_ok": {"id": "normal", "en": "ok"},
    "agent_waiting": {"id": "belum pernah melapor", "en": "no report yet"},
    "agent_blind": {"id": "tidak bisa menjangkau ONT-nya", "en": "cannot reach its ONTs"},
    "agent_lost": {"id": "hilang sejak {since}", "en": "lost since {since}"},
    "agent_revoked": {"id": "dicabut", "en": "revoked"},
    "ago": {"id": "{dur} lalu", "en": "{dur} ago"},
    "never": {"id": "belum pernah", "en": "never"},
    # columns
    "col_ont": {"id": "ONT", "en": "ONT"},
    "col_name": {"id": "Nama", "en": "Name"},
    "col_area": {"id": "Area", "en": "Area"},
    "col_rto": {"id": "RTO", "en": "RTO"},
    "col_since": {"id": "Sejak", "en": "Since"},
    "col_duration": {"id": "Lama", "en": "Duration"},
    "col_time": {"id": "Waktu", "en": "Time"},
    "col_severity": {"id": "Tingkat", "en": "Severity"},
    "col_kind": {"id": "Jenis", "en": "Kind"},
    "col_message": {"id": "Pesan", "en": "Message"},
    "col_status": {"id": "Status", "en": "Status"},
    "col_source": {"id": "Sumber", "en": "Source"},
    "col_reason": {"id": "Alasan", "en": "Reason"},
    "col_actions": {"id": "Tindakan", "en": "Actions"},
    # map
    "map_title": {"id": "Peta ONT", "en": "ONT map"},
    "filter_status": {"id": "Status", "en": "Status"},
    "filter_area": {"id": "Area", "en": "Area"},
    "all_statuses": {"id": "Semua status", "en": "All statuses"},
    "all_areas": {"id": "Semua area", "en": "All areas"},
    "search": {"id": "Cari ID atau nama", "en": "Search id or name"},
    "kiosk": {"id": "Layar penuh (NOC)", "en": "Full screen (NOC)"},
    "legend": {"id": "Keterangan", "en": "Legend"},
    "legend_offline": {"id": "Mati/kritis", "en": "Offline/critical"},
    "legend_warning": {"id": "Peringatan", "en": "Warning"},
    "legend_online": {"id": "Online", "en": "Online"},
    "legend_unknown": {"id": "Tidak diketahui", "en": "Unknown"},
    "shown_count": {"id": "{shown} dari {total} ONT", "en": "{shown} of {total} ONTs"},
    "no_location": {"id": "{n} ONT tanpa lokasi", "en": "{n} ONTs without a location"},
    "shortcuts": {"id": "Pintasan keyboard", "en": "Keyboard shortcuts"},
    "key_search": {"id": "cari", "en": "search"},
    "key_offline": {"id": "hanya yang mati", "en": "offline only"},
    "key_notifications": {"id": "notifikasi", "en": "notifications"},
    "key_fullscreen": {"id": "layar penuh / kiosk", "en": "full screen / kiosk"},
    "key_help": {"id": "daftar pintasan ini", "en": "this list"},
    "popup_customer": {"id": "Pelanggan", "en": "Customer"},
    "popup_ip": {"id": "IP", "en": "IP"},
    "popup_location": {"id": "Lokasi", "en": "Location"},
    "popup_details": {"id": "Detail dan riwayat", "en": "Details and history"},
    "popup_navigate": {"id": "Navigasi (Google Maps)", "en": "Navigate (Google Maps)"},
    "map_attribution": {
        "id": "Peta © kontributor OpenStreetMap",
        "en": "Map © OpenStreetMap contributors",
    },
    # notifications page
    "notifications_title": {"id": "Riwayat notifikasi", "en": "Notification history"},
    "filter": {"id": "Saring", "en": "Filter"},
    "filter_severity": {"id": "Tingkat", "en": "Severity"},
    "all_severities": {"id": "Semua tingkat", "en": "All severities"},
    "filter_ont": {"id": "ID ONT", "en": "ONT id"},
    "filter_unread": {"id": "Hanya yang belum dibaca", "en": "Unread only"},
    "mark_read": {"id": "Tandai dibaca", "en": "Mark read"},
    "mark_all_read": {"id": "Tandai semua dibaca", "en": "Mark all read"},
    "read": {"id": "dibaca", "en": "read"},
    "unread": {"id": "belum dibaca", "en": "unread"},
    "next_page": {"id": "Lebih lama →", "en": "Older →"},
    "prev_page": {"id": "← Lebih baru", "en": "← Newer"},
    "times_in": {"id": "Waktu dalam zona {tz}", "en": "Times in {tz}"},
    # ONT page
    "ont_title": {"id": "ONT {id}", "en": "ONT {id}"},
    "ont_state": {"id": "Keadaan", "en": "State"},
    "ont_incident": {"id": "Insiden", "en": "Incident"},
    "no_incident": {"id": "Tidak ada insiden terbuka.", "en": "No open incident."},
    "incident_opened": {"id": "Dibuka", "en": "Opened"},
    "incident_acked": {"id": "Diakui", "en": "Acknowledged"},
    "incident_not_acked": {"id": "Belum diakui", "en": "Not acknowledged"},
    "muted_until": {"id": "Dibisukan sampai {until}", "en": "Muted until {until}"},
    "flapping": {"id": "Naik-turun (flapping)", "en": "Flapping"},
    "last_seen": {"id": "Terakhir terlihat", "en": "Last seen"},
    "last_on": {"id": "Terakhir online", "en": "Last online"},
    "history": {"id": "Riwayat", "en": "History"},
    "no_history": {"id": "Belum ada riwayat.", "en": "No history yet."},
    "location": {"id": "Lokasi", "en": "Location"},
    "open_on_map": {"id": "Lihat di peta", "en": "Show on the map"},
    "action_ack": {"id": "Akui", "en": "Acknowledge"},
    "action_mute": {"id": "Bisukan 1 jam", "en": "Mute 1 h"},
    "action_unmute": {"id": "Cabut bisu", "en": "Unmute"},
    "action_done": {"id": "Selesai.", "en": "Done."},
    "action_failed": {"id": "Gagal: {error}", "en": "Failed: {error}"},
    "ont_notifications": {"id": "Notifikasi ONT ini", "en": "This ONT's notifications"},
    # errors
    "error_title": {"id": "Kesalahan {status}", "en": "Error {status}"},
    "error_404": {"id": "Halaman tidak ditemukan.", "en": "Page not found."},
    "error_unknown_ont": {"id": "ONT {id} tidak dikenal.", "en": "Unknown ONT {id}."},
    "error_400": {"id": "Permintaan tidak valid: {detail}", "en": "Invalid request: {detail}"},
    "error_500": {
        "id": "Terjadi kesalahan di server.",
        "en": "Something went wrong on the server.",
    },
    "error_503": {
        "id": "Penyimpanan tidak tersedia, coba lagi.",
        "en": "Storage unavailable, try again.",
    },
    "error_other": {
        "id": "Permintaan tidak dapat dilayani.",
        "en": "The request could not be served.",
    },
    "back_home": {"id": "Kembali ke dasbor", "en": "Back to the dashboard"},
}

# The login page's labels (it renders before any other page's context exists).
LOGIN_LABELS: dict[str, dict[Lang, str]] = {
    "title": {"id": "Masuk", "en": "Log in"},
    "username": {"id": "Nama pengguna", "en": "User name"},
    "password": {"id": "Kata sandi", "en": "Password"},
    "submit": {"id": "Masuk", "en": "Log in"},
    "failed": {
        "id": "Nama pengguna atau kata sandi salah.",
        "en": "Wrong user name or password.",
    },
    "throttled": {
        "id": "Terlalu banyak percobaan gagal. Coba lagi dalam {seconds} detik.",
        "en": "Too many failed attempts. Try again in {seconds} seconds.",
    },
    "bad_request": {
        "id": "Isi nama pengguna dan kata sandi.",
        "en": "Enter a user name and a password.",
    },
    "logged_out": {"id": "Anda sudah keluar.", "en": "You are logged out."},
}

# Labels the ES modules need (markers, tooltips, popups, toasts, live status, durations).
JS_KEYS: tuple[str, ...] = tuple(
    k
    for k in LABELS
    if k.startswith(("live_", "popup_", "legend_", "agent_"))
    or k
    in {
        "col_rto",
        "col_since",
        "col_status",
        "action_ack",
        "col_severity",
        "col_reason",
        "incident_opened",
        "incident_acked",
        "incident_not_acked",
        "no_incident",
        "shown_count",
        "mark_read",
        "read",
        "unread",
        "acked",
        "outage_line",
        "area_line",
        "action_done",
        "action_failed",
        "no_notifications",
        "more_stored",
        "no_offline",
        "no_outages",
        "no_worst_areas",
        "close",
        "ago",
        "never",
    }
)


def lang_of(value: str | None, default: str = "id") -> Lang:
    """A supported language code: value if supported, else default, else Indonesian."""
    if value in LANGS:
        return value  # type: ignore[return-value]
    return default if default in LANGS else "id"  # type: ignore[return-value]


def other(lang: Lang) -> Lang:
    """The language the switch offers."""
    return "en" if lang == "id" else "id"


def words(lang: Lang) -> dict[str, str]:
    """The bot's words for statuses, severities, kinds and duration units (i18n/)."""
    out = {f"status_{k}": status_label(k, lang) for k in STATUS}
    out.update({f"severity_{k}": severity_label(k, lang) for k in SEVERITY})
    out.update({f"kind_{k}": kind_label(k, lang) for k in KIND})
    units = UNITS.get(lang, UNITS["en"])
    out.update({f"unit_{k}": u for k, u in zip(("d", "h", "m", "s"), units, strict=True)})
    return out


def labels(lang: Lang) -> dict[str, str]:
    """Every label in one language (templates read them as t.<key>)."""
    return {**{key: entry[lang] for key, entry in LABELS.items()}, **words(lang)}


def js_labels(lang: Lang) -> dict[str, str]:
    """The labels the ES modules use, in one language."""
    return {**{key: LABELS[key][lang] for key in JS_KEYS}, **words(lang)}


def label(lang: Lang, key: str, **values: object) -> str:
    """One label with its {placeholders} filled (plain text; templates escape it)."""
    return LABELS[key][lang].format(**values)
