// Unit tests of the console's pure functions (node --test; run by tests/test_console_js.py).
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError, apiError, describe, statusWords } from "../../ingest_server/web/console/api.js";
import { errorRecords, parseCsv, splitErrors } from "../../ingest_server/web/console/csv.js";
import { bytes, duration, plural } from "../../ingest_server/web/console/dom.js";
import { csvTypes, specKindOf, specKinds } from "../../ingest_server/web/console/programs.js";
import { errorRows, verdict } from "../../ingest_server/web/console/results.js";

test("parseCsv reads RFC 4180: quotes, doubled quotes, line breaks in cells, CRLF, no final newline", () => {
  const text = 'a,b,c\r\n"x, y","say ""hi""",\n"two\nlines",,3';
  assert.deepEqual(parseCsv(text), [["a", "b", "c"], ["x, y", 'say "hi"', ""], ["two\nlines", "", "3"]]);
  assert.deepEqual(parseCsv("a\n"), [["a"]]);
  assert.deepEqual(parseCsv(""), []);
});

test("an _errors cell splits only where a column and a code follow, so messages keep their '; '", () => {
  const ragged = "(row): ragged_row: expected 2 cells, got 4; cells past the header: 'x','y; z: w'";
  assert.deepEqual(splitErrors(ragged, ["id", "n"]), [
    { column: null, code: "ragged_row", message: "expected 2 cells, got 4; cells past the header: 'x','y; z: w'" }]);
  const two = "n: type_error: expected a number, got 'a; b'; id: custom:not_blank: id; is required";
  assert.deepEqual(splitErrors(two, ["id", "n"]), [
    { column: "n", code: "type_error", message: "expected a number, got 'a; b'" },
    { column: "id", code: "custom:not_blank", message: "id; is required" }]);
  assert.deepEqual(splitErrors("", ["id"]), []);
});

test("errorRecords gives one record per error with the line and the original value", () => {
  const file = 'id,n,_line,_errors\nS1,a,3,"n: type_error: expected a number, got \'a\'"\n' +
               'S2,5,4,"(row): ragged_row: expected 2 cells, got 3; cells past the header: \'q\'"\n';
  assert.deepEqual(errorRecords(parseCsv(file)), [
    { line: 3, column: "n", value: "a", code: "type_error", message: "expected a number, got 'a'" },
    { line: 4, column: null, value: "", code: "ragged_row",
      message: "expected 2 cells, got 3; cells past the header: 'q'" }]);
  assert.deepEqual(errorRecords([]), []);
});

test("verdict: one sentence per outcome", () => {
  const base = { status: "uploaded", valid_rows: 3, invalid_rows: 2, objects: {} };
  assert.deepEqual(verdict({ ...base, dry_run: true }).slice(0, 2), ["info", "Dry run: checked, nothing was written"]);
  assert.equal(verdict({ ...base, dry_run: true })[2], "3 rows would be accepted and 2 rows rejected.");
  assert.equal(verdict({ ...base, objects: { duplicate_of: "x" } })[1],
               "Already received: this exact file was uploaded before");
  assert.deepEqual(verdict({ ...base, invalid_rows: 0 }), ["ok", "Accepted: every row is valid", "3 rows landed."]);
  assert.deepEqual(verdict({ ...base, invalid_rows: 1 }).slice(0, 2), ["warn", "Accepted with 1 rejected row"]);
  assert.deepEqual(verdict({ status: "rejected", error: { message: "no spec" } }),
                   ["error", "Rejected: nothing was written", "no spec"]);
  assert.deepEqual(verdict({ status: "failed", message: "storage down" }),
                   ["error", "Failed: nothing was written", "storage down"]);
  assert.equal(verdict({ status: "retracted", retracted_by: "ops" })[2], "By ops.");
  assert.equal(verdict({ status: "retracting" })[1], "Retraction not finished");
  assert.deepEqual(verdict({ status: "receiving", message: "…" }), ["info", "In progress", "…"]);
});

test("errorRows names the member of a national ZIP and the whole row", () => {
  assert.deepEqual(errorRows([{ line: 4, column: null, value: null, code: "c", message: "m", member: "a.csv" },
                              { line: 2, column: "x", value: "", code: "c", message: "m" }]),
                   [["a.csv: 4", "(whole row)", "", "c", "m"], ["2", "x", "", "c", "m"]]);
});

test("bytes, duration and plural read as a person writes them", () => {
  assert.equal(bytes(null), "");
  assert.equal(bytes(0), "0 bytes");
  assert.equal(bytes(999), "999 bytes");
  assert.equal(bytes(1000), "1.0 KB");
  assert.equal(bytes(59_600_000), "59.6 MB");
  assert.equal(bytes(2.5e15), "2500.0 TB");
  assert.equal(duration(0.2), "under a second");
  assert.equal(duration(42.4), "42 s");
  assert.equal(duration(125), "2 min 5 s");
  assert.equal(duration(-1), "");
  assert.equal(plural(1, "row"), "1 row");
  assert.equal(plural(2, "entry", "entries"), "2 entries");
});

test("program types and spec kinds come from /api/plugins, event first", () => {
  const plugins = { program_types: [
    { name: "dataset", route: "new_programs", spec_kind: "dataset" },
    { name: "dimension", route: "new_programs", spec_kind: "dimension" },
    { name: "event", route: "new_programs", spec_kind: "event" },
    { name: "mid-day-meal", route: "new_programs", spec_kind: "event" },
    { name: "national", route: "national_programs", spec_kind: "event" }] };
  const types = csvTypes(plugins);
  assert.deepEqual(types.map((t) => t.name), ["event", "dataset", "dimension", "mid-day-meal"]);
  assert.deepEqual(specKinds(plugins), ["event", "dataset", "dimension"]);
  assert.equal(specKindOf(types, "mid-day-meal"), "event");
  assert.deepEqual(csvTypes({}), []);
});

test("one conversion of error answers: the server's JSON error, else the status in words", () => {
  const refused = apiError(400, { error: { code: "missing_column", message: "a column is missing",
                                           details: { columns: ["school_id"] } } });
  assert.ok(refused instanceof ApiError);
  assert.deepEqual([refused.status, refused.code, refused.message, refused.details],
                   [400, "missing_column", "a column is missing", { columns: ["school_id"] }]);
  const proxy = apiError(413, null);  // a proxy's HTML page: no JSON body
  assert.deepEqual([proxy.code, proxy.message], ["http_413", "The file is too large for this server."]);
  assert.equal(apiError(418, { detail: "x" }).message, "The server answered with an error (HTTP 418).");
  assert.deepEqual(statusWords(504), ["The server had a problem", "The server answered with an error (HTTP 504)."]);
});

test("describe puts an error in words: title from the one status table, details a person can act on", () => {
  const err = apiError(400, { error: { code: "missing_column", message: "columns are missing",
                                       details: { missing: ["a", "b"], request_id: "r1" } } });
  assert.deepEqual(describe(err), { title: "The request was refused", lines: [
    "Columns are missing.", "Missing: a, b.", "If you report this, quote request id r1."] });
  assert.equal(describe(apiError(429, { error: { code: "rate_limited", message: "slow down",
                                                 details: { retry_after_s: 2.5 } } })).lines[1],
               "Try again in 3 seconds.");
  assert.equal(describe(apiError(503, null)).title, "The server had a problem");
  assert.deepEqual(describe(new Error("boom")), { title: "Something went wrong", lines: ["boom"] });
});
