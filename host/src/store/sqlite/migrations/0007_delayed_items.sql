-- Delayed items: sluice_items.run_after_ms, and the item is not fetched
-- before then (NULL: at once). A unit runs its items in id order, so a
-- delayed item holds its unit's later items too: the unit keeps its first
-- pending item's run_after_ms in head_run_after_ms, and a unit row is never
-- available before it (the triggers on sluice_units raise available_at_ms,
-- whoever writes the row: an enqueue, a release, a backoff). The claim and
-- its ready index need no change. Fetching a batch stops at the first item
-- not yet due and records that item's time on the unit, so the release that
-- follows makes the unit wait for it.
--
-- A producer enqueueing with plain SQL sets run_after_ms itself (ms since the
-- Unix epoch); README.md, "Enqueue with SQL".

ALTER TABLE sluice_items ADD COLUMN run_after_ms INTEGER;
ALTER TABLE sluice_units ADD COLUMN head_run_after_ms INTEGER;

CREATE TRIGGER sluice_units_wait_for_head_inserted AFTER INSERT ON sluice_units
    WHEN NEW.head_run_after_ms > NEW.available_at_ms
BEGIN
    UPDATE sluice_units SET available_at_ms = NEW.head_run_after_ms WHERE id = NEW.id;
END;

CREATE TRIGGER sluice_units_wait_for_head AFTER UPDATE OF available_at_ms, head_run_after_ms ON sluice_units
    WHEN NEW.head_run_after_ms > NEW.available_at_ms
BEGIN
    UPDATE sluice_units SET available_at_ms = NEW.head_run_after_ms WHERE id = NEW.id;
END;

-- The item triggers of 0003, plus the head's run_after_ms: set by an item
-- that enters a unit with nothing pending, looked up again when an item
-- comes back to pending (a dead-letter retry) or is deleted (cancelled), and
-- then a unit that was waiting only for its old head is available.
DROP TRIGGER sluice_items_inserted;
DROP TRIGGER sluice_items_back_to_pending;
DROP TRIGGER sluice_items_deleted;

CREATE TRIGGER sluice_items_inserted AFTER INSERT ON sluice_items WHEN NEW.state = 'pending'
BEGIN
    INSERT INTO sluice_units (task_type, work_unit_key, pending_count, pending_tokens,
                              oldest_pending_ms, available_at_ms, head_run_after_ms)
    VALUES (NEW.task_type, NEW.work_unit_key, 1, NEW.tokens, NEW.created_at_ms,
            CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), NEW.run_after_ms)
    ON CONFLICT (task_type, work_unit_key) DO UPDATE
       SET pending_count = pending_count + 1,
           pending_tokens = pending_tokens + excluded.pending_tokens,
           oldest_pending_ms = min(coalesce(oldest_pending_ms, excluded.oldest_pending_ms),
                                   excluded.oldest_pending_ms),
           head_run_after_ms = CASE WHEN pending_count = 0 THEN excluded.head_run_after_ms
                                    ELSE head_run_after_ms END;
END;

CREATE TRIGGER sluice_items_back_to_pending AFTER UPDATE OF state ON sluice_items
    WHEN OLD.state <> 'pending' AND NEW.state = 'pending'
BEGIN
    INSERT INTO sluice_units (task_type, work_unit_key, pending_count, pending_tokens,
                              oldest_pending_ms, available_at_ms)
    VALUES (NEW.task_type, NEW.work_unit_key, 1, NEW.tokens, NEW.created_at_ms,
            CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (task_type, work_unit_key) DO UPDATE
       SET pending_count = pending_count + 1,
           pending_tokens = pending_tokens + excluded.pending_tokens,
           oldest_pending_ms = min(coalesce(oldest_pending_ms, excluded.oldest_pending_ms),
                                   excluded.oldest_pending_ms),
           available_at_ms = CASE WHEN claimed_by IS NULL AND available_at_ms = head_run_after_ms
                                  THEN excluded.available_at_ms ELSE available_at_ms END,
           head_run_after_ms = (SELECT i.run_after_ms FROM sluice_items i
                                 WHERE i.task_type = NEW.task_type AND i.work_unit_key = NEW.work_unit_key
                                   AND i.state = 'pending'
                                 ORDER BY i.id LIMIT 1);
END;

CREATE TRIGGER sluice_items_deleted AFTER DELETE ON sluice_items
    WHEN OLD.state = 'pending'
BEGIN
    UPDATE sluice_units
       SET pending_count = pending_count - 1,
           pending_tokens = pending_tokens - OLD.tokens,
           oldest_pending_ms = (SELECT i.created_at_ms FROM sluice_items i
                                 WHERE i.task_type = OLD.task_type AND i.work_unit_key = OLD.work_unit_key
                                   AND i.state = 'pending'
                                 ORDER BY i.id LIMIT 1),
           available_at_ms = CASE WHEN claimed_by IS NULL AND available_at_ms = head_run_after_ms
                                  THEN CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
                                  ELSE available_at_ms END,
           head_run_after_ms = (SELECT i.run_after_ms FROM sluice_items i
                                 WHERE i.task_type = OLD.task_type AND i.work_unit_key = OLD.work_unit_key
                                   AND i.state = 'pending'
                                 ORDER BY i.id LIMIT 1)
     WHERE task_type = OLD.task_type AND work_unit_key = OLD.work_unit_key;
END;

-- A producer's plain INSERT is checked against the limits every other door
-- checks (host/src/store/validate.rs), one trigger per field, each naming its
-- field. SQLite's RAISE takes a fixed message, so the message states the rule
-- rather than the value. Only the payload's finer checks (a \u0000 or a lone
-- surrogate in a string, nesting deeper than 64) are left to the other doors;
-- json_valid still refuses a payload that is not JSON.
CREATE TRIGGER sluice_items_check_task_type BEFORE INSERT ON sluice_items
    WHEN trim(NEW.task_type, ' ' || char(9, 10, 11, 12, 13)) = ''
      OR length(CAST(NEW.task_type AS BLOB)) > 128
      OR NEW.task_type GLOB ('*[' || char(1) || '-' || char(31) || char(127) || '-' || char(159) || ']*')
      OR instr(NEW.task_type, char(0)) > 0
BEGIN
    SELECT RAISE(ABORT, 'sluice_items: task_type must be 1 to 128 bytes, not blank, without control or NUL characters; nothing was enqueued');
END;

CREATE TRIGGER sluice_items_check_work_unit_key BEFORE INSERT ON sluice_items
    WHEN trim(NEW.work_unit_key, ' ' || char(9, 10, 11, 12, 13)) = ''
      OR length(CAST(NEW.work_unit_key AS BLOB)) > 1024
      OR instr(NEW.work_unit_key, char(0)) > 0
BEGIN
    SELECT RAISE(ABORT, 'sluice_items: work_unit_key must be 1 to 1024 bytes, not blank, without NUL characters; nothing was enqueued');
END;

CREATE TRIGGER sluice_items_check_dedupe_key BEFORE INSERT ON sluice_items
    WHEN NEW.dedupe_key IS NOT NULL
     AND (trim(NEW.dedupe_key, ' ' || char(9, 10, 11, 12, 13)) = ''
          OR length(CAST(NEW.dedupe_key AS BLOB)) > 1024
          OR instr(NEW.dedupe_key, char(0)) > 0)
BEGIN
    SELECT RAISE(ABORT, 'sluice_items: dedupe_key must be 1 to 1024 bytes, not blank, without NUL characters (or NULL for none); nothing was enqueued');
END;

CREATE TRIGGER sluice_items_check_numbers BEFORE INSERT ON sluice_items
    WHEN NEW.tokens > 4294967295 OR NEW.run_after_ms NOT BETWEEN 0 AND 253402300799999
BEGIN
    SELECT RAISE(ABORT, 'sluice_items: tokens must be 0 to 4294967295, and run_after_ms (ms since the Unix epoch) within the years 1970 to 9999; nothing was enqueued');
END;

-- The task types each host serves (a JSON array; NULL for hosts from before
-- this column, taken to serve everything), so that status can say which
-- waiting task types no running host serves.
ALTER TABLE sluice_workers ADD COLUMN task_types TEXT;
