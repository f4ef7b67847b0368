-- Retraction (DELETE /api/ingestion/uploads/{id}): an upload's objects are removed and the record
-- kept as 'retracted', with who asked and when. 'retracting' is the state while objects are being
-- deleted: a failure leaves it there (never reported as done) and a retry finishes the job.
ALTER TABLE uploads DROP CONSTRAINT IF EXISTS uploads_status_check;
ALTER TABLE uploads ADD CONSTRAINT uploads_status_check
    CHECK (status IN ('receiving', 'uploaded', 'rejected', 'failed', 'retracting', 'retracted'));
ALTER TABLE uploads ADD COLUMN IF NOT EXISTS retracted_at timestamptz;
ALTER TABLE uploads ADD COLUMN IF NOT EXISTS retracted_by text;
ALTER TABLE uploads ADD COLUMN IF NOT EXISTS retract_error jsonb;
-- The listing filters of the console (per client, newest first).
CREATE INDEX IF NOT EXISTS uploads_client_started ON uploads (client, started_at DESC);
