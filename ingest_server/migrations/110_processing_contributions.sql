-- Datasets (DESIGN.md §12): what each upload added to each dataset table, so that processing an
-- upload twice changes nothing and a retraction takes exactly its part back out. One row per
-- (table, group, upload); a group is its row of the dataset table (datasets.<tbl>.id), so the
-- record is a few numbers and its indexes compare integers.
-- These tables must sit next to the dataset tables (the contribution and the table change are
-- one transaction): with a separate processing.dsn the same SQL is also run there.
CREATE TABLE IF NOT EXISTS processing_contributions (
    tbl         text COLLATE "C" NOT NULL,
    row_id      integer  NOT NULL,
    upload_id   text COLLATE "C" NOT NULL,
    count       float8   NOT NULL,
    sum         float8   NOT NULL
);
CREATE INDEX IF NOT EXISTS processing_contributions_row ON processing_contributions (tbl, row_id);
CREATE INDEX IF NOT EXISTS processing_contributions_upload ON processing_contributions (upload_id, tbl);
-- One row per upload whose contribution was applied (or that was retracted before it was):
-- the exactly-once marker, written in the same transaction as the tables' change.
CREATE TABLE IF NOT EXISTS processing_applied (
    upload_id     text        PRIMARY KEY,
    program       text        NOT NULL,
    tables        integer     NOT NULL,
    groups        bigint      NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT now(),
    retracted_at  timestamptz
);
CREATE INDEX IF NOT EXISTS processing_applied_program ON processing_applied (program, applied_at DESC);
-- One row per (upload, table) applied: each table is applied in its own transaction (two at a
-- time), so a job resumed after a crash, a retry or another replica applies only the tables
-- without their row here. ``processing_applied`` is written when every table has its row.
CREATE TABLE IF NOT EXISTS processing_applied_tables (
    upload_id   text COLLATE "C" NOT NULL,
    tbl         text COLLATE "C" NOT NULL,
    groups      bigint NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (upload_id, tbl)
);
