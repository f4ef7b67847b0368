-- tus resumable uploads (issue 17): one row per upload URL, so a PATCH may land on any instance.
-- The bytes themselves are staged in storage as they arrive; this row says how many are durable.
CREATE TABLE IF NOT EXISTS resumable_uploads (
    id text PRIMARY KEY,
    client text,
    length bigint NOT NULL,
    upload_offset bigint NOT NULL DEFAULT 0,
    request jsonb NOT NULL,          -- what the one-shot route would have been asked (validated)
    metadata text NOT NULL DEFAULT '',  -- Upload-Metadata as sent, echoed by HEAD
    status text NOT NULL DEFAULT 'receiving',  -- receiving | done | terminated
    upload_id text,                  -- the uploads record, once complete
    upload_status text,              -- its status then (uploaded, rejected)
    lease_token text,                -- the request that holds the upload (one PATCH at a time)
    lease_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS resumable_uploads_expires ON resumable_uploads (expires_at);
