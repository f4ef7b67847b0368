-- What an upload answer reports without refusing anything: dropped error-file columns, Excel's
-- trailing empty columns, columns the spec does not declare. [{"code", "message", "details"}]
ALTER TABLE uploads ADD COLUMN IF NOT EXISTS warnings jsonb NOT NULL DEFAULT '[]'::jsonb;
