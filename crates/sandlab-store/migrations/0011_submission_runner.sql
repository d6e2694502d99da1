-- Several control planes on one database: a submission names the replica running it
-- (a process holder; NULL for rows from before this step). The leader takes over the
-- unfinished submissions of a replica that died, one compare-and-swap on this column.

ALTER TABLE submissions ADD COLUMN runner TEXT;
