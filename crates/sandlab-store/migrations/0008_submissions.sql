-- Code-execution submissions of the Judge0-compatible API: a POST stores the request and
-- answers its token, a worker runs it, and the result is fetched later by that token. The
-- rows outlive a restart: those not done are run again, done ones are deleted once they
-- have expired.

CREATE TABLE submissions (
    -- A UUID v4 in its hyphenated lower-case text form, made by the caller.
    token       TEXT    NOT NULL PRIMARY KEY,
    -- The user id, or 'anonymous'. No foreign key, like sandboxes.owner: a submission
    -- stays until it expires or is deleted, whatever becomes of its user.
    owner       TEXT    NOT NULL,
    -- queued | running | done
    state       TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done')),
    -- The request and the result as JSON text, opaque to the store; the store refuses a
    -- request over 4 MiB.
    request     TEXT    NOT NULL,
    result      TEXT,
    -- Bytes of request and result, kept by the store so a per-owner bound is counted
    -- from the index below instead of reading every text.
    bytes       INTEGER NOT NULL CHECK (bytes >= 0),
    created_at  INTEGER NOT NULL,
    finished_at INTEGER,
    -- A result and a finish time exactly when done.
    CHECK ((state = 'done') = (result IS NOT NULL)),
    CHECK ((state = 'done') = (finished_at IS NOT NULL))
) STRICT;

-- What a restart runs again, oldest first; done rows (most of them) stay out of it.
CREATE INDEX submissions_unfinished ON submissions (created_at) WHERE state <> 'done';
-- Expiry of done submissions.
CREATE INDEX submissions_by_finished ON submissions (finished_at) WHERE state = 'done';
-- An owner's count and bytes (`submission_usage`), from the index alone.
CREATE INDEX submissions_by_owner ON submissions (owner, bytes);
