-- Deletes up to $2 done items that finished more than $1 ms ago, oldest
-- first; rows another host is deleting are skipped.
DELETE FROM sluice_items
 WHERE id IN (SELECT id FROM sluice_items
               WHERE state = 'done' AND finished_at_ms < sluice_now_ms() - $1
               ORDER BY finished_at_ms
               LIMIT $2
                 FOR UPDATE SKIP LOCKED)
