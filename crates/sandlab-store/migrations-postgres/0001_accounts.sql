-- Accounts: users, their API tokens and their browser login sessions (PostgreSQL; the
-- same schema as migrations/0001_accounts.sql). Times are Unix milliseconds. Never edit
-- an applied migration; add a new file.

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    -- Lowercase [a-z0-9_.-]{1,64}, checked by the code.
    username      TEXT    NOT NULL,
    -- argon2id PHC string.
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('learner', 'author', 'admin')),
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT  NOT NULL
);

-- Uniqueness ignores case even for a row written by other means (SQLite's NOCASE).
CREATE UNIQUE INDEX users_by_username ON users (lower(username));
CREATE INDEX users_by_created ON users (created_at, id);

CREATE TABLE api_tokens (
    id           TEXT   NOT NULL PRIMARY KEY,
    user_id      TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT   NOT NULL,
    -- SHA-256 (hex) of the secret; the secret itself is never stored.
    token_hash   TEXT   NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);

CREATE INDEX api_tokens_by_user ON api_tokens (user_id, created_at);

CREATE TABLE login_sessions (
    -- SHA-256 (hex) of the cookie secret.
    id         TEXT   NOT NULL PRIMARY KEY,
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    -- Insertion order, for sessions made in the same millisecond (SQLite's rowid).
    seq        BIGINT NOT NULL GENERATED ALWAYS AS IDENTITY
);

CREATE INDEX login_sessions_by_user ON login_sessions (user_id, created_at);
CREATE INDEX login_sessions_by_expiry ON login_sessions (expires_at);
