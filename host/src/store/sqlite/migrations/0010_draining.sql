-- When a host began draining (its first SIGTERM or SIGINT: no new claims,
-- running units finishing), for the dashboard's hosts page. NULL while it runs.
ALTER TABLE sluice_workers ADD COLUMN draining_since_ms INTEGER;
