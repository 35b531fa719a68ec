-- Deletes up to ?2 workers not seen for ?1 ms that hold no claims, the
-- leases of workers gone that long, and up to ?2 units with nothing pending
-- and no claim that were last released more than ?1 ms ago.
DELETE FROM sluice_workers
 WHERE id IN (SELECT w.id FROM sluice_workers w
               WHERE w.last_seen_ms < CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) - ?1
                 AND NOT EXISTS (SELECT 1 FROM sluice_units u WHERE u.claimed_by = w.id)
               LIMIT ?2);
DELETE FROM sluice_leases
 WHERE expires_ms < CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) - ?1
   AND NOT EXISTS (SELECT 1 FROM sluice_units u WHERE u.claimed_by = sluice_leases.worker);
DELETE FROM sluice_units
 WHERE id IN (SELECT id FROM sluice_units INDEXED BY sluice_units_empty
               WHERE pending_count = 0 AND claimed_by IS NULL AND available_at_ms < CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) - ?1
               ORDER BY available_at_ms
               LIMIT ?2);
