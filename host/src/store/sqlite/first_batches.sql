-- Takes the first batch of every unit claimed a moment ago in the same
-- transaction, as fetch_batch.sql would take each: ?1 is a JSON array of
-- [unit id, at most this many items, at most this many tokens]; ?2 is the
-- most items any of them may take. Returns a row per unit: its id and a JSON
-- array of [id, payload, tokens, attempts, created_at_ms] (empty when its
-- first pending item is not due yet). One statement for the whole claim:
-- each statement is a trip to SQLite's thread, and a statement per unit held
-- the one writer for most of a claim of many one-item units.
--
-- A batch is a prefix of the unit's pending items in id order (at most its
-- item and token limits, always at least one item, fewer while the unit
-- narrows after a failed batch, none past an item not yet due), so it is
-- recorded as a range on the unit and read back by that range.
WITH want AS (
    SELECT json_extract(value, '$[0]') AS unit_id,
           json_extract(value, '$[1]') AS max_items,
           json_extract(value, '$[2]') AS max_tokens
      FROM json_each(?1)
), unit AS (
    SELECT u.id, u.task_type, u.work_unit_key, w.max_items, w.max_tokens, u.narrow_to,
           u.narrow_through,
           coalesce(u.narrow_through >= (SELECT min(i.id) FROM sluice_items i
                                          WHERE i.task_type = u.task_type
                                            AND i.work_unit_key = u.work_unit_key
                                            AND i.state = 'pending'), 0) AS narrowing
      FROM want w CROSS JOIN sluice_units u
     WHERE u.id = w.unit_id
), cut AS (
    -- The unit's item limit, and the last item that could be in its batch
    -- (its ?2-th pending one, or its last), so that no more of a long
    -- backlog is read.
    SELECT unit.*,
           CASE WHEN narrowing THEN min(max_items, narrow_to) ELSE max_items END AS most,
           coalesce((SELECT i.id FROM sluice_items i
                      WHERE i.task_type = unit.task_type AND i.work_unit_key = unit.work_unit_key
                        AND i.state = 'pending'
                      ORDER BY i.id
                      LIMIT 1 OFFSET ?2 - 1),
                    (SELECT max(i.id) FROM sluice_items i
                      WHERE i.task_type = unit.task_type AND i.work_unit_key = unit.work_unit_key
                        AND i.state = 'pending')) AS last_candidate
      FROM unit
), head AS (
    SELECT c.id AS unit_id, c.most, c.max_tokens, i.id, i.run_after_ms,
           sum(i.tokens) OVER w AS running,
           row_number() OVER w AS n,
           max(coalesce(i.run_after_ms, 0) > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
               OVER w AS waiting
      FROM cut c
     CROSS JOIN sluice_items i
     WHERE i.task_type = c.task_type AND i.work_unit_key = c.work_unit_key
       AND i.state = 'pending' AND i.id <= c.last_candidate
       AND (NOT c.narrowing OR i.id <= c.narrow_through)
    WINDOW w AS (PARTITION BY c.id ORDER BY i.id)
), batch AS MATERIALIZED (
    SELECT unit_id,
           min(id) FILTER (WHERE n <= most AND NOT waiting AND (n = 1 OR running <= max_tokens))
               AS first_id,
           max(id) FILTER (WHERE n <= most AND NOT waiting AND (n = 1 OR running <= max_tokens))
               AS last_id,
           max(run_after_ms) FILTER (WHERE n = 1) AS head_run_after_ms
      FROM head
     GROUP BY unit_id
     UNION ALL
    -- A unit with nothing pending (none of the above) takes an empty batch.
    SELECT id, NULL, NULL, NULL FROM cut WHERE last_candidate IS NULL
)
UPDATE sluice_units
   SET (in_flight_from, in_flight_through, head_run_after_ms) =
       (SELECT b.first_id, b.last_id, b.head_run_after_ms FROM batch b
         WHERE b.unit_id = sluice_units.id)
 -- Not UPDATE … FROM: SQLite may drive that join from the whole units table.
 WHERE id IN (SELECT unit_id FROM batch)
RETURNING id,
          (SELECT json_group_array(json_array(i.id, i.payload, i.tokens, i.attempts, i.created_at_ms))
             FROM (SELECT i.id, i.payload, i.tokens, i.attempts, i.created_at_ms
                     FROM sluice_items i
                    WHERE i.task_type = sluice_units.task_type
                      AND i.work_unit_key = sluice_units.work_unit_key
                      AND i.state = 'pending'
                      AND i.id BETWEEN sluice_units.in_flight_from AND sluice_units.in_flight_through
                    ORDER BY i.id) i)
