-- The store bus on SQLite (`Store::publish` / `Store::subscribe`): every process on the
-- file polls this table while it has a subscriber. Rows are notices of a moment, deleted
-- once they are 60 s old; a subscriber that falls further behind is told it missed some.

CREATE TABLE notices (
    seq     INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    topic   TEXT    NOT NULL,
    payload TEXT    NOT NULL,
    at      INTEGER NOT NULL
) STRICT;

CREATE INDEX notices_by_at ON notices (at);
