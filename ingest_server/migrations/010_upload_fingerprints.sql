-- Idempotency-Key: what the key covers, so a reuse for another request is refused (422) instead
-- of answered with the first result; and the HTTP status of the first answer, replayed as it was.
-- read_sha256/bytes cover the bytes read before the outcome (the whole file when read_complete).
ALTER TABLE uploads ADD COLUMN IF NOT EXISTS request_fingerprint text;
ALTER TABLE uploads ADD COLUMN IF NOT EXISTS http_status smallint;
ALTER TABLE uploads ADD COLUMN IF NOT EXISTS read_sha256 text;
ALTER TABLE uploads ADD COLUMN IF NOT EXISTS read_complete boolean NOT NULL DEFAULT false;
-- Same-bytes duplicate detection matches on this: sha256, target, spec version(s) and options.
ALTER TABLE uploads ADD COLUMN IF NOT EXISTS dedup_key text;
CREATE INDEX IF NOT EXISTS uploads_dedup ON uploads (dedup_key, started_at DESC)
    WHERE dedup_key IS NOT NULL;
