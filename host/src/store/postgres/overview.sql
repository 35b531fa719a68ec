-- Per task type: pending items and the oldest from the unit counters,
-- claimed units, dead letters (over the dead index) and items done since
-- $1 (over the done index by finish time). No walk over all items.
WITH u AS (
    SELECT task_type, sum(pending_count)::bigint AS pending, min(oldest_pending_ms) AS oldest,
           count(claimed_by) AS claimed
      FROM sluice_units
     GROUP BY task_type),
d AS (
    SELECT task_type, count(*) AS dead FROM sluice_items WHERE state = 'dead' GROUP BY task_type),
f AS (
    SELECT task_type, count(*) AS done FROM sluice_items
     WHERE state = 'done' AND finished_at_ms >= $1
     GROUP BY task_type),
t AS (SELECT task_type FROM u UNION SELECT task_type FROM d UNION SELECT task_type FROM f)
SELECT t.task_type, coalesce(u.pending, 0) AS pending, u.oldest AS oldest_pending_ms,
       coalesce(u.claimed, 0) AS claimed_units, coalesce(f.done, 0) AS done_recently,
       coalesce(d.dead, 0) AS dead
  FROM t
  LEFT JOIN u ON u.task_type = t.task_type
  LEFT JOIN d ON d.task_type = t.task_type
  LEFT JOIN f ON f.task_type = t.task_type
 ORDER BY t.task_type
