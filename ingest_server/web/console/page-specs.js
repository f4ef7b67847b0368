// Specs: browse, read the rules in words, compare versions, download an example header, register.
import { api, describe, download, session } from "./api.js";
import { announce, cells, field, h, mount, notice, plural, table, when } from "./dom.js";
import { grammarsSection } from "./processing.js";
import { specKinds } from "./programs.js";
import { templateLinks } from "./templates.js";

const TYPES = { string: "text", number: "number", float: "number", integer: "whole number",
                boolean: "yes/no", date: "date", datetime: "date and time" };

export function rulesInWords(rules) {
  const words = [];
  const t = rules.type;
  words.push(Array.isArray(t) ? t.map((x) => TYPES[x] || x).join(" or ") : (TYPES[t] || t || "any value"));
  words.push(rules.required ? "required" : "optional");
  // cQube's shouldnotnull: a cell blank after trimming fails (nullable false with coercion).
  if (rules.empty === false || rules.nullable === false) words.push("not blank");
  if (rules.allowed) words.push(`one of ${rules.allowed.join(", ")}`);
  if (rules.min !== undefined) words.push(`at least ${rules.min}`);
  if (rules.max !== undefined) words.push(`at most ${rules.max}`);
  if (rules.minlength !== undefined) words.push(`at least ${rules.minlength} characters`);
  if (rules.maxlength !== undefined) words.push(`at most ${rules.maxlength} characters`);
  if (rules.exclusive_min !== undefined) words.push(`more than ${rules.exclusive_min}`);
  if (rules.exclusive_max !== undefined) words.push(`less than ${rules.exclusive_max}`);
  if (rules.multiple_of !== undefined) words.push(`a multiple of ${rules.multiple_of}`);
  if (rules.format) words.push(`a valid ${rules.format}`);
  if (rules.regex) words.push(`matches ${rules.regex}`);
  if (rules.pattern) words.push(`contains a match of ${rules.pattern}`);
  const known = new Set(["type", "required", "empty", "nullable", "allowed", "min", "max",
                         "minlength", "maxlength", "regex", "coerce", "meta", "exclusive_min",
                         "exclusive_max", "multiple_of", "format", "pattern"]);
  for (const [k, v] of Object.entries(rules)) {
    if (!known.has(k)) words.push(`${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`);
  }
  return words.join(", ");
}

const SPEC_HEADERS = ["Name", "Kind", "Version", "Registered", "By"];

// A link to a control further down the page (the hash is the router's: it stays as it is).
const jump = (id, text) => h("a", { href: "#/specs", onclick: (e) => {
  e.preventDefault();
  const el = document.getElementById(id);
  el.scrollIntoView({ block: "center" });
  el.focus();
} }, text);

export async function specsPage() {
  const canRegister = session.scopes().has("spec");
  let [{ specs }, kinds] = await Promise.all([api("/api/specs"),
    canRegister ? api("/api/plugins").then(specKinds) : []]);
  const search = h("input", { id: "spec-search", type: "search", placeholder: "name or kind" });
  const tbody = h("tbody", {});
  const empty = h("p", { class: "empty", id: "specs-empty" });
  const tableWrap = h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Specs" },
    h("table", { id: "specs-table", class: "cards" }, h("thead", {}, h("tr", {},
      SPEC_HEADERS.map((x) => h("th", { scope: "col" }, x)))), tbody));
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const shown = specs.filter((s) => !q || `${s.kind} ${s.name}`.toLowerCase().includes(q));
    tbody.replaceChildren(...shown.map((s) => h("tr", {}, cells(SPEC_HEADERS, [
      h("a", { href: `#/specs/${s.kind}/${encodeURIComponent(s.name)}` }, s.name),
      s.kind, String(s.version), when(s.created_at), s.created_by || ""]))));
    tableWrap.hidden = !shown.length;
    empty.hidden = Boolean(shown.length);
    empty.replaceChildren(...(specs.length ? [`No spec matches "${search.value.trim()}".`]
      : canRegister ? ["No specs yet — ", jump("reg-json", "register one"), " or ",
                       jump("sample-file", "create one from a sample"), "."]
        : ["No specs yet — an account with the spec scope registers them."]));
  };
  // After a registration the list is asked for again: the new spec (or version) shows at once.
  const refresh = async () => { specs = (await api("/api/specs")).specs; draw(); };
  search.addEventListener("input", draw);
  draw();
  const register = canRegister ? registerForm(kinds, refresh) : null;
  mount(h("h1", {}, "Specs"),
    h("div", { role: "search" }, field("Search specs", search)),
    empty, tableWrap,
    await grammarsSection(),
    register ? sampleForm(kinds, register) : null,
    register ? register.box : null);
}

// "Create a spec from a sample file": the server drafts the spec (POST /api/specs/infer, nothing
// stored), the draft lands in the register form's text box to be edited, then registered there.
function sampleForm(kinds, register) {
  const file = h("input", { type: "file", id: "sample-file", accept: ".csv,.txt,.tsv,.xlsx,.xlsm,.xls,.ods" });
  const kind = h("select", { id: "sample-kind" }, kinds.map((k) => h("option", { value: k }, k)));
  const name = h("input", { id: "sample-name", autocomplete: "off", placeholder: "from the file's name" });
  const sheet = h("input", { id: "sample-sheet", autocomplete: "off", placeholder: "its only sheet" });
  const encoding = h("input", { id: "sample-encoding", autocomplete: "off", placeholder: "from the file (UTF-8)" });
  const out = h("div", { id: "sample-result", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "primary", id: "sample-infer" }, "Draft a spec");
  const form = h("form", { class: "card", id: "sample-form", onsubmit: async (e) => {
    e.preventDefault();
    out.replaceChildren();
    const picked = file.files[0];
    if (!picked) {
      out.replaceChildren(notice("error", "Choose a sample file first", "A CSV or a workbook with a header row and a few rows of data."));
      return;
    }
    const body = new FormData();
    body.append("kind", kind.value);
    if (name.value.trim()) body.append("name", name.value.trim());
    if (sheet.value.trim()) body.append("sheet", sheet.value.trim());
    if (encoding.value.trim()) body.append("encoding", encoding.value.trim());
    body.append("file", picked, picked.name);
    submit.disabled = true;
    try {
      const draft = await api("/api/specs/infer", { method: "POST", form: body });
      register.fill(draft.kind, draft.spec);
      out.replaceChildren(
        notice("ok", `Draft of spec ${draft.name} ready`,
          `Read from ${plural(draft.rows_read, "row")}${draft.truncated ? " (the first ones)" : ""}. ` +
          "Check the rules below, edit the draft in the Spec JSON box, then press Register."),
        evidenceTable(draft.evidence));
      announce(`Draft of spec ${draft.name} ready.`);
    } catch (err) {
      const { title, lines } = describe(err);
      out.replaceChildren(notice("error", title, ...lines));
      const likely = err && err.details && err.details.likely_encoding;
      if (likely) {  // as on the upload form: the encoding the refusal names, ready to try
        encoding.value = likely;
        out.append(notice("info", "Encoding filled in", `The Encoding field now says ${likely}: press Draft a spec again.`));
      }
      announce(`${title}. ${lines.join(" ")}`);
    } finally {
      submit.disabled = false;
    }
  } },
  h("h2", {}, "Create a spec from a sample file"),
  h("p", { class: "hint" }, "The server reads the file and drafts the rules: types, dates, required columns, the few values a column takes. Nothing is stored until you register."),
  h("div", { class: "grid" }, field("Sample file", file), field("Kind", kind), field("Name", name, "Leave empty to use the file's name."),
    field("Sheet (workbooks)", sheet), field("Encoding (text files)", encoding)),
  submit);
  return h("div", {}, form, out);
}

const EVIDENCE_HEADERS = ["Column", "Seen as", "Blank", "Distinct", "Examples"];

function evidenceTable(evidence) {
  const rows = Object.entries(evidence || {}).map(([c, e]) => [h("code", {}, c),
    e.type + (e.date_formats ? ` (${e.date_formats.join(", ")})` : ""),
    plural(e.blank, "cell"), String(e.distinct), (e.examples || []).join(", ")]);
  return table(EVIDENCE_HEADERS, rows, "What the sample shows", "evidence-table");
}

function registerForm(kinds, refresh) {
  const kind = h("select", { id: "reg-kind" }, kinds.map((k) => h("option", { value: k }, k)));
  const text = h("textarea", { id: "reg-json", rows: "12", spellcheck: "false",
    placeholder: '{"program": "name", "input": {"type": "object", "properties": {…}, "required": […]}}' });
  const out = h("div", { id: "reg-result", "aria-live": "polite" });
  // An edit clears the marks of the last refusal (the red box, the field list).
  const clearError = () => {
    text.removeAttribute("aria-invalid");
    if (out.querySelector(".notice.error")) out.replaceChildren();
  };
  text.addEventListener("input", clearError);
  text.addEventListener("dragover", (e) => e.preventDefault());
  text.addEventListener("drop", async (e) => {
    e.preventDefault();
    const f = e.dataTransfer.files[0];
    if (f) { text.value = await f.text(); clearError(); }
  });
  const form = h("form", { class: "card", id: "register-form", onsubmit: async (e) => {
    e.preventDefault();
    out.replaceChildren();
    clearError();
    let body;
    try { body = JSON.parse(text.value); } catch (err) {
      text.setAttribute("aria-invalid", "true");
      out.replaceChildren(notice("error", "This is not valid JSON", err.message));
      announce("This is not valid JSON.");
      return;
    }
    try {
      const answer = await api(`/api/spec/${kind.value}`, { method: "POST", body });
      out.replaceChildren(notice("ok", answer.created ? "Spec registered" : "No change", answer.message),
        h("p", {}, h("a", { href: `#/specs/${answer.spec.kind}/${encodeURIComponent(answer.spec.name)}` }, "Open it")));
      announce(answer.message);
      await refresh();
    } catch (err) {
      const { title, lines } = describe(err);
      out.replaceChildren(...[notice("error", title, ...lines), fieldsWithError(body, err.details || {})].filter(Boolean));
      announce(`${title}. ${lines.join(" ")}`);
      markInText(text, (err.details || {}).field);
    }
  } },
  h("h2", {}, "Register a spec"),
  h("p", { class: "hint" }, "Paste a cQube spec, drop its .json file on the box, or draft one from a sample file above."),
  field("Kind", kind), field("Spec JSON", text),
  h("button", { type: "submit", class: "primary", id: "register" }, "Register"));
  return {
    box: h("div", {}, form, out),
    fill(k, spec) {
      if (kinds.includes(k)) kind.value = k;
      text.value = JSON.stringify(spec, null, 2);
      clearError();
      out.replaceChildren();
    },
  };
}

function fieldsWithError(body, details) {
  // The spec's columns, with the server's message next to the one it is about.
  const props = body && body.input && body.input.properties;
  if (!props || typeof props !== "object") return null;
  return h("ul", { class: "spec-fields", id: "reg-fields" }, Object.keys(props).map((name) => {
    const bad = details.field === name;
    return h("li", { class: bad ? "bad" : "" }, h("code", {}, name),
      bad ? h("span", { class: "field-error", role: "note" },
        ` ← ${details.keyword ? `keyword "${details.keyword}": ` : ""}the server refused this field`) : null);
  }));
}

function markInText(text, name) {
  text.setAttribute("aria-invalid", "true");
  const at = name ? text.value.indexOf(`"${name}"`) : -1;
  if (at < 0) return;
  text.focus();
  text.setSelectionRange(at, at + name.length + 2);
}

export async function specPage(kind, name) {
  const path = `/api/specs/${kind}/${encodeURIComponent(name)}`;
  // The server pages versions: the newest five come with their schemas (to compare); the list
  // of versions is asked for as summaries when there are more.
  const spec = await api(`${path}?schemas=true`);
  const listed = spec.next_before === null ? spec.versions : (await api(`${path}?limit=100`)).versions;
  const latest = spec.latest;
  // The spec's own column order (kept by the server: jsonb alone would sort the keys).
  const order = latest.columns || Object.keys(latest.cerberus).sort((a, b) => a.localeCompare(b));
  const cols = order.filter((c) => c in latest.cerberus).map((c) => [c, latest.cerberus[c]]);
  const versions = spec.versions;
  const pick = (id, index) => h("select", { id },
    versions.map((v, i) => h("option", { value: String(v.version), selected: i === index }, `version ${v.version}`)));
  const older = pick("diff-from", Math.min(1, versions.length - 1));
  const newer = pick("diff-to", 0);
  const diffOut = h("div", { id: "diff", "aria-live": "polite" });
  const showDiff = () => {
    const a = versions.find((v) => String(v.version) === older.value);
    const b = versions.find((v) => String(v.version) === newer.value);
    diffOut.replaceChildren(diffTable(a.cerberus, b.cerberus, a.version, b.version));
  };
  older.addEventListener("change", showDiff);
  newer.addEventListener("change", showDiff);
  mount(h("h1", {}, `Spec: ${spec.name}`),
    h("p", {}, `${kind} spec, version ${latest.version}, registered ${when(latest.created_at)}` +
      (latest.created_by ? ` by ${latest.created_by}` : "") + "."),
    templateLinks(kind, spec.name, { id: "template" }),
    h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Columns" },
      h("table", { id: "columns" }, h("caption", {}, "Columns and their rules"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Column"), h("th", { scope: "col" }, "Rules"))),
        h("tbody", {}, cols.map(([c, r]) => h("tr", {}, h("td", {}, h("code", {}, c)), h("td", {}, rulesInWords(r))))))),
    h("h2", {}, "Versions"),
    h("ul", { id: "versions" }, listed.map((v) => h("li", {}, `version ${v.version} · ${when(v.created_at)}` + (v.created_by ? ` · ${v.created_by}` : "")))),
    spec.next_before === null ? null : h("p", { class: "hint" }, `The ${versions.length} newest versions can be compared.`),
    versions.length > 1 ? h("div", { class: "grid" }, field("Compare", older), field("with", newer)) : null,
    versions.length > 1 ? diffOut : null);
  if (versions.length > 1) showDiff();
}

function diffTable(a, b, va, vb) {
  const headers = ["Column", "Change", `Version ${va}`, `Version ${vb}`];
  const names = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort((x, y) => x.localeCompare(y));
  const rows = names.map((n) => {
    const before = a[n] ? rulesInWords(a[n]) : null;
    const after = b[n] ? rulesInWords(b[n]) : null;
    const change = before === null ? "added" : after === null ? "removed" : before === after ? "same" : "changed";
    return h("tr", { class: change }, cells(headers, [h("code", {}, n), change, before ?? "—", after ?? "—"]));
  });
  return h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Differences" },
    h("table", { id: "diff-table", class: "cards" }, h("caption", {}, `Version ${va} → version ${vb}`),
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows)));
}
