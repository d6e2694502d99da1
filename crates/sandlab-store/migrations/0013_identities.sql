-- Single sign-on: accounts' identities at OpenID Connect and OAuth providers, and the
-- sign-ins begun at a provider that await its callback.

-- One row per (provider, subject): the provider is the operator's name for it
-- (`[[auth.oidc]] name`), the subject its stable id of the person (`sub`, GitHub's id).
CREATE TABLE identities (
    provider       TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    user_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Lowercased; NULL when the provider gave none.
    email          TEXT,
    email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    created_at     INTEGER NOT NULL,
    last_login     INTEGER NOT NULL,
    PRIMARY KEY (provider, subject)
) STRICT;

CREATE INDEX identities_by_user ON identities (user_id);
CREATE INDEX identities_by_email ON identities (email);

-- Found by the SHA-256 of the `state` sent to the provider; taken (deleted) once.
CREATE TABLE sso_logins (
    state_hash TEXT    NOT NULL PRIMARY KEY,
    provider   TEXT    NOT NULL,
    nonce      TEXT    NOT NULL,
    -- The PKCE code verifier.
    verifier   TEXT    NOT NULL,
    -- Where the browser goes once signed in (a path of this site).
    next       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX sso_logins_by_expiry ON sso_logins (expires_at);
