-- `ttl` leaves every row's `limits` JSON (PostgreSQL; as migrations/0006_limits_without_ttl.sql).
UPDATE sandboxes SET limits = (limits::jsonb - 'ttl')::text WHERE limits::jsonb ? 'ttl';
