-- Marks the items in ?1 (a JSON array of ids, checked by group_check.sql)
-- done.
UPDATE sluice_items
   SET state = 'done', finished_at_ms = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
 WHERE id IN (SELECT value FROM json_each(?1))
   AND state = 'pending'
