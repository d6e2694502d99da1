-- Issue 10, "`ttl` leaves `Limits`": a sandbox's lifetime is its `created_at` and
-- `deadline`, not a resource limit. `Limits` refuses unknown fields, so the copy of the ttl
-- in every existing row's `limits` JSON goes.
UPDATE sandboxes SET limits = json_remove(limits, '$.ttl');
