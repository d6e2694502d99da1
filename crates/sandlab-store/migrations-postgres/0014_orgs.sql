-- Organisations (as migrations/0014_orgs.sql): members with a role each, per-sandbox
-- caps, and the places their sandboxes take against `max_sandboxes`. Times are Unix
-- milliseconds; `max_memory` is bytes and `max_ttl` seconds; a NULL cap is no cap.

CREATE TABLE orgs (
    id            TEXT             NOT NULL PRIMARY KEY,
    slug          TEXT             NOT NULL UNIQUE,
    name          TEXT             NOT NULL,
    created_at    BIGINT           NOT NULL,
    max_sandboxes BIGINT           CHECK (max_sandboxes >= 0),
    max_memory    BIGINT           CHECK (max_memory > 0),
    max_cpus      DOUBLE PRECISION CHECK (max_cpus > 0),
    max_ttl       BIGINT           CHECK (max_ttl > 0)
);

CREATE TABLE org_members (
    org_id   TEXT   NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id  TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role     TEXT   NOT NULL CHECK (role IN ('member', 'instructor', 'owner')),
    added_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);

CREATE INDEX org_members_by_user ON org_members (user_id);

CREATE TABLE org_places (
    sandbox_id TEXT   NOT NULL PRIMARY KEY,
    org_id     TEXT   NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    taken_at   BIGINT NOT NULL
);

CREATE INDEX org_places_by_org ON org_places (org_id);

CREATE FUNCTION org_places_follow_sandboxes() RETURNS trigger AS $$
BEGIN
    DELETE FROM org_places WHERE sandbox_id = OLD.id;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER org_places_follow_sandboxes AFTER DELETE ON sandboxes
    FOR EACH ROW EXECUTE FUNCTION org_places_follow_sandboxes();
