-- Outputs older than `retain_outputs` are deleted by the reaper (when it is
-- set) and by `sluice outputs purge`. This index finds them oldest first.
CREATE INDEX sluice_outputs_created ON sluice_outputs (created_at_ms);
