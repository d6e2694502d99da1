-- Sign-up invitations and password resets (PostgreSQL; as
-- migrations/0009_invites_and_resets.sql). Each row is found by the SHA-256 of its
-- secret; the secret itself is never stored.

CREATE TABLE invites (
    id         TEXT   NOT NULL PRIMARY KEY,
    token_hash TEXT   NOT NULL UNIQUE,
    role       TEXT   NOT NULL CHECK (role IN ('learner', 'author', 'admin')),
    uses       BIGINT NOT NULL CHECK (uses >= 1),
    used       BIGINT NOT NULL DEFAULT 0 CHECK (used >= 0 AND used <= uses),
    -- NULL when made by `sandlab user invite` or the admin is gone.
    created_by TEXT   REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX invites_by_created ON invites (created_at, id);
CREATE INDEX invites_by_creator ON invites (created_by);

-- At most one reset per user: a newer one replaces (voids) the older.
CREATE TABLE password_resets (
    user_id    TEXT   NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT   NOT NULL UNIQUE,
    created_by TEXT   REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE INDEX password_resets_by_creator ON password_resets (created_by);
