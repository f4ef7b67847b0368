// RFC 4180 parsing of a whole (error) file, for the rejected-rows table.
export function parseCsv(text) {
  const rows = [];
  let row = [], cell = "", quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i += 1; }
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(cell); cell = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i += 1;
      row.push(cell); rows.push(row); row = []; cell = "";
    } else cell += c;
  }
  if (cell !== "" || row.length) { row.push(cell); rows.push(row); }
  return rows;
}

// The parts of an "_errors" cell: "column: code: message; column: code: message; …". A message
// may itself hold "; " (a ragged row quotes its extra cells, a value may be quoted), so a new part
// starts only where "; " is followed by a column of the file (or "(row)") and a code.
const CODE = "[a-z0-9_]+(?::[a-z0-9_]+)?"; // custom rules of plugins: "custom:<name>"
const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

export function splitErrors(text, columns) {
  if (!text) return [];
  const names = [...columns, "(row)"].filter(Boolean).sort((a, b) => b.length - a.length).map(escape);
  const boundary = new RegExp(`; (?=(?:${names.join("|")}): ${CODE}: )`);
  const out = [];
  for (const part of text.split(boundary)) {
    const m = new RegExp(`^(.*?): (${CODE}): (.*)$`, "s").exec(part);
    if (m) out.push({ column: m[1] === "(row)" ? null : m[1], code: m[2], message: m[3] });
  }
  return out;
}

// One record per error of a row of an error file (its header ends with "_line", "_errors").
export function errorRecords(rows) {
  if (!rows.length) return [];
  const header = rows[0];
  const lineAt = header.lastIndexOf("_line");
  const errorsAt = header.lastIndexOf("_errors");
  const columns = header.filter((_, i) => i !== lineAt && i !== errorsAt);
  const out = [];
  for (const row of rows.slice(1)) {
    for (const { column, code, message } of splitErrors(row[errorsAt], columns)) {
      const at = column === null ? -1 : header.indexOf(column);
      out.push({ line: Number(row[lineAt]), column, value: at >= 0 ? row[at] : "", code, message });
    }
  }
  return out;
}
