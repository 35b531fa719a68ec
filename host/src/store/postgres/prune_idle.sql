-- Deletes up to $2 workers (and their leases) not seen for $1 ms that hold no
-- claims, and up to $2 units with nothing pending and no claim that were last
-- released more than $1 ms ago; rows another host is deleting or a producer
-- holds are skipped. Returns how many rows were deleted.
WITH gone_workers AS (
    DELETE FROM sluice_workers
     WHERE id IN (SELECT w.id FROM sluice_workers w
                   WHERE w.last_seen_ms < (SELECT sluice_now_ms() - $1)
                     AND NOT EXISTS (SELECT 1 FROM sluice_units u WHERE u.claimed_by = w.id)
                   LIMIT $2
                     FOR UPDATE SKIP LOCKED)
    RETURNING id
), gone_leases AS (
    DELETE FROM sluice_leases l
     WHERE l.expires_ms < (SELECT sluice_now_ms() - $1)
       AND NOT EXISTS (SELECT 1 FROM sluice_units u WHERE u.claimed_by = l.worker)
    RETURNING worker
), gone_units AS (
    DELETE FROM sluice_units
     WHERE (task_type, work_unit_key) IN (
               SELECT u.task_type, u.work_unit_key FROM sluice_units u
                WHERE u.pending_count = 0 AND u.claimed_by IS NULL
                  AND u.available_at_ms < (SELECT sluice_now_ms() - $1)
                ORDER BY u.available_at_ms
                LIMIT $2
                  FOR UPDATE SKIP LOCKED)
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone_workers) + (SELECT count(*) FROM gone_leases)
       + (SELECT count(*) FROM gone_units)
