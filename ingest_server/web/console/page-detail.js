// One upload: status, counts, timings, who sent it, its objects; the rejected rows with filters;
// downloads; retract; send a corrected file again.
import { api, describe, download, fetchText, session } from "./api.js";
import { announce, bytes, cells, downloadName, duration, field, h, mount, notice, plural, when } from "./dom.js";
import { errorRecords, parseCsv } from "./csv.js";
import { ERROR_HEADERS, counts, duplicateOf, errorRows, verdictBox, warnings } from "./results.js";
import { templateLinks } from "./templates.js";
import { csvTypes, specKindOf } from "./programs.js";
import { uploadAgain } from "./page-upload.js";
import { datasetsSection, unknownKeysSection } from "./processing.js";

const MAX_SHOWN = 500;
const MAX_LOADED = 20000; // more rejected rows than this: the table shows the sample, the file has all

export async function uploadDetailPage(id) {
  let u;
  try {
    u = await api(`/api/ingestion/uploads/${encodeURIComponent(id)}`);
  } catch (err) {
    const { title, lines } = describe(err);
    mount(h("h1", {}, "Upload"), notice("error", title, ...lines));
    return;
  }
  const base = `/api/ingestion/uploads/${encodeURIComponent(u.upload_id)}`;
  const kind = u.ingestion_type ? specKindOf(await api("/api/plugins").then(csvTypes), u.ingestion_type) : null;
  const message = h("div", { id: "detail-message", "aria-live": "polite" });
  const act = (fn) => async () => {
    try { await fn(); } catch (err) {
      const { title, lines } = describe(err);
      message.replaceChildren(notice("error", title, ...lines));
      announce(`${title}. ${lines.join(" ")}`);
    }
  };
  const national = u.route === "national_programs";
  const gone = u.status === "retracted" || u.status === "retracting";
  const members = national ? (u.members || []) : [{ name: null, objects: u.objects }];

  const downloads = gone ? [] : members.flatMap((m) => {
    const q = m.name ? `?member=${encodeURIComponent(m.name)}` : "";
    const amp = q ? "&" : "?";
    const label = m.name ? ` (${m.name})` : "";
    const out = [];
    if (m.objects && m.objects.errors) {
      out.push(h("button", { type: "button", id: m.name ? null : "dl-errors",
        onclick: act(() => download(`${base}/errors${q}`, downloadName(u.filename, "errors", m.name))) },
        `Error file${label}`));
      out.push(h("button", { type: "button", id: m.name ? null : "dl-errors-safe",
        onclick: act(() => download(`${base}/errors${q}${amp}formula_safe=true`,
                                    downloadName(u.filename, "errors.formula-safe", m.name))) },
        `Error file for spreadsheets${label}`));
    }
    if (m.objects && m.objects.valid) {
      out.push(h("button", { type: "button", id: m.name ? null : "dl-valid",
        onclick: act(() => download(`${base}/valid${q}`, downloadName(u.filename, "valid", m.name))) },
        `Valid rows${label}`));
    }
    return out;
  });

  const s = session.get() || {};
  const scopes = session.scopes();
  const mayRetract = u.status === "uploaded" && !u.dry_run &&
    (scopes.has("admin") || (scopes.has("ingest") && u.client === s.client));
  const dialog = h("dialog", { id: "retract-dialog", "aria-labelledby": "retract-title" },
    h("h2", { id: "retract-title" }, "Retract this upload?"),
    h("p", {}, `Its ${plural(objectKeys(u).length, "file")} will be deleted from storage. ` +
      "The record stays, marked retracted. This cannot be undone."),
    h("form", { method: "dialog", class: "actions" },
      h("button", { value: "cancel", id: "retract-cancel" }, "Keep it"),
      h("button", { value: "confirm", class: "danger", id: "retract-confirm" }, "Retract")));
  dialog.addEventListener("close", act(async () => {
    if (dialog.returnValue !== "confirm") return;
    await api(base, { method: "DELETE" });
    announce("Upload retracted.");
    await uploadDetailPage(id);
  }));
  const corrected = h("input", { type: "file", id: "corrected", accept: national ? ".zip" : ".csv,.txt",
                                 class: "visually-hidden-file" });
  corrected.addEventListener("change", () => { if (corrected.files[0]) uploadAgain(corrected.files[0], u); });

  const actions = h("div", { class: "actions" },
    downloads,
    scopes.has("ingest") && (u.invalid_rows > 0 || u.status !== "uploaded") ? h("label", { for: "corrected", class: "button", id: "upload-corrected" },
      "Upload a corrected file", corrected) : null,
    mayRetract ? h("button", { type: "button", class: "danger", id: "retract",
                               onclick: () => dialog.showModal() }, "Retract…") : null);

  const took = u.finished_at ? (new Date(u.finished_at) - new Date(u.started_at)) / 1000 : NaN;
  const facts = [
    ["Status", u.status + (u.dry_run ? " (dry run)" : "")],
    ["File", u.filename],
    ["Kind", national ? "national programme ZIP" : `${u.ingestion_type} · spec ${u.ingestion_name}` +
      (u.spec_version ? ` (version ${u.spec_version})` : "")],
    ["Programme", u.program_name || "—"],
    ["Sent by", u.client || "—"],
    ["Started", when(u.started_at)],
    ["Finished", u.finished_at ? `${when(u.finished_at)} (${duration(took)})` : "—"],
    ["Size", bytes(u.bytes)],
    ["Upload id", h("span", { class: "id" }, u.upload_id)],
  ];
  if (u.retracted_by) facts.push(["Retracted", `${when(u.retracted_at)} by ${u.retracted_by}`]);
  const keys = objectKeys(u);
  const original = duplicateOf(u);
  const originalLink = original ? h("a", { href: `#/uploads/${encodeURIComponent(original)}`, class: "id" }, original) : null;
  if (original) facts.push(["Duplicate of", originalLink]);
  // A duplicate wrote nothing: its files are the earlier upload's, named there.
  const written = original
    ? [h("h2", {}, "Files"), h("p", { id: "objects" }, "Nothing new was written: this is a duplicate. ",
        "The data is held by upload ", originalLink.cloneNode(true), ".")]
    : [h("h2", {}, "Files written"),
       keys.length && !gone ? h("ul", { class: "keys", id: "objects" }, keys.map((k) => h("li", {}, h("code", {}, k))))
         : h("p", {}, gone ? "Deleted when the upload was retracted." : "None: nothing was written.")];

  mount(
    h("h1", {}, `Upload: ${u.filename || u.upload_id}`),
    verdictBox(u), message, warnings(u), counts(u),
    h("dl", { class: "facts", id: "facts" }, facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
    ...written,
    actions, dialog,
    national || !u.ingestion_name || gone ? null : templateLinks(kind, u.ingestion_name,
      { intro: `Templates of spec ${u.ingestion_name} to fill in: ` }),
    await datasetsSection(u),
    await unknownKeysSection(u),
    await rejectedSection(u, base, national, gone));
}

function objectKeys(u) {
  const o = u.objects || {};
  return ["valid", "errors"].flatMap((p) => (Array.isArray(o[p]) ? o[p] : [o[p]])).filter(Boolean);
}

async function rejectedSection(u, base, national, gone) {
  if (!u.invalid_rows) return null;
  let records = u.errors_sample || [];
  let complete = false;
  if (!national && !gone && u.objects && u.objects.errors && u.invalid_rows <= MAX_LOADED) {
    try {
      records = errorRecords(parseCsv(await fetchText(`${base}/errors`)));
      complete = true;
    } catch { /* fall back to the sample in the record */ }
  }
  const byCode = new Map();
  for (const r of records) byCode.set(r.code, (byCode.get(r.code) || 0) + 1);
  const columns = [...new Set(records.map((r) => r.column || "(whole row)"))].sort();
  const colSel = h("select", { id: "filter-column" }, h("option", { value: "" }, "all columns"),
    columns.map((c) => h("option", { value: c }, c)));
  const codeSel = h("select", { id: "filter-code" }, h("option", { value: "" }, "all codes"),
    [...byCode.keys()].sort().map((c) => h("option", { value: c }, c)));
  const tbody = h("tbody", {});
  const shown = h("p", { class: "hint", id: "rows-shown" });
  const draw = () => {
    const picked = records.filter((r) => (!colSel.value || (r.column || "(whole row)") === colSel.value) &&
                                         (!codeSel.value || r.code === codeSel.value));
    tbody.replaceChildren(...errorRows(picked.slice(0, MAX_SHOWN))
      .map((row) => h("tr", {}, cells(ERROR_HEADERS, row))));
    shown.textContent = `Showing ${Math.min(picked.length, MAX_SHOWN).toLocaleString("en")} of ${plural(picked.length, "error")}` +
      (complete ? "." : " (the first ones only).");
    announce(shown.textContent);
  };
  colSel.addEventListener("change", draw);
  codeSel.addEventListener("change", draw);
  draw();
  return h("section", { id: "rejected" },
    h("h2", {}, plural(u.invalid_rows, "rejected row")),
    h("ul", { class: "code-counts", id: "code-counts", "aria-label": "Errors per code" },
      [...byCode.entries()].sort((a, b) => b[1] - a[1]).map(([c, n]) => h("li", {}, h("code", {}, c), ` ${n}`))),
    h("div", { class: "grid" }, field("Column", colSel), field("Code", codeSel)),
    shown,
    h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Rejected rows" },
      h("table", { id: "errors-table", class: "cards" }, h("thead", {}, h("tr", {},
        ERROR_HEADERS.map((x) => h("th", { scope: "col" }, x)))), tbody)));
}
