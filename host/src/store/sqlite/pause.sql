-- Pauses task type ?1 on every host; no row when it was paused already.
INSERT INTO sluice_paused (task_type) VALUES (?1)
    ON CONFLICT (task_type) DO NOTHING
RETURNING task_type
