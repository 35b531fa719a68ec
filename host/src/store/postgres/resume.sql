-- Resumes task type $1; no row when it was not paused.
DELETE FROM sluice_paused WHERE task_type = $1 RETURNING task_type
