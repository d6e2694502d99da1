-- Lab sessions and per-user lab progress (PostgreSQL; as migrations/0004_lab_sessions.sql).

CREATE TABLE lab_sessions (
    id         TEXT   NOT NULL PRIMARY KEY,
    -- The owning user's id; no foreign key, like sandboxes.owner.
    owner      TEXT   NOT NULL,
    lab        TEXT   NOT NULL,
    -- starting | ready | failed | ended
    state      TEXT   NOT NULL,
    reason     TEXT,
    -- [{"name": "node01", "sandbox": "sb-..."}] as JSON text.
    nodes      TEXT   NOT NULL CHECK (nodes::json IS NOT NULL),
    created_at BIGINT NOT NULL,
    deadline   BIGINT NOT NULL
);

CREATE INDEX lab_sessions_by_owner ON lab_sessions (owner, created_at, id);

CREATE TABLE lab_progress (
    user_id TEXT   NOT NULL,
    lab     TEXT   NOT NULL,
    task    TEXT   NOT NULL,
    done_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, lab, task)
);

CREATE TABLE lab_hints (
    user_id     TEXT   NOT NULL,
    lab         TEXT   NOT NULL,
    task        TEXT   NOT NULL,
    revealed_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, lab, task)
);
