// The header every page shares: language switch, unread badge, notification dropdown, toasts.

import { el, ontHref } from "./dom.js";
import { t, when } from "./format.js";
import { on } from "./live.js";

const LANG_KEY = "ontwatch.lang";
const DROPDOWN_ITEMS = 8;
const TOAST_MS = 8000;
const MAX_TOASTS = 5;
const ALERT_SEVERITIES = new Set(["warning", "critical"]);

function setLangCookie(lang) {
  document.cookie = `lang=${lang}; path=/; max-age=31536000; SameSite=Lax`;
}

function cookieLang() {
  const match = document.cookie.match(/(?:^|;\s*)lang=(id|en)\b/);
  return match ? match[1] : null;
}

function initLang() {
  const button = document.getElementById("lang-switch");
  const current = document.documentElement.lang;
  let stored = null;
  try {
    stored = localStorage.getItem(LANG_KEY);
  } catch (err) {
    stored = null;
  }
  // A choice kept in this browser but not (or no longer) in the cookie: bring the cookie back.
  if ((stored === "id" || stored === "en") && cookieLang() === null && stored !== current) {
    setLangCookie(stored);
    if (!sessionStorage.getItem("ontwatch.langSynced")) {
      sessionStorage.setItem("ontwatch.langSynced", "1");
      window.location.reload();
      return;
    }
  }
  if (!button) return;
  button.addEventListener("click", () => {
    const next = button.dataset.lang === "en" ? "en" : "id";
    try {
      localStorage.setItem(LANG_KEY, next);
    } catch (err) {
      // private mode: the cookie alone keeps the choice
    }
    setLangCookie(next);
    const url = new URL(window.location.href);
    url.searchParams.delete("lang");
    window.location.assign(url.toString());
  });
}

export function setUnread(count) {
  const badge = document.getElementById("unread-count");
  if (!badge || count === undefined || count === null) return;
  badge.textContent = String(count);
  badge.classList.toggle("zero", Number(count) === 0);
  const stat = document.getElementById("stat-unread");
  if (stat) stat.textContent = String(count);
}

export function toggleDropdown(force) {
  const button = document.getElementById("notif-toggle");
  const menu = document.getElementById("notif-dropdown");
  if (!button || !menu) return;
  const open = force === undefined ? menu.hidden : force;
  menu.hidden = !open;
  button.setAttribute("aria-expanded", open ? "true" : "false");
}

function initDropdown() {
  const button = document.getElementById("notif-toggle");
  const menu = document.getElementById("notif-dropdown");
  if (!button || !menu) return;
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    toggleDropdown();
  });
  document.addEventListener("click", (event) => {
    if (!menu.hidden && !menu.contains(event.target)) toggleDropdown(false);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") toggleDropdown(false);
  });
}

function noticeHref(item) {
  return item.ont_id ? ontHref(item.ont_id) : "/notifications";
}

function noticeText(item) {
  return item.text || item.message || "";
}

function dropdownItem(item) {
  return el(
    "li",
    { class: `notif-item ${item.read ? "read" : "unread"} sev-${item.severity}`, "data-id": item.id },
    el("a", { href: noticeHref(item) },
      el("span", { class: "when", text: when(item.created_at) }), " ",
      el("span", { class: "text", text: noticeText(item) })),
  );
}

function addToDropdown(items) {
  const list = document.querySelector("#notif-dropdown .notif-list");
  if (!list) return;
  for (const item of items) {
    if (list.querySelector(`li[data-id="${CSS.escape(String(item.id))}"]`)) continue;
    list.prepend(dropdownItem(item));
  }
  while (list.children.length > DROPDOWN_ITEMS) list.lastElementChild.remove();
  const empty = document.querySelector("#notif-dropdown .notif-empty");
  if (empty) empty.hidden = list.children.length > 0;
}

export function markReadInPage(ids) {
  const selector = ids === null ? "[data-id].unread" : null;
  const nodes = selector
    ? document.querySelectorAll(selector)
    : ids.flatMap((id) => [...document.querySelectorAll(`[data-id="${CSS.escape(String(id))}"].unread`)]);
  for (const node of nodes) {
    node.classList.remove("unread");
    node.classList.add("read");
    const button = node.querySelector("button.mark-read");
    if (button) button.disabled = true;
  }
}

export function toast(text, severity) {
  const box = document.getElementById("toasts");
  if (!box) return;
  const node = el("div", { class: `toast sev-${severity || "ok"}`, role: "status" }, el("span", { text }));
  const close = el("button", { type: "button", class: "toast-close", "aria-label": t("close"), text: "×" });
  close.addEventListener("click", () => node.remove());
  node.append(close);
  box.append(node);
  while (box.children.length > MAX_TOASTS) box.firstElementChild.remove();
  setTimeout(() => node.remove(), TOAST_MS);
}

export function initHeader() {
  initLang();
  initDropdown();
  on("notifications", (data) => {
    const items = data.items || [];
    addToDropdown(items);
    const alerts = items.filter((item) => ALERT_SEVERITIES.has(item.severity) || item.kind === "resolved"
      || item.kind === "mass_outage_resolved");
    const shown = alerts.slice(-MAX_TOASTS);
    for (const item of shown) toast(noticeText(item), item.kind.endsWith("resolved") ? "ok" : item.severity);
  });
  on("read", (data) => {
    setUnread(data.unread);
    markReadInPage(data.ids === undefined ? null : data.ids);
  });
  on("stats", (data) => setUnread(data.unread));
}
