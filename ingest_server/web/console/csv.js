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

// One record per error of a row: "_errors" holds "column: code: message; …".
export function errorRecords(rows) {
  if (!rows.length) return [];
  const header = rows[0];
  const lineAt = header.lastIndexOf("_line");
  const errorsAt = header.lastIndexOf("_errors");
  const out = [];
  for (const row of rows.slice(1)) {
    for (const part of (row[errorsAt] || "").split("; ")) {
      const m = /^(.*?): ([a-z0-9_]+): (.*)$/s.exec(part);
      if (!m) continue;
      const column = m[1] === "(row)" ? null : m[1];
      const at = column === null ? -1 : header.indexOf(column);
      out.push({ line: Number(row[lineAt]), column, value: at >= 0 ? row[at] : "", code: m[2], message: m[3] });
    }
  }
  return out;
}
