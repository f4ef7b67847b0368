// History: the uploads this account may see, filtered, newest first, paged.
import { api, describe, session } from "./api.js";
import { cells, field, h, mount, notice, when } from "./dom.js";
import { duplicateOf } from "./results.js";

const PAGE = 25;
const FILTERS = ["program_name", "ingestion_name", "status", "from", "to", "filename"];
const STATUSES = ["uploaded", "rejected", "failed", "receiving", "retracted", "retracting"];

// Days typed as the console writes them everywhere (yyyy-mm-dd), not in the browser's own order
// (a date picker shows mm/dd/yyyy or dd/mm/yyyy by language).
const dayInput = (id, value) => h("input", { id, value: value || "", inputmode: "numeric", autocomplete: "off",
  pattern: "\\d{4}-\\d{2}-\\d{2}", placeholder: "yyyy-mm-dd", title: "a day as yyyy-mm-dd" });

// The instant a local day starts (`after` days later), as ISO 8601; not a day: as typed.
export function dayStart(day, after = 0) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day || "");
  return m ? new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + after).toISOString() : day;
}

export async function historyPage(query) {
  const params = new URLSearchParams(query || "");
  const offset = Math.max(0, Number(params.get("offset")) || 0);
  const inputs = {
    program_name: h("input", { id: "h-program", value: params.get("program_name") || "" }),
    ingestion_name: h("input", { id: "h-spec", value: params.get("ingestion_name") || "" }),
    status: h("select", { id: "h-status" }, h("option", { value: "" }, "any"),
      STATUSES.map((s) => h("option", { value: s, selected: params.get("status") === s }, s))),
    from: dayInput("h-from", params.get("from")),
    to: dayInput("h-to", params.get("to")),
    filename: h("input", { id: "h-filename", value: params.get("filename") || "" }),
  };
  const go = (off) => {
    const q = new URLSearchParams();
    for (const k of FILTERS) if (inputs[k].value) q.set(k, inputs[k].value);
    if (off) q.set("offset", String(off));
    location.hash = `#/history${q.toString() ? "?" + q : ""}`;
  };
  const form = h("form", { class: "card filters", role: "search", "aria-label": "Filter uploads",
                           onsubmit: (e) => { e.preventDefault(); go(0); } },
    h("div", { class: "grid" },
      field("Programme", inputs.program_name), field("Spec", inputs.ingestion_name),
      field("Status", inputs.status), field("From", inputs.from, "yyyy-mm-dd"), field("To", inputs.to, "yyyy-mm-dd"),
      field("File name contains", inputs.filename)),
    h("button", { type: "submit", class: "primary" }, "Filter"), " ",
    h("button", { type: "button", onclick: () => { location.hash = "#/history"; } }, "Clear"));

  const api_q = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
  for (const k of FILTERS) if (params.get(k)) api_q.set(k, params.get(k));
  // Days are the browser's days, as the dates shown are: sent as the instants they start at.
  if (params.get("from")) api_q.set("from", dayStart(params.get("from"), 0));
  if (params.get("to")) api_q.set("to", dayStart(params.get("to"), 1));
  let list;
  try {
    list = await api(`/api/ingestion/uploads?${api_q}`);
  } catch (err) {
    const { title, lines } = describe(err);
    mount(h("h1", {}, "History"), form, notice("error", title, ...lines));
    return;
  }
  const everyone = session.scopes().has("admin"); // admin sees every client's: say whose
  const headers = ["Started", "File", "Spec", "Programme", everyone ? "Sent by" : null,
    "Status", "Valid", "Rejected"].filter(Boolean);
  const rows = list.uploads.map((u) => h("tr", {}, cells(headers, [
    when(u.started_at),
    h("a", { href: `#/uploads/${u.upload_id}` }, u.filename || u.upload_id),
    u.route === "national_programs" ? "national ZIP" : `${u.ingestion_type} · ${u.ingestion_name}`,
    u.program_name || "",
    everyone ? u.client || "" : null,
    statusCell(u),
    h("td", { class: "num", "data-label": "Valid" }, u.valid_rows.toLocaleString("en")),
    h("td", { class: "num", "data-label": "Rejected" }, u.invalid_rows.toLocaleString("en"))].filter((c) => c !== null))));
  const end = offset + list.uploads.length;
  const filtered = FILTERS.some((k) => params.get(k));
  const pager = h("nav", { class: "pager", "aria-label": "Pages" },
    h("button", { type: "button", disabled: offset === 0, onclick: () => go(Math.max(0, offset - PAGE)) }, "Newer"),
    h("span", {}, list.total ? `${offset + 1}–${end} of ${list.total.toLocaleString("en")}` : "No uploads match."),
    h("button", { type: "button", disabled: end >= list.total, onclick: () => go(offset + PAGE) }, "Older"));
  mount(h("h1", {}, "History"), form,
    list.total || filtered ? null : h("p", { class: "empty", id: "history-empty" },
      "No uploads yet — ", h("a", { href: "#/upload" }, "upload a file"), " and it shows here."),
    list.uploads.length ? h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Uploads" },
      h("table", { id: "history", class: "cards" }, h("caption", {}, "Uploads, newest first"),
        h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
        h("tbody", {}, rows))) : null,
    list.total || filtered ? pager : null);
}

// A duplicate (the same bytes sent again) is named as one, with the upload that holds its data.
function statusCell(u) {
  const original = duplicateOf(u);
  const label = original ? "duplicate" : u.dry_run ? `${u.status} (dry run)` : u.status;
  return h("td", { "data-label": "Status" }, h("span", { class: `status ${original ? "duplicate" : u.status}` }, label),
    original ? [" of ", h("a", { href: `#/uploads/${encodeURIComponent(original)}`, class: "duplicate-of" }, "the earlier upload")] : null);
}
