-- Group commit: writes several claims' completions in one statement.
-- Commits (one per claim): $1 task types, $2 keys, $3 claim tokens,
-- $4 workers, $5 whether to release the unit if this leaves it nothing
-- pending. Completions: $6 the commit each belongs to (1-based), $7 outputs,
-- $8 call records. Items: $9 ids, $10 the completion each belongs to.
-- Returns one row per commit, in order: its number and what became of it:
-- 'done', 'released', 'not-in-flight' (the claim holds but the items are not
-- its pending items in flight: nothing written), 'busy' (another transaction
-- holds the unit row: nothing written, try again) or 'lost' (the claim is
-- gone: nothing written). A commit is written whole or not at all; the unit
-- rows are locked in a fixed order and locked rows are skipped, never
-- waited for, so one producer's open transaction holds up its own unit only.
-- Each unit row is written once: its pending counts, oldest pending time and
-- (when drained) its release in one UPDATE; the statement marks itself so
-- that the items' update trigger, which would write the row again, stands
-- aside (migration 0010).
WITH cm AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::boolean[])
        WITH ORDINALITY AS cm(task_type, work_unit_key, token, worker, release_if_drained, c)
), co AS (
    SELECT * FROM unnest($6::bigint[], $7::text[], $8::text[])
        WITH ORDINALITY AS co(c, output, call, k)
), it AS (
    SELECT it.id, it.k, co.c
      FROM unnest($9::bigint[], $10::bigint[]) AS it(id, k)
      JOIN co USING (k)
), per_completion AS (
    SELECT k, array_agg(id ORDER BY id) AS ids FROM it GROUP BY k
), per_commit AS (
    SELECT c, array_agg(id) AS ids FROM it GROUP BY c
), held AS (
    SELECT cm.c, u.in_flight_from, u.in_flight_through
      FROM cm
      JOIN sluice_units u
        ON u.task_type = cm.task_type AND u.work_unit_key = cm.work_unit_key
       AND u.claim_token = cm.token AND u.claimed_by = cm.worker
     ORDER BY u.task_type, u.work_unit_key
       FOR UPDATE OF u SKIP LOCKED
), unfit AS (
    -- Held commits with an item that is not one of the unit's pending items
    -- in flight under the claim (set-based: one pass over the group's items).
    SELECT DISTINCT h.c
      FROM held h
      JOIN cm USING (c)
      JOIN it USING (c)
      LEFT JOIN sluice_items i
        ON i.id = it.id AND i.task_type = cm.task_type
       AND i.work_unit_key = cm.work_unit_key AND i.state = 'pending'
       AND i.id BETWEEN h.in_flight_from AND h.in_flight_through
     WHERE i.id IS NULL
), counts_kept AS MATERIALIZED (
    SELECT set_config('sluice.counts_kept_by', sluice_statement_mark(), true) AS mark
), ready AS (
    -- Marked before any item is written (done reads ready).
    SELECT c FROM held, counts_kept WHERE c NOT IN (SELECT c FROM unfit)
), done AS (
    UPDATE sluice_items i
       SET state = 'done', finished_at_ms = sluice_now_ms()
      FROM it JOIN ready USING (c)
     WHERE i.id = it.id
    RETURNING it.c, i.tokens
), outputs AS (
    INSERT INTO sluice_outputs (task_type, work_unit_key, item_ids, output, call)
    SELECT cm.task_type, cm.work_unit_key, pc.ids, co.output::jsonb, co.call::jsonb
      FROM co JOIN ready USING (c) JOIN cm USING (c) JOIN per_completion pc USING (k)
     ORDER BY co.k
), left_pending AS (
    SELECT c, count(*) AS n, sum(tokens) AS tokens FROM done GROUP BY c
), settled AS (
    -- Counts as the trigger would keep them; the unit goes back when it was
    -- asked to and nothing is left pending besides this commit's items.
    UPDATE sluice_units u
       SET pending_count = u.pending_count - coalesce(lp.n, 0),
           pending_tokens = u.pending_tokens - coalesce(lp.tokens, 0),
           oldest_pending_ms = CASE WHEN u.pending_count - coalesce(lp.n, 0) <= 0 THEN NULL
                                    ELSE coalesce(head.created_at_ms, u.oldest_pending_ms) END,
           claimed_by = CASE WHEN cm.release_if_drained AND head.id IS NULL THEN NULL
                             ELSE u.claimed_by END,
           available_at_ms = CASE WHEN cm.release_if_drained AND head.id IS NULL THEN sluice_now_ms()
                                  ELSE u.available_at_ms END
      FROM cm
      JOIN ready USING (c)
      LEFT JOIN left_pending lp USING (c)
      LEFT JOIN per_commit pm USING (c)
      LEFT JOIN LATERAL (
            SELECT p.id, p.created_at_ms FROM sluice_items p
             WHERE p.task_type = cm.task_type AND p.work_unit_key = cm.work_unit_key
               AND p.state = 'pending'
               AND p.id <> ALL (coalesce(pm.ids, '{}'))
             ORDER BY p.id LIMIT 1) head ON true
     WHERE u.task_type = cm.task_type AND u.work_unit_key = cm.work_unit_key
       AND u.claim_token = cm.token
    RETURNING cm.c, (cm.release_if_drained AND head.id IS NULL) AS released
), released AS (
    SELECT c FROM settled WHERE released
)
SELECT cm.c,
       CASE
           WHEN r.c IS NOT NULL AND d.c IS NOT NULL THEN 'released'
           WHEN r.c IS NOT NULL THEN 'done'
           WHEN h.c IS NOT NULL THEN 'not-in-flight'
           WHEN EXISTS (SELECT 1 FROM sluice_units u
                         WHERE u.task_type = cm.task_type AND u.work_unit_key = cm.work_unit_key
                           AND u.claim_token = cm.token AND u.claimed_by = cm.worker) THEN 'busy'
           ELSE 'lost'
       END
  FROM cm
  LEFT JOIN held h USING (c)
  LEFT JOIN ready r USING (c)
  LEFT JOIN released d USING (c)
 ORDER BY cm.c
