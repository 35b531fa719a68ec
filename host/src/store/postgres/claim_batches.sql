-- Claims up to $5 ready units of the task types in $2 (with gates $3 min
-- tokens and $4 max wait ms, NULL when off) for worker $1, at most $7 of them
-- suspects (their last attempt timed out or trapped); paused task types
-- are skipped. Claim tokens are $6 + 1, $6 + 2, ... ($6 is random, fresh for
-- each call).
--
-- Takes each claimed unit's first batch as fetch_batch.sql would: at most $8
-- items and $9 tokens for a unit of task type $2[i] (at least one item unless
-- $8 is 0, which claims without a batch; fewer while the unit narrows after a
-- failed batch; none past an item not yet due). One statement: a unit costs
-- no fetch of its own before its first call. Returns the claims with their
-- batches as JSON arrays of [id, payload (as a string), tokens, attempts,
-- created_at_ms].
--
-- Per task type, an ordered walk of sluice_units_ready that stops at the
-- limit (LATERAL … LIMIT), so the cost does not depend on the backlog and
-- the plan does not depend on fresh statistics. SKIP LOCKED lets concurrent
-- claimers pass each other (and a producer's open transaction) instead of
-- queueing. Runs on its generic plan, in a session that rules out hash and
-- merge joins and seq scans (GENERIC_CLAIM_PLAN in mod.rs).
WITH candidates AS (
    SELECT c.task_type, c.work_unit_key, c.available_at_ms, c.suspect,
           c.narrow_to, c.narrow_through, g.max_items, g.max_tokens
      FROM unnest($2::text[], $3::bigint[], $4::bigint[], $8::bigint[], $9::bigint[])
               AS g(task_type, min_tokens, max_wait_ms, max_items, max_tokens)
     CROSS JOIN LATERAL (
           SELECT u.task_type, u.work_unit_key, u.available_at_ms, u.suspect,
                  u.narrow_to, u.narrow_through
             FROM sluice_units u
            WHERE u.task_type = g.task_type
              AND u.claimed_by IS NULL
              AND u.pending_count > 0
              AND u.available_at_ms <= sluice_now_ms()
              AND (NOT u.suspect OR $7 > 0)
              AND ((g.min_tokens IS NULL AND g.max_wait_ms IS NULL)
                   OR u.pending_tokens >= g.min_tokens
                   OR coalesce(u.oldest_pending_ms, 0) <= sluice_now_ms() - g.max_wait_ms)
            ORDER BY u.available_at_ms
            LIMIT $5
              FOR UPDATE OF u SKIP LOCKED
       ) c
     -- Paused task types (`sluice pause`) are not claimed.
     WHERE g.task_type NOT IN (SELECT task_type FROM sluice_paused)
), allowed AS (
    SELECT *
      FROM (SELECT *, row_number() OVER (PARTITION BY suspect ORDER BY available_at_ms) AS k
              FROM candidates) ranked
     WHERE NOT suspect OR k <= $7
), chosen AS (
    SELECT a.*,
           row_number() OVER (ORDER BY a.available_at_ms) AS n,
           -- Only a unit that narrows looks up its first pending item.
           CASE WHEN a.narrow_through IS NULL THEN false
                ELSE coalesce(a.narrow_through >= (SELECT min(i.id) FROM sluice_items i
                                                    WHERE i.task_type = a.task_type
                                                      AND i.work_unit_key = a.work_unit_key
                                                      AND i.state = 'pending'), false)
           END AS narrowing
      FROM allowed a ORDER BY a.available_at_ms LIMIT $5
), firsts AS (
    SELECT ch.task_type, ch.work_unit_key, ch.n, b.*
      FROM chosen ch
     CROSS JOIN LATERAL (
           SELECT json_agg(json_build_array(h.id, h.payload::text, h.tokens, h.attempts,
                                            h.created_at_ms) ORDER BY h.id)
                      FILTER (WHERE h.due AND (h.n = 1 OR h.running <= ch.max_tokens)) AS items,
                  min(h.id) FILTER (WHERE h.due AND (h.n = 1 OR h.running <= ch.max_tokens))
                      AS first_id,
                  max(h.id) FILTER (WHERE h.due AND (h.n = 1 OR h.running <= ch.max_tokens))
                      AS last_id,
                  max(h.run_after_ms) FILTER (WHERE h.n = 1) AS head_run_after_ms,
                  count(*) > 0 AS any_pending
             FROM (SELECT p.*,
                          sum(p.tokens) OVER (ORDER BY p.id) AS running,
                          row_number() OVER (ORDER BY p.id) AS n,
                          bool_and(coalesce(p.run_after_ms, 0) <= sluice_now_ms())
                              OVER (ORDER BY p.id) AS due
                     FROM (SELECT i.id, i.payload, i.tokens, i.attempts, i.created_at_ms,
                                  i.run_after_ms
                             FROM sluice_items i
                            WHERE i.task_type = ch.task_type
                              AND i.work_unit_key = ch.work_unit_key
                              AND i.state = 'pending'
                              AND (NOT ch.narrowing OR i.id <= ch.narrow_through)
                            ORDER BY i.id
                            LIMIT CASE WHEN ch.narrowing THEN LEAST(ch.max_items, ch.narrow_to)
                                       ELSE ch.max_items END) p
                  ) h
       ) b
)
UPDATE sluice_units u
   SET claimed_by = $1,
       claim_token = $6 + f.n,
       in_flight_from = f.first_id,
       in_flight_through = f.last_id,
       head_run_after_ms = CASE WHEN f.any_pending THEN f.head_run_after_ms
                                ELSE u.head_run_after_ms END
  FROM firsts f
 WHERE u.task_type = f.task_type AND u.work_unit_key = f.work_unit_key
RETURNING u.task_type, u.work_unit_key, u.claim_token, u.suspect, f.items::text
