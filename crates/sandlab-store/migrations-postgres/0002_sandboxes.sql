-- Sandbox records: the runtime's SandboxRecord, one row per sandbox, written before the
-- sandbox's first side effect (PostgreSQL; as migrations/0002_sandboxes.sql).

CREATE TABLE sandboxes (
    id           TEXT   NOT NULL PRIMARY KEY,
    -- creating | running | stopping | removed | failed (the runtime's SandboxState).
    state        TEXT   NOT NULL,
    reason       TEXT,
    -- The owning user's id. No foreign key: a record is stored whatever it names, and
    -- outlives its user (see the crate docs).
    owner        TEXT,
    image        TEXT   NOT NULL,
    -- sandlab_core::Limits as JSON text.
    limits       TEXT   NOT NULL CHECK (limits::json IS NOT NULL),
    hostname     TEXT,
    driver       TEXT   NOT NULL,
    network_slot BIGINT,
    ipv4         TEXT,
    ipv6         TEXT,
    created_at   BIGINT NOT NULL,
    deadline     BIGINT NOT NULL,
    creator_pid  BIGINT,
    owner_pid    BIGINT
);

CREATE INDEX sandboxes_by_created ON sandboxes (created_at, id);
CREATE INDEX sandboxes_by_owner ON sandboxes (owner, created_at, id);
CREATE INDEX sandboxes_by_deadline ON sandboxes (deadline);
CREATE UNIQUE INDEX sandboxes_by_slot ON sandboxes (network_slot) WHERE network_slot IS NOT NULL;
