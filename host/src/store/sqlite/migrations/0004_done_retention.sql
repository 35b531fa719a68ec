-- Done items are deleted once they are older than the host's `retain_done`
-- (their outputs stay in sluice_outputs). This index finds them oldest first
-- without reading the pending and dead ones.
CREATE INDEX sluice_items_done ON sluice_items (finished_at_ms) WHERE state = 'done';
