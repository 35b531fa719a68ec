-- Item $1 in any state, with the output of the call that completed it.
SELECT i.id, i.task_type, i.work_unit_key, i.state, i.payload::text, i.tokens, i.dedupe_key,
       i.attempts, i.last_error, i.errors::text, i.created_at_ms, i.run_after_ms,
       i.finished_at_ms,
       (SELECT o.output::text FROM sluice_outputs o
         WHERE i.state = 'done' AND o.task_type = i.task_type
           AND o.work_unit_key = i.work_unit_key AND i.id = ANY (o.item_ids)
         ORDER BY o.id DESC LIMIT 1)
  FROM sluice_items i
 WHERE i.id = $1
