-- The host's records of the latest ?1 calls, newest first: a walk back
-- along the outputs' primary key.
SELECT task_type, call FROM sluice_outputs WHERE call IS NOT NULL ORDER BY id DESC LIMIT ?1
