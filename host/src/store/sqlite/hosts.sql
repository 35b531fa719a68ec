-- Every worker with its lease and the units it holds (over the owner index).
SELECT w.id, w.host_name, w.pid, w.version, w.started_at_ms, w.last_seen_ms, w.task_types,
       w.draining_since_ms,
       (SELECT count(*) FROM sluice_units u WHERE u.claimed_by = w.id) AS claimed_units,
       l.expires_ms AS lease_expires_ms
  FROM sluice_workers w
  LEFT JOIN sluice_leases l ON l.worker = w.id
 ORDER BY w.last_seen_ms DESC, w.id
