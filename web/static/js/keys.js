// Keyboard shortcuts: / search, o offline only, n notifications, f full screen / kiosk, ? the list.
// Ignored while typing in a field. Pages give the actions that exist on them.

import { toggleDropdown } from "./header.js";

function typing(target) {
  if (!target) return false;
  const tag = target.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
}

export function showShortcuts() {
  const dialog = document.getElementById("shortcuts");
  if (!dialog) return;
  if (dialog.open) dialog.close();
  else if (typeof dialog.showModal === "function") dialog.showModal();
  else dialog.setAttribute("open", "");
}

export function initKeys(actions = {}) {
  const all = { n: () => toggleDropdown(), "?": showShortcuts, ...actions };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    const action = all[event.key];
    if (!action) return;
    event.preventDefault();
    action(event);
  });
}
