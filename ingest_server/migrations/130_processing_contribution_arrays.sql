-- Datasets: an upload's contribution to a table is stored on its (upload, table) marker, as three
-- arrays (dataset row ids, and this upload's count and sum for each), instead of one row per
-- dataset row in processing_contributions with two index entries each: applying a table writes
-- one row, not one per group (migration 110 wrote about 5 µs of PostgreSQL time per group).
-- NULL: nothing recorded (retracted, or recorded per row by an earlier build, not folded yet).
ALTER TABLE processing_applied_tables ADD COLUMN IF NOT EXISTS row_ids integer[];
ALTER TABLE processing_applied_tables ADD COLUMN IF NOT EXISTS counts float8[];
ALTER TABLE processing_applied_tables ADD COLUMN IF NOT EXISTS sums float8[];
-- A retraction recomputes a row from the other uploads' contributions to its table.
CREATE INDEX IF NOT EXISTS processing_applied_tables_tbl ON processing_applied_tables (tbl);
-- The per-row records of earlier builds (migration 110's layout, also written by a replica of
-- such a build still running) are folded into the arrays and taken out of
-- processing_contributions, which stays (empty) until a later release drops it. Idempotent; the
-- datasets step runs it again before a retraction if that table is not empty.
WITH moved AS (
    DELETE FROM processing_contributions RETURNING upload_id, tbl, row_id, count, sum
), folded AS (
    SELECT upload_id, tbl, count(*) AS groups, array_agg(row_id) AS row_ids,
           array_agg(count) AS counts, array_agg(sum) AS sums
    FROM moved GROUP BY upload_id, tbl
)
INSERT INTO processing_applied_tables AS m (upload_id, tbl, groups, row_ids, counts, sums)
SELECT upload_id, tbl, groups, row_ids, counts, sums FROM folded
ON CONFLICT (upload_id, tbl) DO UPDATE SET
    row_ids = coalesce(m.row_ids, '{}') || EXCLUDED.row_ids,
    counts = coalesce(m.counts, '{}') || EXCLUDED.counts,
    sums = coalesce(m.sums, '{}') || EXCLUDED.sums;
