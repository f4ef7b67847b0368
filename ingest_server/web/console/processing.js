// cQube processing in the console: the grammars on the Specs page, an upload's unknown keys
// grouped by dimension. Both ask the processing API and show nothing when processing is off.
import { api, processingEnabled } from "./api.js";
import { cells, h, notice, plural, when } from "./dom.js";

// Asked, not probed: a 404 of a probe would show as an error in the browser console.
async function optional(path) {
  return (await processingEnabled()) ? api(path) : null;
}

function table(id, label, headers, rows) {
  return h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": label },
    h("table", { id, class: "cards" }, h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows.map((values) => h("tr", {}, cells(headers, values))))));
}

export async function grammarsSection() {
  const g = await optional("/api/processing/grammars");
  if (!g) return null;
  return h("section", { id: "grammars" },
    h("h2", {}, "cQube grammars"),
    h("h3", {}, "Dimensions"),
    g.dimensions.length ? table("dimensions-table", "Dimension grammars",
      ["Dimension", "Key column", "Rows", "Last load"],
      g.dimensions.map((d) => [d.name, h("code", {}, d.key_column), d.rows.toLocaleString("en"),
        d.last_load ? `${when(d.last_load.loaded_at)} (${plural(d.last_load.rows, "row")})` : "never"]))
      : h("p", {}, "None registered."),
    h("h3", {}, "Events"),
    g.events.length ? table("events-table", "Event grammars",
      ["Programme", "Event", "Metric", "Dimensions"],
      g.events.map((e) => [e.program, e.name, h("code", {}, e.metric),
        e.dimensions.map((d) => `${d.column} → ${d.dimension}`).join(", ")]))
      : h("p", {}, "None registered."));
}

export async function unknownKeysSection(u) {
  if (!u.invalid_rows || u.ingestion_type !== "event" || u.route !== "new_programs") return null;
  const r = await optional(`/api/processing/uploads/${encodeURIComponent(u.upload_id)}/references`);
  if (!r || !r.unknown_references.length) return null;
  return h("section", { id: "unknown-keys" },
    h("h2", {}, "Unknown keys by dimension"),
    h("p", { class: "hint" }, "Rows whose key is not in the dimension's table (load the master data, or correct the keys)."),
    table("unknown-keys-table", "Unknown keys by dimension",
      ["Dimension", "Column", "Rows", "Distinct unknown keys", "Examples"],
      r.unknown_references.map((g) => [g.dimension, h("code", {}, g.column), g.rows.toLocaleString("en"),
        (g.distinct_keys_at_least ? "≥ " : "") + g.distinct_keys.toLocaleString("en"),
        g.examples.join(", ")])));
}

// Whether an event upload is in cQube's dashboard tables (its datasets step), or why not; and
// when its programme's tables last changed. Refreshed while the step is pending.
export async function datasetsSection(u) {
  if (u.ingestion_type !== "event" || u.route !== "new_programs" || !u.program_name) return null;
  if (!(await processingEnabled())) return null;
  const section = h("section", { id: "datasets" }, h("h2", {}, "Dashboard tables"));
  const fill = async (record) => {
    const body = [datasetsState(record), await programLine(record.program_name)];
    section.replaceChildren(section.firstChild, ...body.filter(Boolean));
    if (record.processing && record.processing.status === "pending") {
      setTimeout(async () => {
        if (!section.isConnected) return; // another page meanwhile
        await fill(await api(`/api/ingestion/uploads/${encodeURIComponent(record.upload_id)}`));
      }, 3000);
    }
  };
  await fill(u);
  return section;
}

function datasetsState(u) {
  const p = u.processing;
  const gone = u.status === "retracted" || u.status === "retracting";
  const state = (kind, title, ...lines) =>
    h("div", { id: "datasets-state" }, notice(kind, title, ...lines));
  if (gone) return state("info", "Not in the dashboard tables", "Its rows were taken out when it was retracted.");
  if (!p) {
    if (u.status !== "uploaded") return state("info", "Not in the dashboard tables", "Nothing landed, so nothing was added.");
    return state("info", "Nothing added to the dashboard tables",
      u.objects && u.objects.duplicate_of ? "A duplicate adds nothing: its rows are there through the earlier upload."
        : "No valid rows landed.");
  }
  const why = p.error ? `${p.error.code}: ${p.error.message}` : null;
  if (p.status === "done") {
    return state("ok", "In the dashboard tables",
      `${plural(p.groups, "group")} in ${plural(p.tables, "table")}, added ${when(p.finished_at)}.`);
  }
  if (p.status === "failed") {
    return state("error", "Not in the dashboard tables: processing failed",
      `After ${plural(p.attempts, "attempt")}: ${why}`);
  }
  return state("warn", "Not in the dashboard tables yet: processing is pending",
    why ? `Attempt ${p.attempts} failed (${why}); it is tried again.` : "Being added now.");
}

async function programLine(program) {
  const registered = (await api("/api/processing/grammars")).programs.some((p) => p.name === program);
  if (!registered) { // asked, not probed: a 404 would show as an error in the browser console
    return h("p", { id: "program-processed" }, `Programme ${program} is not registered for processing.`);
  }
  const info = await api(`/api/processing/programs/${encodeURIComponent(program)}`);
  const last = info.datasets && info.datasets.last_processed_at;
  return h("p", { id: "program-processed" }, `Programme ${program}: tables last updated `,
    last ? when(last) : "never", ".");
}
