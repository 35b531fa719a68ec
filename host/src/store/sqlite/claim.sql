-- Claims up to ?4 ready units of the task types in ?3 (a JSON array of
-- {task_type, min_tokens, max_wait_ms}) for worker ?1, at most ?5 of them
-- suspects (their last attempt timed out or trapped); paused task types
-- are skipped. A unit's claim token
-- is ?2 (random, fresh for each call) plus its row id, so the tokens of one
-- call differ from each other and from every other call's. One statement, so
-- SQLite's write lock makes it atomic. Returns each unit's row id with its
-- claim, for first_batches.sql.
UPDATE sluice_units
   SET claimed_by = ?1,
       claim_token = ?2 + id,
       in_flight_from = NULL,
       in_flight_through = NULL
 WHERE id IN (
       SELECT id
         FROM (SELECT r.id, r.suspect,
                      row_number() OVER (PARTITION BY r.suspect ORDER BY r.available_at_ms) AS n
                 FROM (SELECT u.id, u.suspect, u.available_at_ms
                         -- Walk the ready index in availability order and stop at the limit;
                         -- CROSS JOIN keeps SQLite from driving the join from the gate list.
                         FROM sluice_units u INDEXED BY sluice_units_ready
                        CROSS JOIN (SELECT json_extract(value, '$.task_type')   AS task_type,
                                           json_extract(value, '$.min_tokens')  AS min_tokens,
                                           json_extract(value, '$.max_wait_ms') AS max_wait_ms
                                      FROM json_each(?3)
                                     -- Paused task types (`sluice pause`) are not claimed.
                                     WHERE json_extract(value, '$.task_type')
                                           NOT IN (SELECT task_type FROM sluice_paused)) g
                        WHERE g.task_type = u.task_type
                          AND u.claimed_by IS NULL
                          AND u.pending_count > 0
                          AND u.available_at_ms <= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
                          AND (u.suspect = 0 OR ?5 > 0)
                          AND ((g.min_tokens IS NULL AND g.max_wait_ms IS NULL)
                               OR u.pending_tokens >= g.min_tokens
                               OR coalesce(u.oldest_pending_ms, 0) <= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) - g.max_wait_ms)
                        ORDER BY u.available_at_ms
                        LIMIT ?4) r)
        WHERE suspect = 0 OR n <= ?5)
RETURNING id, task_type, work_unit_key, claim_token, suspect
