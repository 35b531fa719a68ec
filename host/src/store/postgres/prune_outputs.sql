-- Deletes up to $2 outputs stored more than $1 ms ago, oldest first; rows
-- another host is deleting are skipped. The cutoff is a scalar subquery so it
-- is computed once and bounds the index scan on sluice_outputs_created.
DELETE FROM sluice_outputs
 WHERE id IN (SELECT id FROM sluice_outputs
               WHERE created_at_ms < (SELECT sluice_now_ms() - $1)
               ORDER BY created_at_ms
               LIMIT $2
                 FOR UPDATE SKIP LOCKED)
