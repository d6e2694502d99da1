-- Several control planes on one database: a lab session names the replica that runs its
-- checker (`runner`, a process holder `<boot id>/<pid>/<start ticks>`; NULL for sessions
-- from before this step, adopted like those of a replica that died) and keeps its task
-- states, so any replica can show them.

ALTER TABLE lab_sessions ADD COLUMN runner TEXT;
-- [{"id": "write_page", "state": "done"}] as JSON, in the lab's order.
ALTER TABLE lab_sessions ADD COLUMN tasks TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tasks));
