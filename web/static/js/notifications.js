// The notification history: mark one / all read, and new rows and read marks as they happen.

import { el, ontHref, syncEmpty } from "./dom.js";
import { t, when } from "./format.js";
import { initHeader, markReadInPage, setUnread, toast } from "./header.js";
import { initKeys } from "./keys.js";
import { on, reloadPage, start } from "./live.js";

const PAGE_SIZE = 50;
const table = document.getElementById("notif-table");
const body = table ? table.tBodies[0] : null;

async function post(url) {
  const response = await fetch(url, { method: "POST", headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!response.ok) {
    let error = response.statusText;
    try {
      error = (await response.json()).error || error;
    } catch (err) {
      // not JSON
    }
    throw new Error(error);
  }
  return response.json();
}

async function markOne(button) {
  const id = button.dataset.id;
  button.disabled = true;
  try {
    await post(`/api/notifications/mark-read/${encodeURIComponent(id)}`);
    markReadInPage([Number(id)]);
  } catch (err) {
    button.disabled = false;
    toast(t("action_failed", { error: err.message }), "warning");
  }
}

async function markAll(button) {
  button.disabled = true;
  try {
    await post("/api/notifications/mark-read");
    markReadInPage(null);
    setUnread(0);
  } catch (err) {
    toast(t("action_failed", { error: err.message }), "warning");
  } finally {
    button.disabled = false;
  }
}

function matches(item) {
  const f = table.dataset;
  if (f.firstPage !== "1") return false; // older pages do not grow
  if (f.severity && item.severity !== f.severity) return false;
  if (f.area && item.area !== f.area) return false;
  if (f.ont && item.ont_id !== f.ont) return false;
  if (f.unread === "1" && item.read) return false;
  return true;
}

function row(item) {
  const button = el("button", { type: "button", class: "mark-read", "data-id": item.id, text: t("mark_read"), disabled: item.read });
  return el(
    "tr",
    { "data-id": item.id, class: `${item.read ? "read" : "unread"} sev-${item.severity}` },
    el("td", { class: "when", text: when(item.created_at) }),
    el("td", { class: "severity" }, el("span", { class: `shape sev-shape-${item.severity}`, "aria-hidden": "true" }), t("severity_" + item.severity)),
    el("td", { class: "kind", text: t("kind_" + item.kind) }),
    el("td", { class: "ont" }, item.ont_id ? el("a", { href: ontHref(item.ont_id), text: item.ont_id }) : (item.area || "")),
    el("td", { class: "text", text: item.text || item.message || "" }),
    el("td", { class: "actions" }, button),
  );
}

function applyNotifications(data) {
  if (!body) return;
  for (const item of data.items || []) {
    if (!matches(item) || body.querySelector(`tr[data-id="${CSS.escape(String(item.id))}"]`)) continue;
    body.prepend(row(item));
  }
  while (body.children.length > PAGE_SIZE) body.lastElementChild.remove();
  syncEmpty(body);
}

if (body) {
  body.addEventListener("click", (event) => {
    const button = event.target.closest("button.mark-read");
    if (button && !button.disabled) markOne(button);
  });
}
const all = document.getElementById("mark-all-read");
if (all) all.addEventListener("click", () => markAll(all));

initHeader();
initKeys();
on("notifications", applyNotifications);
// More were stored than the stream sent (a mass outage's members): say so, with a reload link
// (a wall screen must not reload itself in the middle of an outage).
let moreStored = 0;
on("notifications", (data) => {
  const link = document.getElementById("more-stored");
  if (!link || !(data.more > 0)) return;
  moreStored += data.more;
  link.textContent = t("more_stored", { count: moreStored });
  link.href = window.location.pathname + window.location.search;
  link.hidden = false;
});
on("reload", reloadPage);
start();
