// The interactive map: one marker per ONT (colour AND shape by state), clustered, filtered,
// searched, updated in place from the event stream (batched per animation frame), kiosk mode.
// Leaflet and Leaflet.markercluster are classic scripts loaded before this module (window.L).

import { el, ontHref } from "./dom.js";
import { duration, since, t, when } from "./format.js";
import { initHeader } from "./header.js";
import { initKeys, showShortcuts } from "./keys.js";
import { on, reloadPage, start } from "./live.js";

const L = window.L;
const mapNode = document.getElementById("map");
const statusSelect = document.getElementById("filter-status");
const areaSelect = document.getElementById("filter-area");
const searchInput = document.getElementById("search");
const kioskButton = document.getElementById("kiosk-toggle");
const shownCount = document.getElementById("shown-count");
const DEFAULT_VIEW = { center: [-2.5, 118], zoom: 5 };

const onts = new Map(); // id -> latest ONT record (the /api/onts shape)
const markers = new Map(); // id -> L.Marker (only ONTs with a position)
const shown = new Set(); // ids whose marker is on the map (passes the filters)
let pending = new Map(); // id -> record, waiting for the next animation frame
let pendingDeleted = new Set();
let frameQueued = false;

function category(ont) {
  if (ont.severity === "critical" || ont.status === "OFF") return "offline";
  if (ont.severity === "warning") return "warning";
  if (ont.status === "ON") return "online";
  return "unknown";
}

function hasPosition(ont) {
  return typeof ont.lat === "number" && typeof ont.lon === "number"
    && Number.isFinite(ont.lat) && Number.isFinite(ont.lon);
}

// A divIcon whose element carries the ONT's id, status and severity (for people and tests).
const OntIcon = L.DivIcon.extend({
  createIcon(oldIcon) {
    const node = L.DivIcon.prototype.createIcon.call(this, oldIcon);
    node.dataset.ontId = this.options.ontId;
    node.dataset.status = this.options.status;
    node.dataset.severity = this.options.severity;
    node.setAttribute("role", "img");
    node.setAttribute("aria-label", `${this.options.ontId} ${t("status_" + this.options.status)}`);
    return node;
  },
});

function iconFor(ont) {
  const cat = category(ont);
  return new OntIcon({
    className: `ont-marker cat-${cat} sev-${ont.severity}${ont.flapping ? " flapping" : ""}`,
    html: "",
    iconSize: [22, 22],
    iconAnchor: [11, 11],
    popupAnchor: [0, -10],
    tooltipAnchor: [10, 0],
    ontId: ont.id,
    status: ont.status,
    severity: ont.severity,
  });
}

function iconKey(ont) {
  return `${ont.status}|${ont.severity}|${ont.flapping ? 1 : 0}`;
}

function tooltipContent(marker) {
  const ont = onts.get(marker.options.ontId);
  if (!ont) return "";
  const from = ont.status_since;
  return el("div", { class: "ont-tooltip" },
    el("strong", { text: ont.name || ont.id }),
    el("div", { text: `${t("status_" + ont.status)} · ${t("col_rto")} ${ont.rto_count}` }),
    el("div", { text: `${t("col_since")} ${when(from)} (${duration(since(from))})` }));
}

function popupContent(marker) {
  const ont = onts.get(marker.options.ontId);
  if (!ont) return "";
  const nav = `https://www.google.com/maps/dir/?api=1&destination=${ont.lat.toFixed(6)},${ont.lon.toFixed(6)}`;
  const rows = [
    ["ID", ont.id],
    [t("col_status"), `${t("status_" + ont.status)} · ${t("severity_" + ont.severity)}`],
    [t("col_rto"), String(ont.rto_count)],
    [t("col_since"), when(ont.status_since)],
    [t("popup_customer"), ont.customer_id || "-"],
    [t("popup_ip"), ont.ip || "-"],
    [t("popup_location"), ont.location || ont.area || "-"],
  ];
  const list = el("dl", { class: "popup-facts" });
  for (const [key, value] of rows) list.append(el("dt", { text: key }), el("dd", { text: value }));
  return el("div", { class: "ont-popup" },
    el("h3", { text: ont.name || ont.id }),
    list,
    el("p", { class: "popup-links" },
      el("a", { href: ontHref(ont.id), text: t("popup_details") }), " · ",
      el("a", { href: nav, target: "_blank", rel: "noopener noreferrer", text: t("popup_navigate") })));
}

function makeMarker(ont) {
  const marker = L.marker([ont.lat, ont.lon], { icon: iconFor(ont), ontId: ont.id, keyboard: true });
  marker.iconKey = iconKey(ont);
  marker.bindTooltip(tooltipContent, { direction: "right", sticky: false });
  marker.bindPopup(popupContent, { maxWidth: 300, minWidth: 200 });
  return marker;
}

// -- layers ---------------------------------------------------------------------------------

const clustered = mapNode.dataset.cluster !== "0";
const map = L.map(mapNode, { preferCanvas: false, zoomControl: true, worldCopyJump: true });
const mapTexts = JSON.parse(document.getElementById("map-texts").textContent);
L.tileLayer("/tiles/{z}/{x}/{y}.png", { maxZoom: 19, attribution: mapTexts.attribution }).addTo(map);

function clusterIcon(cluster) {
  const children = cluster.getAllChildMarkers();
  let worst = "online";
  const rank = { online: 0, unknown: 1, warning: 2, offline: 3 };
  for (const child of children) {
    const ont = onts.get(child.options.ontId);
    const cat = ont ? category(ont) : "unknown";
    if (rank[cat] > rank[worst]) worst = cat;
    if (worst === "offline") break;
  }
  const count = cluster.getChildCount();
  const size = count < 10 ? 34 : count < 100 ? 40 : count < 1000 ? 46 : 54;
  return L.divIcon({
    className: `ont-cluster cat-${worst}`,
    html: el("span", { class: "count", text: count }),
    iconSize: [size, size],
  });
}

// #map[data-ready] is set once the first markers are all placed, with the time it took
// (ms since navigation start) in data-ready-ms: for benches and browser tests.
function markReady() {
  if (mapNode.dataset.ready) return;
  mapNode.dataset.readyMs = String(Math.round(performance.now()));
  mapNode.dataset.ready = "1";
}

const layer = clustered
  ? L.markerClusterGroup({
    chunkedLoading: true,
    chunkProgress: (processed, total) => {
      if (processed >= total) markReady();
    },
    chunkInterval: 150,
    chunkDelay: 20,
    showCoverageOnHover: false,
    maxClusterRadius: 50,
    disableClusteringAtZoom: 18,
    iconCreateFunction: clusterIcon,
  })
  : L.featureGroup();
layer.addTo(map);

// -- filters --------------------------------------------------------------------------------

function filters() {
  return {
    status: statusSelect ? statusSelect.value : "",
    area: areaSelect ? areaSelect.value : "",
    q: searchInput ? searchInput.value.trim().toLowerCase() : "",
  };
}

function passes(ont, f) {
  if (f.status && ont.status !== f.status) return false;
  if (f.area && ont.area !== f.area) return false;
  if (f.q && !(String(ont.id).toLowerCase().includes(f.q) || (ont.name || "").toLowerCase().includes(f.q))) return false;
  return true;
}

function updateCount() {
  if (shownCount) shownCount.textContent = t("shown_count", { shown: shown.size, total: onts.size });
}

function applyFilters({ fit = false } = {}) {
  const f = filters();
  const add = [];
  const remove = [];
  for (const [id, marker] of markers) {
    const want = passes(onts.get(id), f);
    if (want && !shown.has(id)) {
      add.push(marker);
      shown.add(id);
    } else if (!want && shown.has(id)) {
      remove.push(marker);
      shown.delete(id);
    }
  }
  if (remove.length) removeLayers(remove);
  if (add.length) addLayers(add);
  updateCount();
  syncUrl(f);
  if (fit || document.body.classList.contains("kiosk")) fitShown();
}

function addLayers(list) {
  if (clustered) layer.addLayers(list);
  else for (const m of list) layer.addLayer(m);
}

function removeLayers(list) {
  if (clustered) layer.removeLayers(list);
  else for (const m of list) layer.removeLayer(m);
}

function syncUrl(f) {
  const url = new URL(window.location.href);
  for (const [key, value] of [["status", f.status], ["area", f.area], ["q", searchInput ? searchInput.value.trim() : ""]]) {
    if (value) url.searchParams.set(key, value);
    else url.searchParams.delete(key);
  }
  window.history.replaceState(null, "", url.toString());
}

function fitShown() {
  const points = [];
  for (const id of shown) {
    const ont = onts.get(id);
    points.push([ont.lat, ont.lon]);
  }
  if (points.length === 0) {
    if (markers.size === 0) map.setView(DEFAULT_VIEW.center, DEFAULT_VIEW.zoom);
    return;
  }
  map.fitBounds(L.latLngBounds(points), { padding: [30, 30], maxZoom: 17, animate: false });
}

// -- live updates, batched per animation frame ----------------------------------------------

function queue(records, deleted) {
  for (const ont of records) pending.set(ont.id, ont);
  for (const id of deleted) pendingDeleted.add(id);
  if (!frameQueued) {
    frameQueued = true;
    requestAnimationFrame(flush);
  }
}

function flush() {
  frameQueued = false;
  const batch = pending;
  const gone = pendingDeleted;
  pending = new Map();
  pendingDeleted = new Set();
  const f = filters();
  const add = [];
  const remove = [];
  const refresh = [];
  for (const id of gone) {
    onts.delete(id);
    const marker = markers.get(id);
    if (marker) {
      markers.delete(id);
      if (shown.delete(id)) remove.push(marker);
    }
  }
  for (const [id, ont] of batch) {
    onts.set(id, ont);
    let marker = markers.get(id);
    if (!hasPosition(ont)) {
      if (marker) {
        markers.delete(id);
        if (shown.delete(id)) remove.push(marker);
      }
      continue;
    }
    if (!marker) {
      marker = makeMarker(ont);
      markers.set(id, marker);
    } else {
      const pos = marker.getLatLng();
      if (pos.lat !== ont.lat || pos.lng !== ont.lon) marker.setLatLng([ont.lat, ont.lon]);
      const key = iconKey(ont);
      if (marker.iconKey !== key) {
        marker.iconKey = key;
        marker.setIcon(iconFor(ont));
        if (shown.has(id)) refresh.push(marker);
      }
      if (marker.isTooltipOpen && marker.isTooltipOpen()) marker.setTooltipContent(tooltipContent(marker));
      if (marker.isPopupOpen && marker.isPopupOpen()) marker.setPopupContent(popupContent(marker));
    }
    const want = passes(ont, f);
    if (want && !shown.has(id)) {
      shown.add(id);
      add.push(marker);
    } else if (!want && shown.has(id)) {
      shown.delete(id);
      remove.push(marker);
    }
  }
  if (remove.length) removeLayers(remove);
  if (add.length) addLayers(add);
  if (clustered && refresh.length) layer.refreshClusters(refresh);
  updateCount();
  if (document.body.classList.contains("kiosk") && (add.length || remove.length)) fitShown();
}

async function resync() {
  // The stream could not resume: read the whole inventory again and apply it as one batch.
  try {
    const list = [];
    let after = "";
    for (let page = 0; page < 1000; page += 1) { // bounded: 1000 pages of 10,000 ONTs
      const query = `limit=10000${after ? "&after=" + encodeURIComponent(after) : ""}`;
      const response = await fetch(`/api/onts?${query}`, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(response.statusText);
      list.push(...(await response.json()));
      after = response.headers.get("X-Next-After") || "";
      if (!after) break;
    }
    const ids = new Set(list.map((o) => o.id));
    queue(list, [...onts.keys()].filter((id) => !ids.has(id)));
  } catch (err) {
    console.warn("map: resync failed, reloading", err);
    reloadPage();
  }
}

// -- kiosk, keys ------------------------------------------------------------------------------

function setKiosk(onOff) {
  document.body.classList.toggle("kiosk", onOff);
  if (kioskButton) kioskButton.setAttribute("aria-pressed", onOff ? "true" : "false");
  const url = new URL(window.location.href);
  if (onOff) url.searchParams.set("kiosk", "1");
  else url.searchParams.delete("kiosk");
  window.history.replaceState(null, "", url.toString());
  setTimeout(() => {
    map.invalidateSize();
    fitShown();
  }, 50);
}

function toggleKiosk() {
  const next = !document.body.classList.contains("kiosk");
  setKiosk(next);
  try {
    if (next && !document.fullscreenElement && document.documentElement.requestFullscreen) {
      document.documentElement.requestFullscreen().catch(() => {});
    } else if (!next && document.fullscreenElement) {
      document.exitFullscreen().catch(() => {});
    }
  } catch (err) {
    // full screen refused (no user gesture, or an iframe): kiosk layout alone
  }
}

function offlineOnly() {
  if (!statusSelect) return;
  statusSelect.value = statusSelect.value === "OFF" ? "" : "OFF";
  applyFilters({ fit: true });
}

// -- start ------------------------------------------------------------------------------------

function load() {
  const data = JSON.parse(document.getElementById("ont-data").textContent);
  const f = filters();
  const add = [];
  for (const ont of data) {
    onts.set(ont.id, ont);
    if (!hasPosition(ont)) continue;
    const marker = makeMarker(ont);
    markers.set(ont.id, marker);
    if (passes(ont, f)) {
      shown.add(ont.id);
      add.push(marker);
    }
  }
  addLayers(add);
  if (!clustered || add.length === 0) markReady();
  updateCount();
  const focus = mapNode.dataset.focus;
  const target = focus ? markers.get(focus) : null;
  if (target) {
    map.setView(target.getLatLng(), 18, { animate: false });
    if (clustered) layer.zoomToShowLayer(target, () => target.openPopup());
    else target.openPopup();
  } else {
    fitShown();
  }
}

load();
let searchTimer = null;
if (statusSelect) statusSelect.addEventListener("change", () => applyFilters({ fit: true }));
if (areaSelect) areaSelect.addEventListener("change", () => applyFilters({ fit: true }));
if (searchInput) {
  searchInput.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => applyFilters({ fit: true }), 150);
  });
  searchInput.addEventListener("keydown", (event) => {
    if (event.key === "Escape") searchInput.blur();
  });
}
document.getElementById("map-controls").addEventListener("submit", (event) => {
  event.preventDefault();
  applyFilters({ fit: true });
});
if (kioskButton) kioskButton.addEventListener("click", toggleKiosk);
const help = document.getElementById("shortcuts-toggle");
if (help) help.addEventListener("click", showShortcuts);
window.addEventListener("resize", () => {
  if (document.body.classList.contains("kiosk")) fitShown();
});

initHeader();
initKeys({
  "/": () => searchInput && searchInput.focus(),
  o: offlineOnly,
  f: toggleKiosk,
});
on("onts", (data) => queue(data.onts || [], data.deleted || []));
on("reload", resync);
start();
