SELECT task_type, state, count(*) AS count, min(created_at_ms) AS oldest
  FROM sluice_items
 GROUP BY task_type, state
 ORDER BY task_type, state
