// cQube processing in the console: the grammars on the Specs page, an upload's unknown keys
// grouped by dimension. Both ask the processing API and show nothing when processing is off.
import { api, processingEnabled } from "./api.js";
import { cells, h, plural, when } from "./dom.js";

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
