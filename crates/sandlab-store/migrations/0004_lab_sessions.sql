-- Lab sessions (a learner's running playground of one lab) and per-user lab progress.

CREATE TABLE lab_sessions (
    id         TEXT    NOT NULL PRIMARY KEY,
    -- The owning user's id; no foreign key, like sandboxes.owner.
    owner      TEXT    NOT NULL,
    lab        TEXT    NOT NULL,
    -- starting | ready | failed | ended
    state      TEXT    NOT NULL,
    reason     TEXT,
    -- [{"name": "node01", "sandbox": "sb-..."}] as JSON.
    nodes      TEXT    NOT NULL CHECK (json_valid(nodes)),
    created_at INTEGER NOT NULL,
    deadline   INTEGER NOT NULL
) STRICT;

CREATE INDEX lab_sessions_by_owner ON lab_sessions (owner, created_at, id);

-- Checked tasks a user has done in a lab: kept across sessions and restarts.
CREATE TABLE lab_progress (
    user_id TEXT    NOT NULL,
    lab     TEXT    NOT NULL,
    task    TEXT    NOT NULL,
    done_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, lab, task)
) STRICT;

-- Hints a user revealed (shown again without asking; counted for leaderboards).
CREATE TABLE lab_hints (
    user_id     TEXT    NOT NULL,
    lab         TEXT    NOT NULL,
    task        TEXT    NOT NULL,
    revealed_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, lab, task)
) STRICT;
