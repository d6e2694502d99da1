-- Single sign-on (PostgreSQL; as migrations/0013_identities.sql): accounts' identities at
-- OpenID Connect and OAuth providers, and the sign-ins that await the provider's callback.

CREATE TABLE identities (
    provider       TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    user_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Lowercased; NULL when the provider gave none.
    email          TEXT,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     BIGINT  NOT NULL,
    last_login     BIGINT  NOT NULL,
    PRIMARY KEY (provider, subject)
);

CREATE INDEX identities_by_user ON identities (user_id);
CREATE INDEX identities_by_email ON identities (email);

CREATE TABLE sso_logins (
    state_hash TEXT   NOT NULL PRIMARY KEY,
    provider   TEXT   NOT NULL,
    nonce      TEXT   NOT NULL,
    verifier   TEXT   NOT NULL,
    next       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX sso_logins_by_expiry ON sso_logins (expires_at);
