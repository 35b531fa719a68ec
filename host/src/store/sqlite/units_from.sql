-- Units of task type ?1 whose key is ?2 or after it, in key order, at most
-- ?3, with their owner's lease: a range over the units' key index.
SELECT u.task_type, u.work_unit_key, u.pending_count, u.pending_tokens, u.oldest_pending_ms,
       u.available_at_ms, u.claimed_by, l.expires_ms AS lease_expires_ms, u.suspect
  FROM sluice_units u
  LEFT JOIN sluice_leases l ON l.worker = u.claimed_by
 WHERE u.task_type = ?1 AND u.work_unit_key >= ?2
 ORDER BY u.work_unit_key
 LIMIT ?3
