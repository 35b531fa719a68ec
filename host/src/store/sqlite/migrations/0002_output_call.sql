-- What the host recorded about the call that produced each output: plugin and
-- version, attempt, duration and outbound usage (LLM calls and tokens, HTTP
-- requests), as JSON. NULL for outputs written before this column existed.
ALTER TABLE sluice_outputs ADD COLUMN call TEXT CHECK (call IS NULL OR json_valid(call));
