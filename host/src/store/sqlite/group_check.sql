-- Group commit's checks, one row per commit of ?1 (a JSON array of
-- [task_type, work_unit_key, claim token, worker, [item ids]]), in order:
-- the unit's row id when the claim is held (NULL when it is lost), and how
-- many of the commit's items are pending and in flight under the claim.
-- SQLite has one writer: nothing changes between these checks and the
-- group's writes in the same transaction.
WITH cm AS (
    SELECT key AS c,
           json_extract(value, '$[0]') AS task_type,
           json_extract(value, '$[1]') AS work_unit_key,
           json_extract(value, '$[2]') AS token,
           json_extract(value, '$[3]') AS worker,
           json_extract(value, '$[4]') AS ids
      FROM json_each(?1)
)
SELECT u.id,
       (SELECT count(*)
          FROM sluice_items i
         WHERE i.id IN (SELECT value FROM json_each(cm.ids))
           AND i.task_type = cm.task_type AND i.work_unit_key = cm.work_unit_key
           AND i.state = 'pending'
           AND i.id BETWEEN u.in_flight_from AND u.in_flight_through) AS in_flight
  FROM cm
  LEFT JOIN sluice_units u
    ON u.task_type = cm.task_type AND u.work_unit_key = cm.work_unit_key
   AND u.claim_token = cm.token AND u.claimed_by = cm.worker
 ORDER BY cm.c
