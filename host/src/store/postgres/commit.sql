-- Group commit: writes several claims' completions in one statement.
-- Commits (one per claim): $1 task types, $2 keys, $3 claim tokens,
-- $4 workers, $5 whether to release the unit if this leaves it nothing
-- pending, $6 and $7 where its items start and end in $11 (1-based,
-- inclusive; empty when the first is past the last). Completions: $8 the
-- commit each belongs to (1-based), $9 outputs, $10 call records, $12 and
-- $13 where its items start and end in $11. $11: every item id, commit by
-- commit, completion by completion, each completion's in id order.
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
--
-- A commit's values, its items (the slice $11[$6[c]:$7[c]]) among them,
-- travel with its row from cm through held and ready; a completion's are
-- looked up by position; every membership test is an `IN` over a CTE, which
-- Postgres hashes. No CTE is joined to another on the commit number: the
-- cached generic plan guesses each CTE at one row or ten, so such a join is
-- planned as a nested loop, whose cost grows with the square of the group's
-- size (three of them once took 40 % of a 63-commit group's time).
WITH cm AS (
    SELECT cm.*, ($11::bigint[])[($6::int[])[cm.c]:($7::int[])[cm.c]] AS ids
      FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::boolean[])
           WITH ORDINALITY AS cm(task_type, work_unit_key, token, worker, release_if_drained, c)
), held AS (
    SELECT cm.*, u.in_flight_from, u.in_flight_through
      FROM cm
      JOIN sluice_units u
        ON u.task_type = cm.task_type AND u.work_unit_key = cm.work_unit_key
       AND u.claim_token = cm.token AND u.claimed_by = cm.worker
     ORDER BY u.task_type, u.work_unit_key
       FOR UPDATE OF u SKIP LOCKED
), counts_kept AS MATERIALIZED (
    SELECT set_config('sluice.counts_kept_by', sluice_statement_mark(), true) AS mark
), ready AS (
    -- Held commits whose items are all the unit's pending items in flight
    -- under the claim (each commit looks at its own items only), with their
    -- count and tokens. Marked before any item is written (done reads ready).
    SELECT h.*, mine.n, mine.tokens
      FROM held h
     CROSS JOIN counts_kept
     CROSS JOIN LATERAL (
           SELECT count(*) AS n, coalesce(sum(i.tokens), 0) AS tokens
             FROM sluice_items i
            WHERE i.id = ANY (h.ids)
              AND i.task_type = h.task_type
              AND i.work_unit_key = h.work_unit_key
              AND i.state = 'pending'
              AND i.id BETWEEN h.in_flight_from AND h.in_flight_through) mine
     WHERE mine.n = cardinality(h.ids)
), done AS (
    UPDATE sluice_items i
       SET state = 'done', finished_at_ms = sluice_now_ms()
      FROM ready r, unnest(r.ids) AS x(id)
     WHERE i.id = x.id
), outputs AS (
    INSERT INTO sluice_outputs (task_type, work_unit_key, item_ids, output, call)
    SELECT ($1::text[])[co.c], ($2::text[])[co.c],
           ($11::bigint[])[co.first:co.last],
           co.output::jsonb, co.call::jsonb
      FROM unnest($8::bigint[], $9::text[], $10::text[], $12::int[], $13::int[])
           WITH ORDINALITY AS co(c, output, call, first, last, k)
     WHERE co.c IN (SELECT c FROM ready)
     ORDER BY co.k
), settled AS (
    -- Counts as the trigger would keep them (the statement sees the items as
    -- they were before it); the unit goes back when it was asked to and
    -- nothing is left pending besides this commit's items.
    UPDATE sluice_units u
       SET pending_count = u.pending_count - r.n,
           pending_tokens = u.pending_tokens - r.tokens,
           oldest_pending_ms = CASE WHEN u.pending_count - r.n <= 0 THEN NULL
                                    ELSE coalesce(head.created_at_ms, u.oldest_pending_ms) END,
           claimed_by = CASE WHEN r.release_if_drained AND head.id IS NULL THEN NULL
                             ELSE u.claimed_by END,
           available_at_ms = CASE WHEN r.release_if_drained AND head.id IS NULL THEN sluice_now_ms()
                                  ELSE u.available_at_ms END
      FROM ready r
      LEFT JOIN LATERAL (
            SELECT p.id, p.created_at_ms FROM sluice_items p
             WHERE p.task_type = r.task_type AND p.work_unit_key = r.work_unit_key
               AND p.state = 'pending'
               AND p.id <> ALL (r.ids)
             ORDER BY p.id LIMIT 1) head ON true
     WHERE u.task_type = r.task_type AND u.work_unit_key = r.work_unit_key
       AND u.claim_token = r.token
    RETURNING r.c, (r.release_if_drained AND head.id IS NULL) AS released
)
SELECT cm.c,
       CASE
           WHEN cm.c IN (SELECT c FROM settled WHERE released) THEN 'released'
           WHEN cm.c IN (SELECT c FROM ready) THEN 'done'
           WHEN cm.c IN (SELECT c FROM held) THEN 'not-in-flight'
           WHEN EXISTS (SELECT 1 FROM sluice_units u
                         WHERE u.task_type = cm.task_type AND u.work_unit_key = cm.work_unit_key
                           AND u.claim_token = cm.token AND u.claimed_by = cm.worker) THEN 'busy'
           ELSE 'lost'
       END
  FROM cm
 ORDER BY cm.c
