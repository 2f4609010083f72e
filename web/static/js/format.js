// Texts from the server (#page-texts) and times in the service's zone (body[data-tz]).

let labels = null;

export function texts() {
  if (labels === null) {
    const node = document.getElementById("page-texts");
    labels = node ? JSON.parse(node.textContent) : {};
  }
  return labels;
}

export function t(key, values) {
  let text = texts()[key];
  if (text === undefined) text = key;
  if (values) {
    text = text.replace(/\{(\w+)\}/g, (match, name) => (name in values ? String(values[name]) : match));
  }
  return text;
}

const zone = document.body.dataset.tz || "UTC";
const clock = new Intl.DateTimeFormat("en-GB", {
  timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});
const zoneName = new Intl.DateTimeFormat("id-ID", { timeZone: zone, timeZoneName: "short" });

// '27-11-2026 08:00:05 WIB', as the server writes it.
export function when(iso) {
  if (!iso) return "-";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "-";
  const p = {};
  for (const part of clock.formatToParts(date)) p[part.type] = part.value;
  const z = zoneName.formatToParts(date).find((part) => part.type === "timeZoneName");
  return `${p.day}-${p.month}-${p.year} ${p.hour}:${p.minute}:${p.second} ${z ? z.value : ""}`.trim();
}

// The biggest unit and the next one when not zero: '1 hari 3 jam', '4 s' (as i18n/durations.py).
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "-";
  let left = Math.max(0, Math.floor(seconds));
  const sizes = [86400, 3600, 60, 1];
  const names = ["unit_d", "unit_h", "unit_m", "unit_s"].map((k) => t(k));
  const amounts = sizes.map((size) => {
    const amount = Math.floor(left / size);
    left -= amount * size;
    return amount;
  });
  let first = amounts.findIndex((n) => n > 0);
  if (first < 0) first = amounts.length - 1;
  const parts = [`${amounts[first]} ${names[first]}`];
  if (first + 1 < amounts.length && amounts[first + 1]) parts.push(`${amounts[first + 1]} ${names[first + 1]}`);
  return parts.join(" ");
}

export function since(iso) {
  if (!iso) return null;
  const ms = Date.now() - new Date(iso).getTime();
  return Number.isNaN(ms) ? null : ms / 1000;
}
