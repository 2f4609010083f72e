// The dashboard: counts, severities, outages, worst areas, probe agents, offline list and latest
// notifications, live.

import { el, ontHref, syncEmpty } from "./dom.js";
import { duration, since, t, when } from "./format.js";
import { initHeader, toast } from "./header.js";
import { initKeys } from "./keys.js";
import { connected, on, reloadPage, start } from "./live.js";

const OFFLINE_ROWS = 500;
const LATEST_ITEMS = 20;
const WORST_AREAS = 10;
const AREAS_EVERY_MS = 2000;
const CONTACTS_EVERY_MS = 5000;

function setText(id, value) {
  const node = document.getElementById(id);
  if (node && value !== undefined && value !== null) node.textContent = String(value);
}

function applyStats(s) {
  setText("stat-total", s.total);
  setText("stat-online", s.online);
  setText("stat-offline", s.offline);
  setText("stat-unknown", s.unknown);
  setText("stat-unread", s.unread);
  if (s.by_severity) {
    setText("sev-warning", s.by_severity.warning);
    setText("sev-critical", s.by_severity.critical);
  }
  if (Array.isArray(s.outages)) renderOutages(s.outages);
}

function renderOutages(outages) {
  const list = document.getElementById("outages");
  if (!list) return;
  const rows = outages.map((o) => el(
    "li",
    { "data-area": o.area, class: o.acked ? "acked" : "unacked" },
    el("a", { class: "area", href: "/map?area=" + encodeURIComponent(o.area), text: o.area }), " ",
    el("span", { class: "line", text: t("outage_line", { count: o.count, since: when(o.started_at) }) }), " ",
    o.acked ? el("span", { class: "tag", text: t("acked") }) : null,
    !o.acked && list.dataset.canOperate === "1"
      ? el("button", { type: "button", class: "ack-area", "data-area": o.area, text: t("action_ack") })
      : null,
  ));
  list.replaceChildren(...rows);
  syncEmpty(list);
}

// Worst areas come from /api/stats (by area); re-read at most every couple of seconds.
let areasTimer = null;
let areasDue = false;

function refreshAreasSoon() {
  areasDue = true;
  if (areasTimer !== null) return;
  areasTimer = setTimeout(async () => {
    areasTimer = null;
    if (!areasDue || !connected()) return; // the service is away: the next hello asks again
    areasDue = false;
    try {
      const response = await fetch("/api/stats", { headers: { Accept: "application/json" } });
      if (response.ok) renderAreas((await response.json()).by_area || {});
    } catch (err) {
      areasDue = true;
      if (connected()) console.warn("dashboard: stats fetch failed", err);
    }
  }, AREAS_EVERY_MS);
}

// (Re)connected: areas that changed while the service was away are read again.
function onHello() {
  if (areasDue) refreshAreasSoon();
}

function renderAreas(byArea) {
  const list = document.getElementById("worst-areas");
  if (!list) return;
  const areas = Object.entries(byArea)
    .map(([area, c]) => ({ area, ...c }))
    .filter((a) => a.offline || a.critical)
    .sort((a, b) => b.offline - a.offline || b.critical - a.critical || a.area.localeCompare(b.area))
    .slice(0, WORST_AREAS);
  list.replaceChildren(...areas.map((a) => el(
    "li",
    { "data-area": a.area },
    el("a", { class: "area", href: "/map?area=" + encodeURIComponent(a.area), text: a.area || "-" }), " ",
    el("span", { class: "line", text: t("area_line", a) }),
  )));
  syncEmpty(list);
}

// Probe agents: the stream's `agents` frame (sent when they changed) replaces the table; the
// ages of their last contact tick here in between.
function contactText(iso) {
  return iso ? t("ago", { dur: duration(since(iso)) }) : t("never");
}

function seconds(value) {
  if (value === null || value === undefined) return "-";
  if (value >= 60) return duration(value);
  const text = Math.max(0, value).toFixed(2);
  return `${document.documentElement.lang === "id" ? text.replace(".", ",") : text} ${t("unit_s")}`;
}

function agentRow(agent) {
  return el(
    "tr",
    { "data-agent": agent.name, "data-state": agent.state, "data-contact": agent.last_contact || "", class: `agent-${agent.state}` },
    el("td", { class: "name", text: agent.name }),
    el("td", { class: "state", text: t("agent_" + agent.state, { since: when(agent.lost_since) }) }),
    el("td", { class: "onts", text: agent.onts }),
    el("td", { class: "contact", text: contactText(agent.last_contact) }),
    el("td", { class: "sweep", text: agent.sweep ? seconds(agent.sweep.duration) : "-" }),
    el("td", { class: "queue", text: agent.queue_depth }),
  );
}

function applyAgents(data) {
  const body = document.getElementById("agents-list");
  if (!body) return;
  const agents = Array.isArray(data.agents) ? data.agents : [];
  body.replaceChildren(...agents.map(agentRow));
  const panel = document.getElementById("agents-panel");
  if (panel) panel.hidden = agents.length === 0;
}

function tickContacts() {
  for (const row of document.querySelectorAll("#agents-list tr[data-contact]")) {
    const cell = row.querySelector(".contact");
    if (cell) cell.textContent = contactText(row.dataset.contact);
  }
}

function offlineRow(ont) {
  const from = ont.status_since || ont.last_seen;
  return el(
    "tr",
    { "data-ont-id": ont.id, "data-since": from || "", class: `sev-${ont.severity}` },
    el("td", { class: "id" }, el("a", { href: ontHref(ont.id), text: ont.id })),
    el("td", { class: "name", text: ont.name || "" }),
    el("td", { class: "area", text: ont.area || "" }),
    el("td", { class: "rto", text: ont.rto_count }),
    el("td", { class: "since", text: when(from) }),
    el("td", { class: "duration", text: duration(since(from)) }),
  );
}

function sinceMs(iso) {
  const time = Date.parse(iso || "");
  return Number.isNaN(time) ? Infinity : time;
}

// Every OFF ONT the page knows, longest down first; rows are built only for the ones shown.
const offline = new Map(); // id -> { since: ms, row: Element | null, ont: record | null }

function loadOffline() {
  const body = document.getElementById("offline-list");
  if (!body) return;
  for (const row of body.children) {
    offline.set(row.dataset.ontId, { since: sinceMs(row.dataset.since), row, ont: null });
  }
}

function applyOnts(data) {
  const body = document.getElementById("offline-list");
  if (!body) return;
  let changed = false;
  for (const id of data.deleted || []) changed = offline.delete(id) || changed;
  for (const ont of data.onts || []) {
    if (ont.status === "OFF") {
      offline.set(ont.id, { since: sinceMs(ont.status_since || ont.last_seen), row: null, ont });
      changed = true;
    } else {
      changed = offline.delete(ont.id) || changed;
    }
  }
  if (changed) {
    const sorted = [...offline.entries()].sort(
      ([a, x], [b, y]) => x.since - y.since || a.localeCompare(b, undefined, { numeric: true }),
    );
    const rows = sorted.slice(0, OFFLINE_ROWS).map(([, entry]) => {
      if (entry.row === null) entry.row = offlineRow(entry.ont);
      return entry.row;
    });
    body.replaceChildren(...rows);
    syncEmpty(body);
  }
  refreshAreasSoon();
}

function applyNotifications(data) {
  const list = document.getElementById("latest-notifications");
  if (!list) return;
  for (const item of data.items || []) {
    if (list.querySelector(`li[data-id="${CSS.escape(String(item.id))}"]`)) continue;
    list.prepend(el(
      "li",
      { "data-id": item.id, class: `${item.read ? "read" : "unread"} sev-${item.severity}` },
      el("span", { class: "when", text: when(item.created_at) }), " ",
      el("span", { class: "sev", text: t("severity_" + item.severity) }), " ",
      el("a", { class: "text", href: item.ont_id ? ontHref(item.ont_id) : "/notifications", text: item.text || item.message || "" }),
    ));
  }
  while (list.children.length > LATEST_ITEMS) list.lastElementChild.remove();
  syncEmpty(list);
}

// An operator acknowledges an area's mass outage (stops its reminders).
async function ackArea(button) {
  button.disabled = true;
  try {
    const response = await fetch(`/api/areas/${encodeURIComponent(button.dataset.area)}/ack`, {
      method: "POST", credentials: "same-origin", headers: { Accept: "application/json" },
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || response.statusText);
    toast(t("action_done"), "ok");
  } catch (err) {
    button.disabled = false;
    toast(t("action_failed", { error: err.message }), "warning");
  }
}

function tickDurations() {
  for (const row of document.querySelectorAll("#offline-list tr[data-since]")) {
    const cell = row.querySelector(".duration");
    if (cell) cell.textContent = duration(since(row.dataset.since));
  }
}

const outageList = document.getElementById("outages");
if (outageList) {
  outageList.addEventListener("click", (event) => {
    const button = event.target.closest("button.ack-area");
    if (button && !button.disabled) ackArea(button);
  });
}
loadOffline();
initHeader();
initKeys();
on("hello", onHello);
on("stats", applyStats);
on("onts", applyOnts);
on("notifications", applyNotifications);
on("agents", applyAgents);
on("reload", reloadPage);
setInterval(tickDurations, 15000);
setInterval(tickContacts, CONTACTS_EVERY_MS);
start();
