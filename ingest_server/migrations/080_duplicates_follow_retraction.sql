-- A duplicate upload (objects.duplicate_of) answered with its original's objects. Retracting the
-- original now retracts its duplicates with it (retraction.py). Duplicates that an earlier version
-- left 'uploaded' after their original was retracted point at objects that are gone: they are
-- marked retracted here, by whoever retracted the original.
UPDATE uploads d SET status = 'retracted', retracted_at = o.retracted_at,
       retracted_by = o.retracted_by, retract_error = NULL
  FROM uploads o
 WHERE o.id = d.objects->>'duplicate_of' AND o.status = 'retracted'
   AND d.status IN ('uploaded', 'retracting');
-- Retraction looks up an upload's duplicates.
CREATE INDEX IF NOT EXISTS uploads_duplicate_of ON uploads ((objects->>'duplicate_of'))
    WHERE objects->>'duplicate_of' IS NOT NULL;
