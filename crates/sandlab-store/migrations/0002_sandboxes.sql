-- Sandbox records: the runtime's SandboxRecord, one row per sandbox, written before the
-- sandbox's first side effect.

CREATE TABLE sandboxes (
    id           TEXT    NOT NULL PRIMARY KEY,
    -- creating | running | stopping | removed | failed (the runtime's SandboxState; not a
    -- CHECK, so a state added there needs no table rebuild here).
    state        TEXT    NOT NULL,
    reason       TEXT,
    -- The owning user's id. No foreign key: a record is stored whatever it names, and
    -- outlives its user (see the crate docs).
    owner        TEXT,
    image        TEXT    NOT NULL,
    -- sandlab_core::Limits as JSON.
    limits       TEXT    NOT NULL CHECK (json_valid(limits)),
    hostname     TEXT,
    driver       TEXT    NOT NULL,
    -- Egress address pool slot; host resources are all named after the id.
    network_slot INTEGER,
    ipv4         TEXT,
    ipv6         TEXT,
    created_at   INTEGER NOT NULL,
    deadline     INTEGER NOT NULL,
    creator_pid  INTEGER,
    owner_pid    INTEGER
) STRICT;

CREATE INDEX sandboxes_by_created ON sandboxes (created_at, id);
CREATE INDEX sandboxes_by_owner ON sandboxes (owner, created_at, id);
CREATE INDEX sandboxes_by_deadline ON sandboxes (deadline);
-- Two sandboxes never share an egress slot (their addresses would clash).
CREATE UNIQUE INDEX sandboxes_by_slot ON sandboxes (network_slot) WHERE network_slot IS NOT NULL;
