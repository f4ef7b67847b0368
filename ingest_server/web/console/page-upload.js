// Upload: kind, spec, programme, the file, options; progress with speed and time left; the answer.
import { ApiError, api, apiError, authHeader, describe, resumableAvailable, session } from "./api.js";
import { announce, bytes, duration, field, h, mount, notice, plural } from "./dom.js";
import { counts, errorTable, fileError, sampleCaption, verdictBox, warnings } from "./results.js";
import { csvTypes, specKindOf } from "./programs.js";
import { templateLinks } from "./templates.js";

// What a state programme upload may be: CSV or text exports, or a workbook read directly.
const DATA_FILES = ".csv,.txt,.tsv,.xlsx,.xlsm,.xlsb,.xls,.ods";

let pendingFile = null; // a corrected file handed over by the upload page of an earlier upload

export function uploadAgain(file, upload) {
  pendingFile = { file, upload };
  location.hash = "#/upload";
}

export async function uploadPage() {
  const handed = pendingFile;
  pendingFile = null;
  const [specs, types] = await Promise.all([
    api("/api/specs").then((a) => a.specs), api("/api/plugins").then(csvTypes)]);
  const canUpload = session.scopes().has("ingest");

  const kindCsv = h("input", { type: "radio", name: "kind", value: "csv", id: "kind-csv", checked: true });
  const kindZip = h("input", { type: "radio", name: "kind", value: "zip", id: "kind-zip" });
  const kindSet = h("fieldset", { class: "kinds" }, h("legend", {}, "What are you sending?"),
    h("label", { for: "kind-csv", class: "choice" }, kindCsv, " A state programme CSV"),
    h("label", { for: "kind-zip", class: "choice" }, kindZip, " A national programme ZIP"));

  const type = h("select", { id: "ingestion_type", name: "ingestion_type" },
    types.map((t) => h("option", { value: t.name }, t.name)));
  const specList = h("datalist", { id: "spec-options" });
  const spec = h("input", { id: "ingestion_name", name: "ingestion_name", list: "spec-options",
                            autocomplete: "off", required: true, placeholder: "type to search" });
  const program = h("input", { id: "program_name", name: "program_name", autocomplete: "off" });
  const fillSpecs = () => {
    const kind = specKindOf(types, type.value);
    specList.replaceChildren(...specs.filter((s) => s.kind === kind)
      .map((s) => h("option", { value: s.name }, `${s.name} (version ${s.version})`)));
  };
  // The chosen spec's templates, once the name is one of the registered specs of this type.
  const templates = h("div", { id: "upload-templates" });
  const showTemplates = () => {
    const kind = specKindOf(types, type.value);
    const known = specs.find((s) => s.kind === kind && s.name === spec.value.trim());
    templates.replaceChildren(known ? templateLinks(kind, known.name,
      { id: "upload-template", intro: `Templates of spec ${known.name} to fill in: ` }) : "");
  };
  type.addEventListener("change", () => { fillSpecs(); showTemplates(); });
  spec.addEventListener("input", showTemplates);
  fillSpecs();
  const csvFields = h("div", {},
    h("div", { class: "grid" },
      field("Type", type),
      field("Spec", spec, specs.length ? `${plural(specs.length, "spec")} registered; type part of a name to search.` : null),
      field("Programme", program, "The programme folder the rows land in (not needed for dimensions)."),
      specList),
    specs.length ? null : h("p", { class: "empty", id: "upload-no-specs" }, "No specs yet — ",
      h("a", { href: "#/specs" }, "register one or create one from a sample"), " before uploading a CSV."),
    templates);

  const fileInput = h("input", { type: "file", id: "file", name: "file", accept: DATA_FILES });
  const chosen = h("p", { class: "chosen", id: "chosen" }, "No file chosen yet.");
  let file = null;
  const choose = (f) => {
    file = f;
    chosen.textContent = f ? `${f.name} · ${bytes(f.size)}` : "No file chosen yet.";
  };
  fileInput.addEventListener("change", () => choose(fileInput.files[0] || null));
  const drop = h("div", { class: "drop", id: "drop" },
    h("label", { for: "file" }, h("strong", {}, "Choose a file"), " or drop it here"), fileInput, chosen);
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) drop.addEventListener(ev, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); choose(e.dataTransfer.files[0] || null); });

  const dry = h("input", { type: "checkbox", id: "dry_run", name: "dry_run" });
  const rate = h("input", { type: "number", id: "max_error_rate", name: "max_error_rate",
                            min: "0", max: "100", step: "any", inputmode: "decimal" });
  const resumable = h("input", { type: "checkbox", id: "resumable", name: "resumable" });
  const resumableField = h("div", { class: "check", hidden: true },
    resumable, h("label", { for: "resumable" }, "Resumable upload (survives a lost connection; for big files)"));
  resumableAvailable().then((ok) => { resumableField.hidden = !ok; resumable.checked = ok; });
  // How the file is read: empty means "from the file" (a BOM, the header, its only sheet).
  const encoding = h("input", { id: "encoding", name: "encoding", autocomplete: "off",
                                placeholder: "from the file (UTF-8)", list: "encoding-options" });
  const encodingOptions = h("datalist", { id: "encoding-options" },
    ["utf-8", "cp1252", "cp1251", "cp1250", "iso8859-1", "utf-16", "gb18030", "shift_jis"].map((e) => h("option", { value: e })));
  const delimiter = h("select", { id: "delimiter", name: "delimiter" },
    [["", "found from the header"], [",", "comma ,"], [";", "semicolon ;"], ["tab", "tab"], ["|", "pipe |"]]
      .map(([v, t]) => h("option", { value: v }, t)));
  const sheet = h("input", { id: "sheet", name: "sheet", autocomplete: "off", placeholder: "its only sheet" });
  const options = h("fieldset", {}, h("legend", {}, "Options"),
    h("div", { class: "check" }, dry, h("label", { for: "dry_run" }, "Dry run: check the file, write nothing")),
    field("Reject the whole file above this error rate (%)", rate, "Leave empty to accept any number of bad rows."),
    field("Encoding", encoding, "Leave empty: a byte-order mark decides, else UTF-8. A file in another encoding is refused with the one to use."),
    encodingOptions,
    field("Delimiter", delimiter),
    field("Sheet (workbooks)", sheet, "Excel or LibreOffice workbooks are read directly; name the sheet when there are several."),
    resumableField);

  const progress = h("progress", { id: "progress", max: "100", value: "0", "aria-label": "Upload progress" });
  const progressText = h("p", { id: "progress-text", class: "hint" });
  const progressBox = h("div", { class: "progress", hidden: true }, progress, progressText);
  const result = h("section", { id: "result", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "primary", id: "send" }, "Upload");

  const setKind = () => {
    const zip = kindZip.checked;
    csvFields.hidden = zip;
    spec.required = !zip;
    fileInput.accept = zip ? ".zip" : DATA_FILES;
  };
  kindCsv.addEventListener("change", setKind);
  kindZip.addEventListener("change", setKind);

  if (handed) {
    const u = handed.upload;
    if (types.some((t) => t.name === u.ingestion_type)) type.value = u.ingestion_type;
    fillSpecs();
    spec.value = u.ingestion_name || "";
    showTemplates();
    program.value = u.program_name || "";
    if (u.route === "national_programs") { kindZip.checked = true; setKind(); }
    choose(handed.file);
  }

  const form = h("form", { class: "card", id: "upload-form", onsubmit: async (e) => {
    e.preventDefault();
    result.replaceChildren();
    if (!file) {
      result.append(notice("error", "Choose a file first", "Pick the file to send, or drop it on the box."));
      announce("Choose a file first.");
      return;
    }
    const zip = kindZip.checked;
    const fields = zip ? {} : { ingestion_type: type.value, ingestion_name: spec.value.trim() };
    if (!zip && program.value.trim()) fields.program_name = program.value.trim();
    if (dry.checked) fields.dry_run = "true";
    if (rate.value !== "") fields.max_error_rate = String(Number(rate.value) / 100);
    if (!zip && encoding.value.trim()) fields.encoding = encoding.value.trim();
    if (!zip && delimiter.value) fields.delimiter = delimiter.value;
    if (!zip && sheet.value.trim()) fields.sheet = sheet.value.trim();
    submit.disabled = true;
    progressBox.hidden = false;
    const started = performance.now();
    try {
      const answer = resumable.checked && !resumableField.hidden
        ? await sendResumable(file, zip, fields, progress, progressText)
        : await send(file, zip, fields, progress, progressText);
      progress.value = 100;
      progressText.textContent = `Sent ${bytes(file.size)} in ${duration((performance.now() - started) / 1000)}.`;
      showAnswer(result, answer);
    } catch (err) {
      progressText.textContent = `Not accepted (${bytes(file.size)} sent).`;
      const { title, lines } = describe(err);
      result.replaceChildren(notice("error", title, ...lines));
      const likely = err && err.details && err.details.likely_encoding;
      if (likely) {  // the refusal names the encoding: it is filled in, ready to send again
        encoding.value = likely;
        encoding.setAttribute("aria-invalid", "false");
        result.append(notice("info", "Encoding filled in", `The Encoding field now says ${likely}: press Upload to send the file again with it.`));
        encoding.focus();
      }
      announce(`${title}. ${lines.join(" ")}`);
    } finally {
      submit.disabled = false;
    }
  } },
  kindSet, csvFields, drop, options, progressBox, submit);

  mount(h("h1", {}, "Upload a file"),
    canUpload ? null : notice("warn", "Read only", "Your account cannot upload (no ingest scope)."),
    handed ? notice("info", "Corrected file ready", `Sending ${handed.file.name} again with the same settings.`) : null,
    form, result);
  if (handed) form.requestSubmit(); // the corrected file goes at once, with the same settings
}

function progressUpdate(progress, text, sent, total, started) {
  const pct = total ? Math.round((sent / total) * 100) : 0;
  progress.value = pct;
  const elapsed = (performance.now() - started) / 1000;
  const speed = elapsed > 0 ? sent / elapsed : 0;
  const left = speed > 0 ? (total - sent) / speed : NaN;
  text.textContent = sent >= total
    ? `${bytes(total)} sent · checking the last rows…`
    : `${bytes(sent)} of ${bytes(total)} · ${bytes(speed)}/s · ${duration(left) || "…"} left`;
  if (pct % 25 === 0) announce(`Upload ${pct} percent`);
}

function send(file, zip, fields, progress, text) {
  // XMLHttpRequest, not fetch: only it reports upload progress.
  const path = zip ? "/api/ingestion/national_programs" : "/api/ingestion/new_programs";
  const body = new FormData();
  for (const [k, v] of Object.entries(fields)) body.append(k, v);
  body.append("file", file, file.name);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const started = performance.now();
    xhr.open("POST", path);
    xhr.setRequestHeader("Accept", "application/json");
    for (const [k, v] of Object.entries(authHeader())) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener("progress", (e) => progressUpdate(progress, text, e.loaded, e.total || file.size, started));
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* described below */ }
      if (xhr.status >= 200 && xhr.status < 300 && body) { resolve(body); return; }
      reject(apiError(xhr.status, body));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "network", "The connection was lost during the upload.", {})));
    xhr.send(body);
  });
}

function tusError(err) {
  // The server's JSON error when there is one (e.g. the file was refused once complete).
  const res = err.originalResponse;
  let body = null;
  try { body = res ? JSON.parse(res.getBody()) : null; } catch { /* not JSON */ }
  if (body && body.error) return apiError(res.getStatus(), body);
  return new ApiError(0, "resumable", "The resumable upload failed; choose the file again to resume it.", {});
}

function sendResumable(file, zip, fields, progress, text) {
  // tus: the file goes in chunks and resumes after a lost connection. The last answer names the
  // upload record (Upload-Id), the same record a one-shot upload makes.
  const started = performance.now();
  const metadata = { filename: file.name, ...fields };
  if (zip) metadata.ingestion_type = "national";
  let uploadId = null;
  return new Promise((resolve, reject) => {
    const upload = new window.tus.Upload(file, {
      endpoint: "/api/ingestion/resumable",
      headers: { ...authHeader(), Accept: "application/json" },
      metadata,
      chunkSize: 8 * 1024 * 1024,
      retryDelays: [0, 1000, 3000, 5000],
      removeFingerprintOnSuccess: true,
      onProgress: (sent, total) => progressUpdate(progress, text, sent, total, started),
      onAfterResponse: (req, res) => { uploadId = res.getHeader("Upload-Id") || uploadId; },
      onError: (err) => reject(tusError(err)),
      onSuccess: async () => {
        try {
          if (uploadId) { resolve(await api(`/api/ingestion/uploads/${encodeURIComponent(uploadId)}`)); return; }
          const q = new URLSearchParams({ filename: file.name });
          if (fields.ingestion_name) q.set("ingestion_name", fields.ingestion_name);
          resolve(await api(`/api/ingestion/file-status?${q}`));
        } catch (err) { reject(err); }
      },
    });
    upload.findPreviousUploads().then((previous) => {
      // Resume only the same request: a file sent again with other options (an encoding
      // filled in after a refusal) is a new upload, not the old one's answer again.
      const same = previous.filter((p) => JSON.stringify(p.metadata || {}) === JSON.stringify(metadata));
      if (same.length) upload.resumeFromPreviousUpload(same[0]);
      upload.start();
    });
  });
}

function showAnswer(result, u) {
  const first = u.errors_sample || [];
  result.replaceChildren(...[
    h("h2", {}, "Result"),
    verdictBox(u),
    fileError(u),
    warnings(u),
    counts(u),
    first.length ? errorTable(first, sampleCaption(first, u.invalid_rows)) : null,
    h("p", {}, h("a", { href: `#/uploads/${u.upload_id}`, class: "button", id: "details-link" },
      "See all details, download files"))].filter(Boolean));
  announce(`${document.getElementById("verdict").textContent}`);
}
