-- Sign-up invitations and password resets: links whose secret is shown once. Each row is
-- found by the SHA-256 of its secret; the secret itself is never stored.

CREATE TABLE invites (
    id         TEXT    NOT NULL PRIMARY KEY,
    token_hash TEXT    NOT NULL UNIQUE,
    -- The role a user who signs up with the link gets.
    role       TEXT    NOT NULL CHECK (role IN ('learner', 'author', 'admin')),
    -- Sign-ups the link allows, and how many it has had.
    uses       INTEGER NOT NULL CHECK (uses >= 1),
    used       INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0 AND used <= uses),
    -- The admin who made it; NULL when made by `sandlab user invite` or the admin is gone.
    created_by TEXT    REFERENCES users (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX invites_by_created ON invites (created_at, id);
CREATE INDEX invites_by_creator ON invites (created_by);

-- At most one reset per user: a newer one replaces (voids) the older.
CREATE TABLE password_resets (
    user_id    TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT    NOT NULL UNIQUE,
    created_by TEXT    REFERENCES users (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    -- Set when the link is used; a used link is kept (refused as used) until replaced.
    used_at    INTEGER
) STRICT;

CREATE INDEX password_resets_by_creator ON password_resets (created_by);
