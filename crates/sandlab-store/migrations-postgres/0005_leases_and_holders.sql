-- Leases in place of the runtime's file lock, and process holders in sandbox records
-- (PostgreSQL; as migrations/0005_leases_and_holders.sql).

CREATE TABLE leases (
    name       TEXT   NOT NULL PRIMARY KEY,
    -- Opaque to the store; the runtime writes a process holder (<boot id>/<pid>/<ticks>).
    holder     TEXT   NOT NULL,
    -- Unix milliseconds on the store's clock; the lease is free from this moment on.
    expires_at BIGINT NOT NULL
);

CREATE INDEX leases_by_expiry ON leases (expires_at);

ALTER TABLE sandboxes ADD COLUMN creator TEXT;
ALTER TABLE sandboxes ADD COLUMN owner_process TEXT;
ALTER TABLE sandboxes DROP COLUMN creator_pid;
ALTER TABLE sandboxes DROP COLUMN owner_pid;

DROP INDEX sandboxes_by_slot;
ALTER TABLE sandboxes DROP COLUMN network_slot;

UPDATE sandboxes SET driver = 'container' WHERE driver IN ('runc', 'crun', 'runsc');
