-- Items whose dedupe key a pending item now holds stay dead (retrying them
-- would duplicate that item), and so do items inside the range a claim has in
-- flight (a dead item between two pending ones, under a claim that fetched
-- both): back to pending, they would count as fetched by that claim. They can
-- be retried once the claim ends.
UPDATE sluice_items
   SET state = 'pending', attempts = 0, finished_at_ms = NULL
 WHERE state = 'dead'
   AND ($1::bigint IS NULL OR id = $1)
   AND ($2::text IS NULL OR task_type = $2)
   AND ($3::text IS NULL OR work_unit_key = $3)
   AND (dedupe_key IS NULL
        OR NOT EXISTS (SELECT 1 FROM sluice_items p
                        WHERE p.state = 'pending' AND p.task_type = sluice_items.task_type
                          AND p.dedupe_key = sluice_items.dedupe_key))
   AND NOT EXISTS (SELECT 1 FROM sluice_units u
                    WHERE u.task_type = sluice_items.task_type
                      AND u.work_unit_key = sluice_items.work_unit_key
                      AND u.claimed_by IS NOT NULL
                      AND sluice_items.id BETWEEN u.in_flight_from AND u.in_flight_through)
