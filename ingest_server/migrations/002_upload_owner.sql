-- Which process receives an upload ("host:pid:token"), so a restarted process can fail the uploads
-- of its dead predecessor at once instead of waiting for their heartbeat to go stale.
ALTER TABLE uploads ADD COLUMN IF NOT EXISTS owner text;
