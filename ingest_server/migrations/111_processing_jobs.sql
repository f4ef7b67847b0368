-- Datasets (DESIGN.md §12): one job per landed event upload, processed once into the dataset
-- tables. A failed attempt is retried with backoff (next_at); replicas take a job under a lease
-- (lease_owner, lease_until), so one instance processes it and a crashed one's job is taken over
-- once its lease ends. The upload's state as the API shows it is uploads.processing.
CREATE TABLE IF NOT EXISTS processing_jobs (
    upload_id    text        PRIMARY KEY,
    program      text        NOT NULL,
    event        text        NOT NULL,
    status       text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts     integer     NOT NULL DEFAULT 0,
    next_at      timestamptz NOT NULL DEFAULT now(),
    lease_owner  text,
    lease_until  timestamptz,
    tables       integer,
    groups       bigint,
    finished_at  timestamptz,
    error        jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS processing_jobs_due ON processing_jobs (next_at) WHERE status = 'pending';
ALTER TABLE uploads ADD COLUMN IF NOT EXISTS processing jsonb;
