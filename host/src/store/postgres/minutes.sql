-- Items done and dead-lettered per minute since $1: done over the done
-- index by finish time, dead over the dead index.
SELECT minute * 60000 AS minute_ms, count(*) FILTER (WHERE state = 'done') AS done,
       count(*) FILTER (WHERE state = 'dead') AS dead
  FROM (
    SELECT finished_at_ms / 60000 AS minute, state FROM sluice_items
     WHERE state = 'done' AND finished_at_ms >= $1
    UNION ALL
    SELECT finished_at_ms / 60000 AS minute, state FROM sluice_items
     WHERE state = 'dead' AND finished_at_ms >= $1) AS finished
 GROUP BY minute
 ORDER BY minute
