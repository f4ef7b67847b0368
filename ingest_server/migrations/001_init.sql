-- Specs: every registered version of every spec, the translated Cerberus schema and the original body.
CREATE TABLE IF NOT EXISTS specs (
    id          bigserial PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('event', 'dimension', 'dataset')),
    name        text        NOT NULL,
    version     integer     NOT NULL CHECK (version >= 1),
    cerberus    jsonb       NOT NULL,
    source      jsonb,
    source_format text      NOT NULL CHECK (source_format IN ('cqube', 'cerberus')),
    sha256      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text,
    UNIQUE (kind, name, version)
);
CREATE INDEX IF NOT EXISTS specs_latest ON specs (kind, name, version DESC);

-- Uploads: one row per upload from the first byte to the outcome.
CREATE TABLE IF NOT EXISTS uploads (
    id              text        PRIMARY KEY,
    route           text        NOT NULL,
    client          text,
    filename        text,
    sha256          text,
    kind            text,
    program         text,
    ingestion_name  text,
    spec_version    integer,
    status          text        NOT NULL CHECK (status IN ('receiving', 'uploaded', 'rejected', 'failed')),
    dry_run         boolean     NOT NULL DEFAULT false,
    idempotency_key text,
    bytes           bigint      NOT NULL DEFAULT 0,
    total_rows      bigint      NOT NULL DEFAULT 0,
    valid_rows      bigint      NOT NULL DEFAULT 0,
    invalid_rows    bigint      NOT NULL DEFAULT 0,
    objects         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    members         jsonb,
    errors_sample   jsonb       NOT NULL DEFAULT '[]'::jsonb,
    error           jsonb,
    started_at      timestamptz NOT NULL DEFAULT now(),
    heartbeat_at    timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX IF NOT EXISTS uploads_file_status ON uploads (filename, kind, ingestion_name, started_at DESC);
CREATE INDEX IF NOT EXISTS uploads_status ON uploads (status) WHERE status = 'receiving';
CREATE INDEX IF NOT EXISTS uploads_started ON uploads (started_at DESC);
CREATE UNIQUE INDEX IF NOT EXISTS uploads_idempotency ON uploads (client, idempotency_key)
    WHERE idempotency_key IS NOT NULL AND status <> 'failed';
CREATE INDEX IF NOT EXISTS uploads_sha ON uploads (sha256, route, program, ingestion_name, started_at DESC);
