-- Issue 10, "seams": sandbox records as sandlab-core defines them, and leases granted by
-- the store in place of the runtime's cross-process file lock.

-- Named, time-limited leases: at most one unexpired holder per name (see the crate docs).
CREATE TABLE leases (
    name       TEXT    NOT NULL PRIMARY KEY,
    -- Opaque to the store; the runtime writes a process holder (<boot id>/<pid>/<ticks>).
    holder     TEXT    NOT NULL,
    -- Unix milliseconds on the store's clock; the lease is free from this moment on.
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX leases_by_expiry ON leases (expires_at);

-- Processes are named by holder strings (<boot id>/<pid>/<start ticks>), not bare pids. A
-- pid alone cannot become a holder, so existing rows start with none: a `creating` record
-- is then left to reconciliation, and a sandbox once tied to a `sandlab run` process
-- lives on until its deadline instead of being removed with that process.
ALTER TABLE sandboxes ADD COLUMN creator TEXT;
ALTER TABLE sandboxes ADD COLUMN owner_process TEXT;
ALTER TABLE sandboxes DROP COLUMN creator_pid;
ALTER TABLE sandboxes DROP COLUMN owner_pid;

-- Egress slots now belong to the container driver, host-wide; records no longer carry one.
DROP INDEX sandboxes_by_slot;
ALTER TABLE sandboxes DROP COLUMN network_slot;

-- The container driver is registered as "container" whatever OCI runtime it runs.
UPDATE sandboxes SET driver = 'container' WHERE driver IN ('runc', 'crun', 'runsc');
