"""Every text the bot says, in Indonesian and English, with HTML escaping and time formats."""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any

from i18n import LANGS, Lang
from i18n.durations import format_duration
from i18n.reasons import render as render_reason
from monitor.model import Reason


class Html(str):
    """Text that is already HTML (built from escaped parts); t() inserts it as is."""

    __slots__ = ()


def esc(value: object) -> Html:
    """User-supplied text escaped for parse mode HTML."""
    return Html(html.escape(str(value), quote=False))


def href(url: str) -> Html:
    """A URL escaped for an href attribute (the & in query strings must become &amp;)."""
    return Html(html.escape(url, quote=True))


TEXTS: dict[str, dict[Lang, str]] = {
    "refused": {
        "id": "⛔ Chat ini tidak diizinkan memakai bot ini.\nID chat: <code>{chat_id}</code>\n"
        "Minta operator menambahkannya ke ONTWATCH_ALLOWED_CHATS.",
        "en": "⛔ This chat may not use this bot.\nChat id: <code>{chat_id}</code>\n"
        "Ask the operator to add it to ONTWATCH_ALLOWED_CHATS.",
    },
    "start": {
        "id": "👋 <b>ontwatch</b> — pemantau ONT\nID chat: <code>{chat_id}</code>\n"
        "Akses: ✅ diizinkan{alert}\nKetik /help untuk daftar perintah.",
        "en": "👋 <b>ontwatch</b> — ONT monitor\nChat id: <code>{chat_id}</code>\n"
        "Access: ✅ allowed{alert}\nType /help for the commands.",
    },
    "start_alert": {"id": " (chat alarm)", "en": " (alert chat)"},
    "help": {
        "id": "<b>Perintah</b>\n"
        "/status — ringkasan jaringan\n"
        "/offline — ONT yang mati, terlama dulu\n"
        "/map [offline|AREA|ID] — peta\n"
        "/ont ID — detail, riwayat dan lokasi ONT\n"
        "/history [ID] — riwayat terbaru\n"
        "/ack ID|AREA — akui insiden atau gangguan massal area (hentikan pengingat)\n"
        "/mute ID|AREA 1h|30m|2d — bisukan alarm\n"
        "/unmute [ID|AREA] — cabut bisu (tanpa argumen: daftar)\n"
        "/subscribe AREA [warning|critical] — alarm area ke chat ini\n"
        "/unsubscribe [AREA] — berhenti langganan\n"
        "/lang id|en — bahasa\n"
        "📍 Kirim lokasi untuk melihat ONT mati terdekat.",
        "en": "<b>Commands</b>\n"
        "/status — network summary\n"
        "/offline — offline ONTs, longest first\n"
        "/map [offline|AREA|ID] — map\n"
        "/ont ID — an ONT's details, history and location\n"
        "/history [ID] — recent history\n"
        "/ack ID|AREA — acknowledge an incident or an area's mass outage (stops reminders)\n"
        "/mute ID|AREA 1h|30m|2d — silence alerts\n"
        "/unmute [ID|AREA] — lift a silence (no argument: list)\n"
        "/subscribe AREA [warning|critical] — an area's alerts in this chat\n"
        "/unsubscribe [AREA] — stop a subscription\n"
        "/lang id|en — language\n"
        "📍 Share a location to see the nearest offline ONTs.",
    },
    "status": {
        "id": "<b>Status jaringan</b> · {now}\n"
        "Total {total} · 🟢 online {online} · 🔴 offline {offline} · ⚪ tak diketahui {unknown}\n"
        "Notifikasi belum dibaca: {unread}\n"
        "Insiden: 🔴 kritis {critical} · ⚠️ peringatan {warning}",
        "en": "<b>Network status</b> · {now}\n"
        "Total {total} · 🟢 online {online} · 🔴 offline {offline} · ⚪ unknown {unknown}\n"
        "Unread notifications: {unread}\n"
        "Incidents: 🔴 critical {critical} · ⚠️ warning {warning}",
    },
    "status_areas": {"id": "\n<b>Area terburuk</b>", "en": "\n<b>Worst areas</b>"},
    "status_outages": {"id": "\n🚨 <b>Gangguan massal</b>", "en": "\n🚨 <b>Mass outages</b>"},
    "status_outage": {
        "id": "• {area}: {count} ONT sejak {since}{acked}",
        "en": "• {area}: {count} ONTs since {since}{acked}",
    },
    "status_outage_acked": {"id": " · diakui oleh {by}", "en": " · acknowledged by {by}"},
    "status_outage_unacked": {"id": " · belum diakui", "en": " · not acknowledged"},
    "status_area": {
        "id": "• {area}: {offline}/{total} offline, {critical} kritis",
        "en": "• {area}: {offline}/{total} offline, {critical} critical",
    },
    "no_area": {"id": "(tanpa area)", "en": "(no area)"},
    "status_agents": {"id": "\n📡 <b>Agen probe</b>", "en": "\n📡 <b>Probe agents</b>"},
    "status_agent": {
        "id": "• <b>{name}</b> · {state}\n    {onts} ONT · kontak terakhir {contact} · "
        "sapuan {sweep} · antrean {queue}",
        "en": "• <b>{name}</b> · {state}\n    {onts} ONTs · last contact {contact} · "
        "sweep {sweep} · queue {queue}",
    },
    "agent_ok": {"id": "✅ normal", "en": "✅ ok"},
    "agent_waiting": {"id": "⏳ belum pernah melapor", "en": "⏳ no report yet"},
    "agent_blind": {"id": "🛑 tidak bisa menjangkau ONT-nya", "en": "🛑 cannot reach its ONTs"},
    "agent_lost": {"id": "❌ hilang sejak {since}", "en": "❌ lost since {since}"},
    "agent_revoked": {"id": "⛔ dicabut", "en": "⛔ revoked"},
    "agent_ago": {"id": "{dur} lalu", "en": "{dur} ago"},
    "agent_never": {"id": "belum pernah", "en": "never"},
    "board": {
        "id": "📌 <b>Status jaringan</b> (diperbarui otomatis)\n"
        "Total {total} · 🟢 online {online} · 🔴 offline {offline} · ⚪ tak diketahui {unknown}\n"
        "Insiden terbuka: 🔴 kritis {critical} · ⚠️ peringatan {warning}",
        "en": "📌 <b>Network status</b> (updates itself)\n"
        "Total {total} · 🟢 online {online} · 🔴 offline {offline} · ⚪ unknown {unknown}\n"
        "Open incidents: 🔴 critical {critical} · ⚠️ warning {warning}",
    },
    "board_last": {
        "id": "\nPerubahan terakhir: {name} (id {id}) {what} · {at}",
        "en": "\nLast change: {name} (id {id}) {what} · {at}",
    },
    "board_quiet": {
        "id": "\nBelum ada perubahan sejak bot mulai.",
        "en": "\nNo change since the bot started.",
    },
    "offline_head": {
        "id": "<b>ONT offline: {count}</b> (hal. {page}/{pages})",
        "en": "<b>Offline ONTs: {count}</b> (page {page}/{pages})",
    },
    "offline_none": {"id": "✅ Semua ONT online.", "en": "✅ No ONT is offline."},
    "offline_line": {
        "id": "🔴 <b>{name}</b> (id {id}) · {area}\n    sejak {since} ({dur}) · rto {rto}",
        "en": "🔴 <b>{name}</b> (id {id}) · {area}\n    since {since} ({dur}) · rto {rto}",
    },
    "unknown_ont": {
        "id": "❓ ONT dengan id <code>{id}</code> tidak ada di inventaris.",
        "en": "❓ No ONT with id <code>{id}</code> in the inventory.",
    },
    "unknown_target": {
        "id": "❓ <code>{target}</code> bukan id ONT maupun nama area.\nArea: {areas}",
        "en": "❓ <code>{target}</code> is neither an ONT id nor an area name.\nAreas: {areas}",
    },
    "unknown_area": {
        "id": "❓ Area <code>{area}</code> tidak dikenal.\nArea: {areas}",
        "en": "❓ Unknown area <code>{area}</code>.\nAreas: {areas}",
    },
    "usage_ont": {"id": "Pemakaian: /ont ID", "en": "Usage: /ont ID"},
    "usage_ack": {"id": "Pemakaian: /ack ID|AREA", "en": "Usage: /ack ID|AREA"},
    "usage_mute": {
        "id": "Pemakaian: /mute ID|AREA DURASI — durasi seperti 30m, 1h, 2d (maks. 30d).",
        "en": "Usage: /mute ID|AREA DURATION — a duration such as 30m, 1h, 2d (at most 30d).",
    },
    "bad_duration": {
        "id": "❌ Durasi <code>{value}</code> tidak dimengerti. Tulis angka dan satuan: "
        "30m (menit), 1h (jam), 2d (hari); maks. 30d. Contoh: /mute 17 1h",
        "en": "❌ Cannot read the duration <code>{value}</code>. Write a number and a unit: "
        "30m (minutes), 1h (hours), 2d (days); at most 30d. Example: /mute 17 1h",
    },
    "usage_subscribe": {
        "id": "Pemakaian: /subscribe AREA [warning|critical]\nArea: {areas}",
        "en": "Usage: /subscribe AREA [warning|critical]\nAreas: {areas}",
    },
    "usage_lang": {"id": "Pemakaian: /lang id|en", "en": "Usage: /lang id|en"},
    "lang_set": {"id": "✅ Bahasa: Indonesia.", "en": "✅ Language: English."},
    "ont_head": {
        "id": "{icon} <b>{name}</b> (id <code>{id}</code>)\n"
        "Area: {area} · Lokasi: {location}\nPelanggan: {customer} · IP: {ip}\n"
        "Status: <b>{status}</b> sejak {since} ({dur}) · rto {rto}\n"
        "Terakhir terlihat: {seen}",
        "en": "{icon} <b>{name}</b> (id <code>{id}</code>)\n"
        "Area: {area} · Location: {location}\nCustomer: {customer} · IP: {ip}\n"
        "Status: <b>{status}</b> since {since} ({dur}) · rto {rto}\n"
        "Last seen: {seen}",
    },
    "ont_incident": {
        "id": "Insiden: <b>{severity}</b> sejak {opened} — {reason}{acked}",
        "en": "Incident: <b>{severity}</b> since {opened} — {reason}{acked}",
    },
    "ont_acked": {"id": " · diakui oleh {by}", "en": " · acknowledged by {by}"},
    "ont_muted": {"id": "🔕 Dibisukan sampai {until}", "en": "🔕 Muted until {until}"},
    "ont_flapping": {"id": "〰️ Naik-turun (ON/OFF berganti-ganti)", "en": "〰️ Flapping"},
    "history_head": {"id": "<b>Riwayat</b>{who}", "en": "<b>History</b>{who}"},
    "history_none": {"id": "Belum ada riwayat.", "en": "No history yet."},
    "history_line": {
        "id": "{at} · {who}{status} rto {rto} · {severity} · {reason}",
        "en": "{at} · {who}{status} rto {rto} · {severity} · {reason}",
    },
    "ack_done": {
        "id": "✅ Insiden {name} (id {id}) diakui: pengingat dihentikan.",
        "en": "✅ Incident of {name} (id {id}) acknowledged: reminders stopped.",
    },
    "ack_none": {
        "id": "ℹ️ {name} (id {id}) tidak punya insiden terbuka.",
        "en": "ℹ️ {name} (id {id}) has no open incident.",
    },
    "ack_already": {
        "id": "ℹ️ Insiden {name} (id {id}) sudah diakui oleh {by}.",
        "en": "ℹ️ The incident of {name} (id {id}) was already acknowledged by {by}.",
    },
    "ack_area_done": {
        "id": "✅ Gangguan massal di {area} diakui: pengingat dihentikan.",
        "en": "✅ Mass outage in {area} acknowledged: reminders stopped.",
    },
    "ack_area_none": {
        "id": "ℹ️ Tidak ada gangguan massal terbuka di {area}.",
        "en": "ℹ️ No open mass outage in {area}.",
    },
    "ack_area_already": {
        "id": "ℹ️ Gangguan massal di {area} sudah diakui oleh {by}.",
        "en": "ℹ️ The mass outage in {area} was already acknowledged by {by}.",
    },
    "muted": {
        "id": "🔕 {what} dibisukan sampai {until} ({dur}).",
        "en": "🔕 {what} muted until {until} ({dur}).",
    },
    "what_ont": {"id": "ONT {name} (id {id})", "en": "ONT {name} (id {id})"},
    "what_area": {"id": "Area {area}", "en": "Area {area}"},
    "unmuted": {"id": "🔔 {what}: bisu dicabut.", "en": "🔔 {what}: silence lifted."},
    "not_muted": {"id": "ℹ️ {what} tidak sedang dibisukan.", "en": "ℹ️ {what} is not muted."},
    "mutes_head": {"id": "<b>Bisu aktif</b>", "en": "<b>Active silences</b>"},
    "mutes_none": {"id": "Tidak ada yang dibisukan.", "en": "Nothing is muted."},
    "mute_line": {
        "id": "• {what} sampai {until} (oleh {by})",
        "en": "• {what} until {until} (by {by})",
    },
    "subscribed": {
        "id": "✅ Chat ini menerima alarm area {area} mulai {severity}.",
        "en": "✅ This chat gets the alerts of area {area} from {severity} up.",
    },
    "unsubscribed": {
        "id": "✅ Langganan dihentikan: {areas}.",
        "en": "✅ Unsubscribed from: {areas}.",
    },
    "not_subscribed": {
        "id": "ℹ️ Chat ini tidak berlangganan {area}.",
        "en": "ℹ️ This chat has no subscription for {area}.",
    },
    "subs_none": {"id": "ℹ️ Chat ini tidak punya langganan.", "en": "ℹ️ No subscriptions."},
    "bad_severity": {
        "id": "❌ Tingkat <code>{value}</code> tidak dikenal: pakai warning atau critical.",
        "en": "❌ Unknown level <code>{value}</code>: use warning or critical.",
    },
    "map_fallback": {
        "id": "🗺️ Peta tidak tersedia saat ini. Ringkasan:",
        "en": "🗺️ The map is not available right now. Summary:",
    },
    "map_caption": {
        "id": "🗺️ {view} · {offline} offline dari {total} · {now}",
        "en": "🗺️ {view} · {offline} offline of {total} · {now}",
    },
    "map_bad": {"id": "❌ {detail}", "en": "❌ {detail}"},
    "near_head": {
        "id": "<b>ONT offline terdekat</b>",
        "en": "<b>Nearest offline ONTs</b>",
    },
    "near_line": {
        "id": "🔴 <b>{name}</b> (id {id}) · {dist} · {area}\n    mati {dur} · "
        '<a href="{url}">navigasi</a>',
        "en": "🔴 <b>{name}</b> (id {id}) · {dist} · {area}\n    down {dur} · "
        '<a href="{url}">navigate</a>',
    },
    "near_none": {
        "id": "✅ Tidak ada ONT offline yang punya koordinat.",
        "en": "✅ No offline ONT with coordinates.",
    },
    "location_of": {
        "id": '📍 {name} (id {id}) · <a href="{url}">navigasi Google Maps</a>',
        "en": '📍 {name} (id {id}) · <a href="{url}">Google Maps directions</a>',
    },
    "no_location": {
        "id": "ℹ️ {name} (id {id}) tidak punya koordinat.",
        "en": "ℹ️ {name} (id {id}) has no coordinates.",
    },
    "button_gone": {
        "id": "Tombol ini sudah tidak berlaku.",
        "en": "This button no longer applies.",
    },
    "error": {
        "id": "⚠️ Gagal: {detail}. Coba lagi sebentar lagi.",
        "en": "⚠️ Failed: {detail}. Please try again shortly.",
    },
    # Alerts
    "sev_warning": {"id": "PERINGATAN", "en": "WARNING"},
    "sev_critical": {"id": "KRITIS", "en": "CRITICAL"},
    "sev_ok": {"id": "OK", "en": "OK"},
    "alert_problem": {
        "id": "{icon} <b>{severity}</b> · {name} (id {id})\nArea: {area} · {status} · rto {rto}\n"
        "Sebab: {reason} · {at}",
        "en": "{icon} <b>{severity}</b> · {name} (id {id})\nArea: {area} · {status} · rto {rto}\n"
        "Reason: {reason} · {at}",
    },
    "alert_escalated": {"id": "naik ke", "en": "escalated to"},
    "alert_resolved": {
        "id": "✅ <b>PULIH</b> · {name} (id {id})\nArea: {area} · ON lagi setelah mati {dur} · {at}",
        "en": "✅ <b>RECOVERED</b> · {name} (id {id})\nArea: {area} · ON again after {dur} down"
        " · {at}",
    },
    "alert_reminder": {
        "id": "🔁 <b>Pengingat {severity}</b> · {name} (id {id})\nArea: {area} · belum pulih: "
        "{reason} · {at}",
        "en": "🔁 <b>Reminder {severity}</b> · {name} (id {id})\nArea: {area} · still "
        "unresolved: {reason} · {at}",
    },
    "alert_flapping": {
        "id": "〰️ <b>NAIK-TURUN</b> · {name} (id {id})\nArea: {area} · {reason} · {at}",
        "en": "〰️ <b>FLAPPING</b> · {name} (id {id})\nArea: {area} · {reason} · {at}",
    },
    "alert_flapping_ended": {
        "id": "〰️ Stabil lagi · {name} (id {id}) · {at}",
        "en": "〰️ Stable again · {name} (id {id}) · {at}",
    },
    "alert_invalid_ip": {
        "id": "⚠️ <b>IP TIDAK VALID</b> · {name} (id {id})\nArea: {area} · {reason} · {at}",
        "en": "⚠️ <b>INVALID IP</b> · {name} (id {id})\nArea: {area} · {reason} · {at}",
    },
    "alert_mass": {
        "id": "🚨 <b>GANGGUAN MASSAL</b> · {area}\n{count} ONT mati · {reason} · {at}",
        "en": "🚨 <b>MASS OUTAGE</b> · {area}\n{count} ONTs down · {reason} · {at}",
    },
    "alert_mass_reminder": {
        "id": "🔁 <b>Pengingat GANGGUAN MASSAL</b> · {area}\n{count} ONT masih mati, sudah {dur}, "
        "belum diakui · {at}",
        "en": "🔁 <b>Reminder: MASS OUTAGE</b> · {area}\n{count} ONTs still down after {dur}, "
        "not acknowledged · {at}",
    },
    "alert_mass_resolved": {
        "id": "✅ <b>GANGGUAN MASSAL PULIH</b> · {area}\n{count} ONT kembali setelah {dur} · {at}",
        "en": "✅ <b>MASS OUTAGE RESOLVED</b> · {area}\n{count} ONTs back after {dur} · {at}",
    },
    "alert_monitor_offline": {
        "id": "🛑 <b>PEMANTAU TIDAK MELIHAT JARINGAN</b> · {reason} · {at}",
        "en": "🛑 <b>MONITOR CANNOT SEE THE NETWORK</b> · {reason} · {at}",
    },
    "alert_monitor_online": {
        "id": "✅ Pemantau melihat jaringan lagi · {reason} · {at}",
        "en": "✅ The monitor sees the network again · {reason} · {at}",
    },
    "alert_agent_lost": {
        "id": "📡 <b>AGEN PROBE HILANG</b> · {reason} · {at}",
        "en": "📡 <b>PROBE AGENT LOST</b> · {reason} · {at}",
    },
    "alert_agent_back": {
        "id": "✅ Agen probe kembali · {reason} · {at}",
        "en": "✅ Probe agent back · {reason} · {at}",
    },
    "alert_agent_blind": {
        "id": "🛑 <b>AGEN PROBE TIDAK MELIHAT ONT-NYA</b> · {reason} · {at}",
        "en": "🛑 <b>PROBE AGENT CANNOT SEE ITS ONTS</b> · {reason} · {at}",
    },
    "alert_agent_sees": {
        "id": "✅ Agen probe melihat ONT-nya lagi · {reason} · {at}",
        "en": "✅ The probe agent sees its ONTs again · {reason} · {at}",
    },
    "alert_other": {
        "id": "ℹ️ {kind} · {name} · {reason} · {at}",
        "en": "ℹ️ {kind} · {name} · {reason} · {at}",
    },
    "compact_head": {
        "id": "<b>{count} perubahan</b>: {summary}",
        "en": "<b>{count} changes</b>: {summary}",
    },
    "compact_more": {
        "id": "… dan {count} lagi (lihat /offline)",
        "en": "… and {count} more (see /offline)",
    },
    "mass_more": {"id": "… dan {count} lagi", "en": "… and {count} more"},
    "word_area": {"id": "area", "en": "area"},
    "word_all": {"id": "semua ONT", "en": "all ONTs"},
    "word_offline": {"id": "ONT offline", "en": "offline ONTs"},
    "network": {"id": "seluruh jaringan", "en": "the whole network"},
    # Buttons
    "btn_ack": {"id": "✅ Akui", "en": "✅ Ack"},
    "btn_mute": {"id": "🔕 Bisu 1j", "en": "🔕 Mute 1h"},
    "btn_map": {"id": "🗺️ Peta", "en": "🗺️ Map"},
    "btn_location": {"id": "📍 Lokasi", "en": "📍 Location"},
    # Command menu (setMyCommands)
    "cmd_start": {"id": "Mulai, ID chat dan akses", "en": "Start: chat id and access"},
    "cmd_help": {"id": "Daftar perintah", "en": "List of commands"},
    "cmd_status": {"id": "Ringkasan jaringan", "en": "Network summary"},
    "cmd_offline": {"id": "ONT yang mati", "en": "Offline ONTs"},
    "cmd_map": {"id": "Peta [offline|AREA|ID]", "en": "Map [offline|AREA|ID]"},
    "cmd_ont": {"id": "Detail ONT: /ont ID", "en": "ONT details: /ont ID"},
    "cmd_history": {"id": "Riwayat [ID]", "en": "History [ID]"},
    "cmd_ack": {"id": "Akui insiden: /ack ID|AREA", "en": "Acknowledge: /ack ID|AREA"},
    "cmd_mute": {"id": "Bisukan: /mute ID|AREA 1h", "en": "Mute: /mute ID|AREA 1h"},
    "cmd_unmute": {"id": "Cabut bisu / daftar bisu", "en": "Unmute / list mutes"},
    "cmd_subscribe": {"id": "Langganan alarm area", "en": "Subscribe to an area"},
    "cmd_unsubscribe": {"id": "Berhenti langganan", "en": "Unsubscribe"},
    "cmd_lang": {"id": "Bahasa: /lang id|en", "en": "Language: /lang id|en"},
}

COMMANDS: tuple[str, ...] = (
    "start",
    "help",
    "status",
    "offline",
    "map",
    "ont",
    "history",
    "ack",
    "mute",
    "unmute",
    "subscribe",
    "unsubscribe",
    "lang",
)


def t(lang: str, key: str, **values: object) -> Html:
    """The text for key in lang, with every value HTML-escaped unless it is already Html."""
    entry = TEXTS[key]
    template = entry.get(lang) or entry["en"]  # type: ignore[call-overload]
    safe = {k: v if isinstance(v, Html) else esc(v) for k, v in values.items()}
    return Html(template.format(**safe))


def duration(td: timedelta, lang: str) -> str:
    """Unambiguous duration: '2 jam 15 mnt', '4 dtk' (id) or '2 h 15 min', '4 s' (en)."""
    return format_duration(td, lang_of(lang, "en"))


def seconds(value: float | None, lang: str) -> str:
    """A short span such as a sweep's: '0,84 dtk' / '0.84 s' below a minute, else a duration."""
    if value is None:
        return "-"
    if value >= 60:
        return duration(timedelta(seconds=value), lang)
    unit = "dtk" if lang_of(lang, "en") == "id" else "s"
    text = f"{max(0.0, value):.2f}"
    return f"{text.replace('.', ',') if unit == 'dtk' else text} {unit}"


def reason(value: Reason | Mapping[str, Any] | str | None, lang: str) -> str:
    """A rule's reason code as plain text in lang (t() escapes it)."""
    return render_reason(value, lang_of(lang, "en"))


def when(at: datetime | None, tz: tzinfo) -> str:
    """A time in the configured zone, e.g. '27-11-2026 08:00 WIB'."""
    if at is None:
        return "-"
    return at.astimezone(tz).strftime("%d-%m-%Y %H:%M %Z").strip()


def distance(meters: float) -> str:
    """Distance for people walking or riding: metres below 1 km, else km with one decimal."""
    return f"{meters:.0f} m" if meters < 1000 else f"{meters / 1000:.1f} km"


def navigation_url(lat: float, lon: float) -> str:
    """Google Maps directions to a point (only ever sent as a link, never fetched)."""
    return f"https://www.google.com/maps/dir/?api=1&destination={lat:.6f},{lon:.6f}"


def lang_of(value: str | None, default: str) -> Lang:
    """A supported language code, else the default."""
    if value in LANGS:
        return value  # type: ignore[return-value]
    return default if default in LANGS else "id"  # type: ignore[return-value]
