-- Item ?1 in any state, with the output of the call that completed it.
SELECT i.id, i.task_type, i.work_unit_key, i.state, i.payload, i.tokens, i.dedupe_key,
       i.attempts, i.last_error, i.errors, i.created_at_ms, i.run_after_ms, i.finished_at_ms,
       (SELECT o.output FROM sluice_outputs o
         WHERE i.state = 'done' AND o.task_type = i.task_type
           AND o.work_unit_key = i.work_unit_key
           AND EXISTS (SELECT 1 FROM json_each(o.item_ids) WHERE value = i.id)
         ORDER BY o.id DESC LIMIT 1)
  FROM sluice_items i
 WHERE i.id = ?1
