-- Several control planes on one database (PostgreSQL; as
-- migrations/0010_lab_session_runner.sql): the replica running a session's checker, and
-- its task states.

ALTER TABLE lab_sessions ADD COLUMN runner TEXT;
ALTER TABLE lab_sessions ADD COLUMN tasks TEXT NOT NULL DEFAULT '[]' CHECK (tasks::json IS NOT NULL);
