-- The replica running a submission (PostgreSQL; as migrations/0011_submission_runner.sql).

ALTER TABLE submissions ADD COLUMN runner TEXT;
