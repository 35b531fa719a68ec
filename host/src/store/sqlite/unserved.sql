-- Task types with pending items that no host seen in the last ?1 ms serves.
-- The task types come from a skip scan of the units' key index (one probe
-- per task type), not from the items.
WITH RECURSIVE pending_types(task_type) AS (
    SELECT (SELECT task_type FROM sluice_units WHERE pending_count > 0
             ORDER BY task_type LIMIT 1)
    UNION ALL
    SELECT (SELECT u.task_type FROM sluice_units u
             WHERE u.pending_count > 0 AND u.task_type > p.task_type
             ORDER BY u.task_type LIMIT 1)
      FROM pending_types p
     WHERE p.task_type IS NOT NULL
)
SELECT task_type FROM pending_types p
 WHERE p.task_type IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM sluice_workers w
                    WHERE w.last_seen_ms >= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) - ?1
                      AND (w.task_types IS NULL
                           OR EXISTS (SELECT 1 FROM json_each(w.task_types) WHERE value = p.task_type)))
 ORDER BY task_type
