-- A small per-upload number, as cQube's FileTracker "pid": file-status answers it in the cqube
-- profile and the cqube storage layout names error files <program>_<pid>_errors.csv.
ALTER TABLE uploads ADD COLUMN IF NOT EXISTS pid bigserial;
CREATE UNIQUE INDEX IF NOT EXISTS uploads_pid ON uploads (pid);
