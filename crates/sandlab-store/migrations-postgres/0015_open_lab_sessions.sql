-- The sessions not over, which every replica's leader reads every few seconds to adopt
-- those of a replica that died: found without reading the whole history.
CREATE INDEX lab_sessions_open ON lab_sessions (created_at, id) WHERE state IN ('starting', 'ready');
