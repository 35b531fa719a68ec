-- What the host recorded about the call that produced each output: plugin and
-- version, attempt, duration and outbound usage (LLM calls and tokens, HTTP
-- requests). NULL for outputs written before this column existed.
ALTER TABLE sluice_outputs ADD COLUMN call jsonb;
COMMENT ON COLUMN sluice_outputs.call IS
    'The host''s record of the call: plugin, plugin_version, attempt, duration_ms, usage';
