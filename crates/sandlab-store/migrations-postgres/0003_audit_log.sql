-- The audit log: every create, delete, exec and login, append-only (PostgreSQL; as
-- migrations/0003_audit_log.sql).

CREATE TABLE audit_log (
    id     BIGINT NOT NULL GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     BIGINT NOT NULL,
    -- The acting user's id; no foreign key, the log outlives users.
    actor  TEXT,
    action TEXT   NOT NULL,
    target TEXT,
    detail TEXT   NOT NULL CHECK (detail::json IS NOT NULL AND octet_length(detail) <= 4096)
);

CREATE INDEX audit_log_by_actor ON audit_log (actor, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
-- TRUNCATE skips row triggers; it is refused too.
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
