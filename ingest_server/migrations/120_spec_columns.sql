-- A spec's columns in the order it was posted: jsonb keeps object keys in its own order, not
-- the spec's, and a template (or an example header) must follow the spec. NULL for specs
-- registered before (their templates put the required columns first, in the spec's order).
ALTER TABLE specs ADD COLUMN IF NOT EXISTS columns text[];
