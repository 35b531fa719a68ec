-- Deletes up to ?2 outputs stored more than ?1 ms ago, oldest first.
DELETE FROM sluice_outputs
 WHERE id IN (SELECT id FROM sluice_outputs INDEXED BY sluice_outputs_created
               WHERE created_at_ms < CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) - ?1
               ORDER BY created_at_ms
               LIMIT ?2)
