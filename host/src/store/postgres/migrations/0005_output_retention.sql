-- Outputs older than `retain_outputs` are deleted by the reaper (when it is
-- set) and by `sluice outputs purge`. This index finds them oldest first.
--
-- Building it blocks writes to sluice_outputs (and so every completion) for
-- as long as it takes. With many outputs, build it beforehand without
-- blocking and this step finds it:
--   CREATE INDEX CONCURRENTLY sluice_outputs_created ON sluice_outputs (created_at_ms);
CREATE INDEX IF NOT EXISTS sluice_outputs_created ON sluice_outputs (created_at_ms);
