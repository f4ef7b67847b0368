-- State every replica must agree on (DESIGN.md §10).
-- The generated HMAC signing key when auth.jwt_secret is not configured: created once, under an
-- advisory lock, by the first instance to start; every other instance reads it.
CREATE TABLE IF NOT EXISTS shared_secrets (
    name        text        PRIMARY KEY,
    value       text        NOT NULL,
    origin      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- Failed Basic logins, counted per key ("ip:<address>" or "client:<id>") in buckets of a tenth of
-- auth.failed_attempts_window_s, so the 429 limit holds across all instances. Unlogged: losing
-- the counts in a database crash only forgives some failures, and writes stay cheap.
CREATE UNLOGGED TABLE IF NOT EXISTS auth_failures (
    key         text    NOT NULL,
    bucket      bigint  NOT NULL,
    failures    integer NOT NULL,
    PRIMARY KEY (key, bucket)
);
