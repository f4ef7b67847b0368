-- Which upload an object key belongs to now. In storage.layout = "cqube" a later upload of the same
-- name on the same day replaces the earlier one's object under the same key: the key then belongs
-- to the later upload, and the earlier upload's record lists it in `replaced` (objects.py).
-- A retraction deletes, and a download streams, only a key the upload still owns.
CREATE TABLE IF NOT EXISTS object_owners (
    key text PRIMARY KEY,
    upload_id text NOT NULL,
    client text
);
ALTER TABLE uploads ADD COLUMN IF NOT EXISTS replaced jsonb;
-- The objects published before this migration: each key to the latest upload that wrote it (a
-- retracted one too: its object is gone, and an earlier upload it replaced must not claim it).
INSERT INTO object_owners (key, upload_id, client)
SELECT DISTINCT ON (k.key) k.key, u.id, u.client
  FROM uploads u
 CROSS JOIN LATERAL (
       SELECT jsonb_array_elements_text(CASE jsonb_typeof(u.objects->p)
                  WHEN 'array' THEN u.objects->p
                  WHEN 'string' THEN jsonb_build_array(u.objects->p)
                  ELSE '[]'::jsonb END) AS key
         FROM unnest(ARRAY['valid', 'errors']) AS p) k
 WHERE u.status IN ('uploaded', 'retracting', 'retracted') AND NOT u.dry_run
   AND u.objects->>'duplicate_of' IS NULL
 ORDER BY k.key, u.finished_at DESC NULLS LAST
    ON CONFLICT (key) DO NOTHING;
