// Building the page from data without innerHTML: text is always text, never markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export function mount(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children.filter(Boolean));
  return main;
}

let announceTimer = null;
export function announce(text) {
  // aria-live region: screen readers read progress and results without moving focus.
  const region = document.getElementById("announce");
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => { region.textContent = text; }, 50);
}

export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hintEl);
}

// A table that reads as cards at phone width: each cell carries its column's name (data-label,
// shown by the CSS when the header row is hidden), so nothing scrolls out of sight.
export function cells(headers, values) {
  return values.map((c, i) => (c instanceof Node && c.tagName === "TD" ? c : h("td", { "data-label": headers[i] }, c)));
}

export function table(headers, rows, caption, id) {
  return h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h("table", { class: "cards", id },
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, cells(headers, r))))));
}

export function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

// The one date format of the console: "2026-12-07 17:21" in the browser's time zone (the same
// order everywhere, whatever the browser's language; a day alone is "2026-12-07").
const pad = (n) => String(n).padStart(2, "0");
export function when(iso) {
  if (!iso) return "";
  const d = iso instanceof Date ? iso : new Date(iso);
  if (isNaN(d)) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function duration(seconds) {
  if (!isFinite(seconds) || seconds < 0) return "";
  if (seconds < 1) return "under a second";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${Math.round(seconds % 60)} s`;
}

// Every count in words goes through here: "1 rejected row", "2 rejected rows", "0 rows",
// "1,200 entries" (English plural rules: only exactly one is singular).
export function plural(n, one, many) {
  const count = Number(n) || 0;
  return `${count.toLocaleString("en")} ${count === 1 ? one : (many || one + "s")}`;
}

// A downloaded file's name carries the name of the file that was sent: "march.csv" gives
// "march.errors.csv"; a ZIP's member adds its own ("national.teachers.valid.csv").
export function downloadName(filename, part, member) {
  const stem = (name) => String(name || "").replace(/^.*[\\/]/, "").replace(/\.[A-Za-z0-9]{1,5}$/, "");
  const safe = (name) => stem(name).replace(/[^\p{L}\p{N}._ -]+/gu, "_").replace(/^[._ ]+|[._ ]+$/g, "");
  const base = [safe(filename) || "upload", member ? safe(member) : null].filter(Boolean).join(".");
  return `${base}.${part}.csv`;
}

export function notice(kind, title, ...body) {
  return h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : null },
    h("strong", {}, title), ...body.map((b) => (typeof b === "string" ? h("p", {}, b) : b)));
}
