// Small DOM helpers: every value goes in with textContent or setAttribute, never as markup.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

export function ontHref(id) {
  return "/onts/" + encodeURIComponent(id);
}

// Show the "empty" note that follows a list (or its table) when the list has no rows.
export function syncEmpty(list) {
  const wrap = list.closest(".table-wrap") || list.closest("table") || list;
  let note = wrap.nextElementSibling;
  if (!(note && note.matches("p.empty"))) {
    const section = list.closest("section");
    note = section ? section.querySelector("p.empty") : null;
  }
  if (note) note.hidden = list.children.length > 0;
}
