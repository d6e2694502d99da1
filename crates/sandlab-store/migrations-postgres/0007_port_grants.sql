-- The port proxy's grants (PostgreSQL; as migrations/0007_port_grants.sql). The row's key
-- is the SHA-256 of its secret; the secret is never stored.

CREATE TABLE port_grants (
    id          TEXT   NOT NULL PRIMARY KEY,
    secret_hash TEXT   NOT NULL UNIQUE,
    kind        TEXT   NOT NULL CHECK (kind IN ('code', 'session', 'share')),
    sandbox     TEXT   NOT NULL,
    port        BIGINT NOT NULL CHECK (port BETWEEN 1 AND 65535),
    -- No foreign key, like sandboxes.owner; a disabled or deleted user's grants stop working.
    user_id     TEXT,
    path        TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    -- Insertion order, for listing shares made in the same millisecond (SQLite's rowid).
    seq         BIGINT NOT NULL GENERATED ALWAYS AS IDENTITY
);

CREATE INDEX port_grants_by_sandbox ON port_grants (sandbox, kind, created_at);
CREATE INDEX port_grants_by_expiry ON port_grants (expires_at);
