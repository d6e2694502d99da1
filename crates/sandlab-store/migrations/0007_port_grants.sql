-- The port proxy's grants: who may open which port of which sandbox through the proxy.
-- A `code` is a one-time sign-in from the UI to the proxy's origin (taken by its first
-- use), a `session` the proxy-origin cookie it is exchanged for, a `share` a public link
-- to one port. The row's key is the SHA-256 of its secret; the secret is never stored.

CREATE TABLE port_grants (
    id          TEXT    NOT NULL PRIMARY KEY,
    secret_hash TEXT    NOT NULL UNIQUE,
    -- code | session | share
    kind        TEXT    NOT NULL CHECK (kind IN ('code', 'session', 'share')),
    sandbox     TEXT    NOT NULL,
    port        INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    -- code, session: the user signed in; share: its creator. No foreign key, like
    -- sandboxes.owner; a disabled or deleted user's grants stop working.
    user_id     TEXT,
    -- Where a code lands or a share opens.
    path        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX port_grants_by_sandbox ON port_grants (sandbox, kind, created_at);
CREATE INDEX port_grants_by_expiry ON port_grants (expires_at);
