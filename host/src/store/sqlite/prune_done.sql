-- Deletes up to ?2 done items that finished more than ?1 ms ago, oldest first.
DELETE FROM sluice_items
 WHERE id IN (SELECT id FROM sluice_items INDEXED BY sluice_items_done
               WHERE state = 'done'
                 AND finished_at_ms < CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) - ?1
               ORDER BY finished_at_ms
               LIMIT ?2)
