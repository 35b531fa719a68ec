-- Each host's flow report: its LLM providers' circuit breakers and what it
-- spent with them (JSON), written with its heartbeat for `sluice status`.
ALTER TABLE sluice_workers ADD COLUMN flow TEXT;
