-- Code-execution submissions of the Judge0-compatible API (PostgreSQL; as
-- migrations/0008_submissions.sql).

CREATE TABLE submissions (
    token       TEXT   NOT NULL PRIMARY KEY,
    owner       TEXT   NOT NULL,
    state       TEXT   NOT NULL CHECK (state IN ('queued', 'running', 'done')),
    request     TEXT   NOT NULL,
    result      TEXT,
    bytes       BIGINT NOT NULL CHECK (bytes >= 0),
    created_at  BIGINT NOT NULL,
    finished_at BIGINT,
    -- Insertion order, for submissions created in the same millisecond (SQLite's rowid).
    seq         BIGINT NOT NULL GENERATED ALWAYS AS IDENTITY,
    CHECK ((state = 'done') = (result IS NOT NULL)),
    CHECK ((state = 'done') = (finished_at IS NOT NULL))
);

CREATE INDEX submissions_unfinished ON submissions (created_at, seq) WHERE state <> 'done';
CREATE INDEX submissions_by_finished ON submissions (finished_at) WHERE state = 'done';
CREATE INDEX submissions_by_owner ON submissions (owner, bytes);
