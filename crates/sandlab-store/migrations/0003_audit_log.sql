-- The audit log: every create, delete, exec and login, append-only.

CREATE TABLE audit_log (
    id     INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    -- The acting user's id; no foreign key, the log outlives users.
    actor  TEXT,
    action TEXT    NOT NULL,
    target TEXT,
    detail TEXT    NOT NULL CHECK (json_valid(detail) AND length(CAST(detail AS BLOB)) <= 4096)
) STRICT;

CREATE INDEX audit_log_by_actor ON audit_log (actor, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
