-- Organisations (see src/orgs.rs): their members with a role each, their per-sandbox
-- caps, and the places their sandboxes take against `max_sandboxes`. Times are Unix
-- milliseconds; `max_memory` is bytes and `max_ttl` seconds; a NULL cap is no cap.

CREATE TABLE orgs (
    id            TEXT    NOT NULL PRIMARY KEY,
    -- [a-z0-9][a-z0-9-]{0,39}, never starting with "org-" (an id); checked by the code.
    slug          TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    max_sandboxes INTEGER CHECK (max_sandboxes >= 0),
    max_memory    INTEGER CHECK (max_memory > 0),
    max_cpus      REAL    CHECK (max_cpus > 0),
    max_ttl       INTEGER CHECK (max_ttl > 0)
) STRICT;

CREATE TABLE org_members (
    org_id   TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id  TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role     TEXT    NOT NULL CHECK (role IN ('member', 'instructor', 'owner')),
    added_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, user_id)
) STRICT;

CREATE INDEX org_members_by_user ON org_members (user_id);

-- Which organisation a sandbox counts against, taken before its record exists (the
-- runtime writes the record). No foreign key to `sandboxes` for that reason; the trigger
-- below drops a place with its sandbox's record.
CREATE TABLE org_places (
    sandbox_id TEXT    NOT NULL PRIMARY KEY,
    org_id     TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    taken_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX org_places_by_org ON org_places (org_id);

CREATE TRIGGER org_places_follow_sandboxes AFTER DELETE ON sandboxes
BEGIN
    DELETE FROM org_places WHERE sandbox_id = OLD.id;
END;
