// One ONT: its state and incident kept current, new history lines, and the operator actions.

import { el, syncEmpty } from "./dom.js";
import { duration, since, t, when } from "./format.js";
import { initHeader, toast } from "./header.js";
import { initKeys } from "./keys.js";
import { on, reloadPage, start } from "./live.js";

const panel = document.getElementById("ont-status");
const ontId = panel ? panel.dataset.ontId : null;
const HISTORY_ROWS = 100;

function setField(root, cls, text) {
  const node = root.querySelector(`.${cls}`);
  if (node) node.textContent = text;
}

function applyState(ont) {
  panel.dataset.status = ont.status;
  panel.dataset.severity = ont.severity;
  setField(panel, "status", t("status_" + ont.status));
  setField(panel, "severity", t("severity_" + ont.severity));
  setField(panel, "rto", String(ont.rto_count));
  setField(panel, "last-seen", when(ont.last_seen));
  setField(panel, "last-on", when(ont.last_on));
  const sinceNode = panel.querySelector(".since");
  if (sinceNode) {
    sinceNode.replaceChildren(when(ont.status_since), " ",
      el("span", { class: "duration", text: `(${duration(since(ont.status_since))})` }));
  }
  const inc = ont.incident;
  renderIncident(inc);
  const ack = document.querySelector('#ont-actions button[data-action="ack"]');
  if (ack) ack.disabled = !inc || Boolean(inc.acked_at);
}

// The incident panel, redrawn from the stream's record (no reload when one opens or closes).
function renderIncident(inc) {
  const section = document.getElementById("ont-incident");
  if (!section) return;
  const old = section.querySelector(":scope > dl.facts, :scope > p.empty");
  let node;
  if (!inc) {
    node = el("p", { class: "empty", text: t("no_incident") });
  } else {
    const acked = inc.acked_at
      ? when(inc.acked_at) + (inc.acked_by ? ` · ${inc.acked_by}` : "")
      : t("incident_not_acked");
    node = el("dl", { class: "facts" },
      el("dt", { text: t("col_severity") }), el("dd", { class: "severity", text: t("severity_" + inc.severity) }),
      el("dt", { text: t("incident_opened") }),
      el("dd", { class: "opened", text: `${when(inc.opened_at)} (${duration(since(inc.opened_at))})` }),
      el("dt", { text: t("col_reason") }), el("dd", { class: "reason", text: inc.reason || "" }),
      el("dt", { text: t("incident_acked") }), el("dd", { class: "acked", text: acked }));
  }
  if (old) old.replaceWith(node);
  else section.querySelector("h2").after(node);
}

let historyBusy = false;

async function refreshHistory() {
  const body = document.getElementById("history");
  if (!body || historyBusy) return;
  historyBusy = true;
  try {
    const response = await fetch(`/api/onts/${encodeURIComponent(ontId)}/history?limit=20`, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const lines = await response.json();
    const known = new Set([...body.children].map((row) => row.dataset.id));
    for (const h of lines.reverse()) {
      if (known.has(String(h.id))) continue;
      body.prepend(el(
        "tr",
        { "data-id": h.id, class: `status-${h.status} sev-${h.severity}` },
        el("td", { class: "when", text: when(h.at) }),
        el("td", { class: "status", text: t("status_" + h.status) }),
        el("td", { class: "rto", text: h.rto_count }),
        el("td", { class: "severity", text: t("severity_" + h.severity) }),
        el("td", { class: "source", text: h.source }),
        el("td", { class: "reason", text: h.reason || "" }),
      ));
    }
    while (body.children.length > HISTORY_ROWS) body.lastElementChild.remove();
    syncEmpty(body);
  } catch (err) {
    console.warn("ont: history fetch failed", err);
  } finally {
    historyBusy = false;
  }
}

function applyOnts(data) {
  if ((data.deleted || []).includes(ontId)) {
    reloadPage();
    return;
  }
  const ont = (data.onts || []).find((o) => o.id === ontId);
  if (!ont) return;
  applyState(ont);
  refreshHistory();
}

function applyNotifications(data) {
  const list = document.getElementById("ont-notifications");
  if (!list) return;
  for (const item of data.items || []) {
    if (item.ont_id !== ontId) continue;
    list.prepend(el(
      "li",
      { "data-id": item.id, class: `${item.read ? "read" : "unread"} sev-${item.severity}` },
      el("span", { class: "when", text: when(item.created_at) }), " ",
      el("span", { class: "sev", text: t("severity_" + item.severity) }), " ",
      el("span", { class: "text", text: item.text || item.message || "" }),
    ));
  }
  syncEmpty(list);
}

async function act(button) {
  const box = document.getElementById("ont-actions");
  const result = document.getElementById("action-result");
  const action = button.dataset.action;
  const init = { method: "POST", credentials: "same-origin", headers: { Accept: "application/json" } };
  if (action === "mute") {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify({ minutes: Number(button.dataset.minutes || 60) });
  }
  button.disabled = true;
  try {
    const response = await fetch(`${box.dataset.base}/${action}`, init);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || response.statusText);
    if (result) result.textContent = t("action_done");
    reloadPage();
  } catch (err) {
    button.disabled = false;
    const text = t("action_failed", { error: err.message });
    if (result) result.textContent = text;
    toast(text, "warning");
  }
}

const actions = document.getElementById("ont-actions");
if (actions) {
  actions.addEventListener("click", (event) => {
    const button = event.target.closest("button.action");
    if (button && !button.disabled) act(button);
  });
}

initHeader();
initKeys();
if (panel) {
  on("onts", applyOnts);
  on("notifications", applyNotifications);
}
on("reload", reloadPage);
start();
