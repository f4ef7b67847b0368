-- Datasets: the smallest and largest dataset row id of each (upload, table) contribution. A
-- retraction (or a `replace`) recomputes rows from the other uploads' contributions to the same
-- table; those whose range does not meet the rows in question are skipped without reading their
-- arrays. Daily tables, where each upload mostly adds new rows (ids from a sequence), then read
-- a few uploads' arrays instead of all of them. NULL: not known (read the arrays).
ALTER TABLE processing_applied_tables ADD COLUMN IF NOT EXISTS first_row integer;
ALTER TABLE processing_applied_tables ADD COLUMN IF NOT EXISTS last_row integer;
UPDATE processing_applied_tables SET first_row = r.lo, last_row = r.hi
FROM (SELECT upload_id, tbl, (SELECT min(i) FROM unnest(row_ids) i) AS lo,
             (SELECT max(i) FROM unnest(row_ids) i) AS hi
      FROM processing_applied_tables WHERE row_ids IS NOT NULL AND first_row IS NULL) r
WHERE processing_applied_tables.upload_id = r.upload_id AND processing_applied_tables.tbl = r.tbl;
