-- The store bus (as migrations/0012_notices.sql) needs no table on PostgreSQL: it is
-- LISTEN/NOTIFY on the channel `sandlab_bus`. The step is kept so both schemas have the
-- same numbers.

SELECT 1;
