// How an upload's outcome reads for a person: a verdict, the counts, the first errors.
import { detailLines } from "./api.js";
import { h, plural, table, when } from "./dom.js";

// The upload that holds the data of a duplicate (the same bytes sent again), else null.
export function duplicateOf(u) {
  return (u && u.status === "uploaded" && u.objects && u.objects.duplicate_of) || null;
}

export function verdict(u) {
  if (u.status === "uploaded" && u.dry_run) {
    return ["info", "Dry run: checked, nothing was written",
            `${plural(u.valid_rows, "row")} would be accepted and ${plural(u.invalid_rows, "row")} rejected.`];
  }
  if (duplicateOf(u)) {
    return ["info", "Duplicate: this exact file was uploaded before",
            "Nothing new was written; the earlier upload holds the data."];
  }
  if (u.status === "uploaded" && u.invalid_rows === 0) {
    return ["ok", "Accepted: every row is valid", `${plural(u.valid_rows, "row")} landed.`];
  }
  if (u.status === "uploaded") {
    return ["warn", `Accepted with ${plural(u.invalid_rows, "rejected row")}`,
            `${plural(u.valid_rows, "valid row")} landed. Fix the rejected rows and upload them again.`];
  }
  if (u.status === "rejected") {
    return ["error", "Rejected: nothing was written", u.error ? u.error.message : u.message];
  }
  if (u.status === "failed") {
    return ["error", "Failed: nothing was written", u.error ? u.error.message : u.message];
  }
  if (u.status === "retracted") {
    return ["info", "Retracted: its files were deleted",
            `By ${u.retracted_by || "someone"}${u.retracted_at ? " on " + when(u.retracted_at) : ""}.`];
  }
  if (u.status === "retracting") {
    return ["error", "Retraction not finished", "Some files could not be deleted yet. Retract again to finish."];
  }
  return ["info", "In progress", u.message];
}

export function verdictBox(u) {
  const [kind, title, text] = verdict(u);
  const original = duplicateOf(u);
  return h("div", { class: `verdict ${kind}`, id: "verdict" }, h("strong", {}, title), h("p", {}, text),
    original ? h("p", {}, h("a", { href: `#/uploads/${encodeURIComponent(original)}`, id: "duplicate-of" },
      "Open the upload that holds the data")) : null);
}

export function warnings(u) {
  // Things the server did that the sender should know (e.g. our own _line/_errors columns
  // dropped from a corrected error file).
  const list = u.warnings || [];
  return list.length ? h("ul", { class: "warnings", id: "warnings" },
    list.map((w) => h("li", {}, w.message))) : null;
}

export function counts(u) {
  return h("dl", { class: "counts" },
    h("div", {}, h("dt", {}, "Rows"), h("dd", {}, (u.total_rows || 0).toLocaleString("en"))),
    h("div", { class: "good" }, h("dt", {}, "Valid"), h("dd", {}, (u.valid_rows || 0).toLocaleString("en"))),
    h("div", { class: u.invalid_rows ? "bad" : "" }, h("dt", {}, "Rejected"),
      h("dd", {}, (u.invalid_rows || 0).toLocaleString("en"))));
}

export function errorRows(sample) {
  return sample.map((e) => [e.member ? `${e.member}: ${e.line}` : String(e.line),
                            e.column || "(whole row)", e.value ?? "", e.code, e.message]);
}

export const ERROR_HEADERS = ["Line", "Column", "Value", "Code", "Message"];

// The caption of the first errors an answer carries: the rows they are on (a row may have
// several errors), and of how many.
export function sampleCaption(sample, rejected) {
  const rows = new Set(sample.map((e) => `${e.member || ""}\n${e.line}`)).size;
  if (rows >= rejected) return rows === 1 ? "The rejected row" : `The ${plural(rows, "rejected row")}`;
  return `The first ${plural(rows, "rejected row")} of ${(rejected || 0).toLocaleString("en")}`;
}

export function errorTable(sample, caption) {
  return table(ERROR_HEADERS, errorRows(sample), caption);
}

export function fileError(u) {
  // A file-level refusal (e.g. a missing column) in words, with what to do.
  const e = u.error;
  if (!e) return null;
  const extra = detailLines(e.message, e.details || e);
  return extra.length ? h("p", {}, extra.join(" ")) : null;
}
