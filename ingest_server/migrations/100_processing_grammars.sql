-- cQube processing (DESIGN.md §12): every registered version of every grammar and programme, as
-- sent (the CSV, or the programme's JSON), and each load of a dimension table. Our bookkeeping
-- lives here, in the service's database, never in cQube's spec tables.
CREATE TABLE IF NOT EXISTS processing_grammars (
    id          bigserial   PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('dimension', 'event', 'program')),
    program     text        NOT NULL DEFAULT '',   -- the programme folder of an event grammar
    name        text        NOT NULL,
    version     integer     NOT NULL CHECK (version >= 1),
    body        text        NOT NULL,
    sha256      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text,
    UNIQUE (kind, program, name, version)
);
CREATE INDEX IF NOT EXISTS processing_grammars_latest
    ON processing_grammars (kind, program, name, version DESC);

CREATE TABLE IF NOT EXISTS processing_dimension_loads (
    id          bigserial   PRIMARY KEY,
    dimension   text        NOT NULL,
    upload_id   text,
    rows        bigint      NOT NULL DEFAULT 0,
    error       jsonb,
    loaded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS processing_dimension_loads_last
    ON processing_dimension_loads (dimension, loaded_at DESC);
