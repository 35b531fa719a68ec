-- Deletes up to $2 done items that finished more than $1 ms ago, oldest
-- first; rows another host is deleting are skipped. The cutoff is a scalar
-- subquery so it is computed once and bounds the index scan (sluice_now_ms()
-- is volatile: compared directly, it would only filter every done row).
DELETE FROM sluice_items
 WHERE id IN (SELECT id FROM sluice_items
               WHERE state = 'done' AND finished_at_ms < (SELECT sluice_now_ms() - $1)
               ORDER BY finished_at_ms
               LIMIT $2
                 FOR UPDATE SKIP LOCKED)
