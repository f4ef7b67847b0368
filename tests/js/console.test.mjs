// Unit tests of the console's pure functions (node --test; run by tests/test_console_js.py).
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError, apiError, describe, detailLines, statusWords } from "../../ingest_server/web/console/api.js";
import { errorRecords, parseCsv, splitErrors } from "../../ingest_server/web/console/csv.js";
import { bytes, downloadName, duration, plural, when } from "../../ingest_server/web/console/dom.js";
import { csvTypes, specKindOf, specKinds } from "../../ingest_server/web/console/programs.js";
import { duplicateOf, errorRows, sampleCaption, verdict } from "../../ingest_server/web/console/results.js";
import { dayStart } from "../../ingest_server/web/console/page-history.js";

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
  assert.deepEqual(verdict({ ...base, objects: { duplicate_of: "x" } }).slice(0, 2),
                   ["info", "Duplicate: this exact file was uploaded before"]);
  assert.equal(verdict({ ...base, invalid_rows: 1, objects: { duplicate_of: "x" } })[1],
               "Duplicate: this exact file was uploaded before");  // never "Accepted with …"
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
  assert.deepEqual(describe(err), { title: "Columns are missing", lines: [
    "Columns are missing.", "Missing: a, b.", "If you report this, quote request id r1."] });
  assert.equal(describe(apiError(429, { error: { code: "rate_limited", message: "slow down",
                                                 details: { retry_after_s: 2.5 } } })).lines[1],
               "Try again in 3 seconds.");
  assert.equal(describe(apiError(503, null)).title, "The server had a problem");
  assert.deepEqual(describe(new Error("boom")), { title: "Something went wrong", lines: ["boom"] });
});

test("plural: one function for every count in words, English rules", () => {
  assert.equal(plural(0, "row"), "0 rows");
  assert.equal(plural(1, "rejected row"), "1 rejected row");
  assert.equal(plural(2, "rejected row"), "2 rejected rows");
  assert.equal(plural(1200, "entry", "entries"), "1,200 entries");
  assert.equal(plural(1, "entry", "entries"), "1 entry");
  assert.equal(plural(undefined, "spec"), "0 specs");
  assert.equal(verdict({ status: "uploaded", valid_rows: 1, invalid_rows: 1, objects: {} })[2],
               "1 valid row landed. Fix the rejected rows and upload them again.");
});

test("when: one date format, the same whatever the browser's language", () => {
  assert.equal(when(new Date(2026, 0, 5, 9, 3, 7)), "2026-01-05 09:03");
  assert.equal(when(new Date(2026, 11, 31, 23, 59)), "2026-12-31 23:59");
  assert.equal(when(new Date(2026, 0, 5, 9, 3).toISOString()), "2026-01-05 09:03");
  assert.equal(when(null), "");
  assert.equal(when("not a date"), "not a date");
});

test("downloadName carries the name of the file that was sent", () => {
  assert.equal(downloadName("attendance-march.csv", "errors"), "attendance-march.errors.csv");
  assert.equal(downloadName("attendance.xlsx", "valid"), "attendance.valid.csv");
  assert.equal(downloadName("march.csv", "errors.formula-safe"), "march.errors.formula-safe.csv");
  assert.equal(downloadName("national.zip", "errors", "teachers.csv"), "national.teachers.errors.csv");
  assert.equal(downloadName("C:\\Users\\x\\my file.csv", "valid"), "my file.valid.csv");
  assert.equal(downloadName("../\"evil\".csv", "valid"), "evil.valid.csv");
  assert.equal(downloadName("", "valid"), "upload.valid.csv");
  assert.equal(downloadName("archive.tar.gz", "valid"), "archive.tar.valid.csv");
});

test("duplicateOf names the upload holding the data, only for a landed duplicate", () => {
  assert.equal(duplicateOf({ status: "uploaded", objects: { duplicate_of: "u1", valid: "k" } }), "u1");
  assert.equal(duplicateOf({ status: "uploaded", objects: { valid: "k" } }), null);
  assert.equal(duplicateOf({ status: "retracted", objects: { duplicate_of: "u1" } }), null);
  assert.equal(duplicateOf(null), null);
});

test("a refusal's lists are said once: not again when the message holds them", () => {
  assert.deepEqual(detailLines("Missing required column(s): school_id, date", { missing: ["school_id", "date"] }), []);
  assert.deepEqual(detailLines("the header does not match", { missing: ["pupils"], columns: ["id", "n"] }),
                   ["Columns: id, n.", "Missing: pupils."]);
  const err = apiError(400, { error: { code: "missing_column", message: "Missing required column(s): a, b",
                                       details: { missing: ["a", "b"] } } });
  assert.deepEqual(describe(err), { title: "Columns are missing", lines: ["Missing required column(s): a, b."] });
});

test("a wrong secret is titled as what it is, not as a sign-in prompt", () => {
  const wrong = apiError(401, { error: { code: "invalid_client", message: "invalid client credentials" } });
  assert.deepEqual(describe(wrong), { title: "Wrong client id or secret", lines: ["Invalid client credentials."] });
  assert.equal(describe(apiError(401, { error: { code: "token_expired", message: "expired" } })).title,
               "Your session has expired");
  assert.equal(describe(apiError(401, null)).title, "Please sign in");
});

test("dayStart: a day typed in the history filters is the browser's day, sent as its first instant", () => {
  assert.equal(dayStart("2026-03-01"), new Date(2026, 2, 1).toISOString());
  assert.equal(dayStart("2026-12-31", 1), new Date(2027, 0, 1).toISOString());
  assert.equal(dayStart("2026-03-01T10:00:00Z"), "2026-03-01T10:00:00Z");
  assert.equal(when(dayStart("2026-03-01")), "2026-03-01 00:00");
});

test("sampleCaption counts rows, not errors (a row may have several), with plural rules", () => {
  const two = [{ line: 3, code: "a" }, { line: 3, code: "b" }];
  assert.equal(sampleCaption(two, 1), "The rejected row");
  assert.equal(sampleCaption([...two, { line: 5 }], 2), "The 2 rejected rows");
  assert.equal(sampleCaption(two, 1500), "The first 1 rejected row of 1,500");
  assert.equal(sampleCaption([{ line: 3, member: "a.csv" }, { line: 3, member: "b.csv" }], 4),
               "The first 2 rejected rows of 4");
});
