// The one EventSource client of every page: /api/events in the page's language, with reconnect.
// Page modules register handlers with on(type, fn); frames are dispatched as parsed JSON.

import { t } from "./format.js";

const TYPES = ["hello", "reload", "onts", "notifications", "read", "stats", "agents"];
const handlers = new Map(TYPES.map((type) => [type, []]));
const lang = document.documentElement.lang || "id";
let source = null;
let seen = false; // a frame arrived on some connection: a fresh start needs a snapshot reload
let retryMs = 1000;
let retryTimer = null;
// Where the stream starts: the frame id the page was rendered at, then the last frame seen.
let lastId = document.body.dataset.lastEventId || "";

export function on(type, fn) {
  if (!handlers.has(type)) handlers.set(type, []);
  handlers.get(type).push(fn);
}

function dispatch(type, data) {
  for (const fn of handlers.get(type) || []) {
    try {
      fn(data);
    } catch (err) {
      console.warn("live: handler for", type, "failed", err);
    }
  }
}

export function setState(state) {
  const node = document.getElementById("live-status");
  if (!node || node.dataset.state === state) return;
  node.dataset.state = state;
  const label = t(state === "connected" ? "live_connected" : "live_reconnecting");
  node.title = label;
  const text = node.querySelector(".label");
  if (text) text.textContent = label;
}

function connect() {
  retryTimer = null;
  const from = lastId ? `&last_id=${encodeURIComponent(lastId)}` : "";
  source = new EventSource(`/api/events?lang=${encodeURIComponent(lang)}${from}`);
  source.addEventListener("open", () => {
    retryMs = 1000;
    setState("connected");
  });
  source.addEventListener("error", () => {
    setState("reconnecting");
    // The browser retries by itself (with Last-Event-ID) unless the answer was not a stream.
    if (source.readyState === EventSource.CLOSED) scheduleReconnect();
  });
  for (const type of TYPES) {
    source.addEventListener(type, (event) => {
      let data = null;
      try {
        data = JSON.parse(event.data);
      } catch (err) {
        console.warn("live: bad frame", type, err);
        return;
      }
      setState("connected");
      if (event.lastEventId) lastId = event.lastEventId;
      if (type === "hello") {
        // A connection that did not resume after frames were seen may have missed some.
        if (!data.resumed && seen) dispatch("reload", { reason: "restart" });
      }
      seen = true;
      dispatch(type, data);
    });
  }
}

function scheduleReconnect() {
  if (source) source.close();
  if (retryTimer !== null) return;
  retryTimer = setTimeout(connect, retryMs);
  retryMs = Math.min(retryMs * 2, 30000);
  checkSession();
}

// A stream refused outright may mean the session ended: then go to the login page.
async function checkSession() {
  try {
    const response = await fetch("/api/stats", { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (response.status === 401) {
      const next = window.location.pathname + window.location.search;
      window.location.assign("/login?next=" + encodeURIComponent(next));
    }
  } catch (err) {
    // the service is down: keep retrying the stream
  }
}

// Whether the stream is open: a page's own requests wait for it while the service is away.
export function connected() {
  return source !== null && source.readyState === EventSource.OPEN;
}

export function start() {
  if (source === null && typeof EventSource !== "undefined") connect();
}

// Reload the page, at most once every few seconds (a reload frame storm must not loop).
export function reloadPage() {
  const key = "ontwatch.reloadedAt";
  const last = Number(sessionStorage.getItem(key) || 0);
  if (Date.now() - last < 3000) {
    setTimeout(reloadPage, 3000);
    return;
  }
  sessionStorage.setItem(key, String(Date.now()));
  window.location.reload();
}
