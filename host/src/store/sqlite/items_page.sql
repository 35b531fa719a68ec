-- Pending and dead items (state ?1, or both when NULL) of task type ?2 and
-- unit key ?3 (each NULL for any), after id ?4, in id order, at most ?5.
-- One ordered walk per state, each over that state's partial index.
SELECT * FROM (
    SELECT * FROM (
        SELECT id, task_type, work_unit_key, state, payload, tokens, dedupe_key,
               attempts, last_error, errors, created_at_ms, run_after_ms, finished_at_ms, NULL
          FROM sluice_items
         WHERE state = 'pending' AND coalesce(?1, 'pending') = 'pending'
           AND (?2 IS NULL OR task_type = ?2)
           AND (?3 IS NULL OR work_unit_key = ?3)
           AND id > ?4
         ORDER BY id
         LIMIT ?5)
    UNION ALL
    SELECT * FROM (
        SELECT id, task_type, work_unit_key, state, payload, tokens, dedupe_key,
               attempts, last_error, errors, created_at_ms, run_after_ms, finished_at_ms, NULL
          FROM sluice_items
         WHERE state = 'dead' AND coalesce(?1, 'dead') = 'dead'
           AND (?2 IS NULL OR task_type = ?2)
           AND (?3 IS NULL OR work_unit_key = ?3)
           AND id > ?4
         ORDER BY id
         LIMIT ?5))
 ORDER BY id
 LIMIT ?5
