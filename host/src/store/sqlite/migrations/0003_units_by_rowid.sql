-- Two changes that make claims and batches write less.
--
-- 1. sluice_units becomes a rowid table (it was WITHOUT ROWID, keyed by task
--    type and key). Units are laid out in the order they were first enqueued,
--    which is close to the order they are claimed in, and the ready, lease and
--    owner indexes point at units by integer instead of by two strings, so a
--    claim touches fewer and smaller pages however long the backlog is. The
--    (task_type, work_unit_key) key is now a unique index.
--
-- 2. A claim's items in flight are recorded on its unit instead of on each
--    item: a batch is always the unit's first pending items in id order, so
--    "in flight under the current claim" is "pending, with id between
--    in_flight_from and in_flight_through". Marking each fetched item rewrote
--    one table page per item (a unit's items are spread among other units'
--    items); now fetching a batch writes one unit row. A claim held while this
--    runs keeps its batch. sluice_items.claim_seq is no longer used; it stays,
--    because dropping a column rewrites the whole items table.
--
-- SQLite cannot alter a table's key in place: the unit triggers are dropped,
-- the table is rebuilt, and the triggers are created again unchanged.

DROP TRIGGER sluice_items_inserted;
DROP TRIGGER sluice_items_left_pending;
DROP TRIGGER sluice_items_back_to_pending;
DROP TRIGGER sluice_items_deleted;

CREATE TABLE sluice_units_rebuilt (
    id                INTEGER PRIMARY KEY,
    task_type         TEXT    NOT NULL,
    work_unit_key     TEXT    NOT NULL,
    pending_count     INTEGER NOT NULL DEFAULT 0,
    pending_tokens    INTEGER NOT NULL DEFAULT 0,
    oldest_pending_ms INTEGER,
    available_at_ms   INTEGER NOT NULL DEFAULT 0,
    claim_seq         INTEGER NOT NULL DEFAULT 0,
    claimed_by        TEXT,
    lease_expires_ms  INTEGER,
    -- The first and last item ids fetched under the current claim (NULL:
    -- none yet); the pending items between them are in flight.
    in_flight_from    INTEGER,
    in_flight_through INTEGER
);
INSERT INTO sluice_units_rebuilt (task_type, work_unit_key, pending_count, pending_tokens,
                                  oldest_pending_ms, available_at_ms, claim_seq, claimed_by,
                                  lease_expires_ms, in_flight_from, in_flight_through)
SELECT u.task_type, u.work_unit_key, u.pending_count, u.pending_tokens, u.oldest_pending_ms,
       u.available_at_ms, u.claim_seq, u.claimed_by, u.lease_expires_ms,
       f.first_id, f.last_id
  FROM sluice_units u
  -- The batch each held claim has in flight: its pending items marked with it.
  LEFT JOIN (SELECT task_type, work_unit_key, claim_seq,
                    min(id) AS first_id, max(id) AS last_id
               FROM sluice_items
              WHERE state = 'pending' AND claim_seq IS NOT NULL
              GROUP BY task_type, work_unit_key, claim_seq) f
         ON u.claimed_by IS NOT NULL
        AND f.task_type = u.task_type AND f.work_unit_key = u.work_unit_key
        AND f.claim_seq = u.claim_seq
 ORDER BY u.oldest_pending_ms, u.task_type, u.work_unit_key;
DROP TABLE sluice_units;
ALTER TABLE sluice_units_rebuilt RENAME TO sluice_units;

CREATE UNIQUE INDEX sluice_units_key ON sluice_units (task_type, work_unit_key);
CREATE INDEX sluice_units_ready ON sluice_units (available_at_ms)
    WHERE pending_count > 0 AND claimed_by IS NULL;
CREATE INDEX sluice_units_leases ON sluice_units (lease_expires_ms) WHERE claimed_by IS NOT NULL;
CREATE INDEX sluice_units_owner ON sluice_units (claimed_by) WHERE claimed_by IS NOT NULL;

CREATE TRIGGER sluice_items_inserted AFTER INSERT ON sluice_items WHEN NEW.state = 'pending'
BEGIN
    INSERT INTO sluice_units (task_type, work_unit_key, pending_count, pending_tokens,
                              oldest_pending_ms, available_at_ms)
    VALUES (NEW.task_type, NEW.work_unit_key, 1, NEW.tokens, NEW.created_at_ms,
            CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
    ON CONFLICT (task_type, work_unit_key) DO UPDATE
       SET pending_count = pending_count + 1,
           pending_tokens = pending_tokens + excluded.pending_tokens,
           oldest_pending_ms = min(coalesce(oldest_pending_ms, excluded.oldest_pending_ms),
                                   excluded.oldest_pending_ms);
END;

CREATE TRIGGER sluice_items_left_pending AFTER UPDATE OF state ON sluice_items
    WHEN OLD.state = 'pending' AND NEW.state <> 'pending'
BEGIN
    UPDATE sluice_units
       SET pending_count = pending_count - 1,
           pending_tokens = pending_tokens - OLD.tokens,
           oldest_pending_ms = (SELECT i.created_at_ms FROM sluice_items i
                                 WHERE i.task_type = OLD.task_type AND i.work_unit_key = OLD.work_unit_key
                                   AND i.state = 'pending'
                                 ORDER BY i.id LIMIT 1)
     WHERE task_type = OLD.task_type AND work_unit_key = OLD.work_unit_key;
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
                                   excluded.oldest_pending_ms);
END;

-- A producer may delete pending items it no longer wants done.
CREATE TRIGGER sluice_items_deleted AFTER DELETE ON sluice_items
    WHEN OLD.state = 'pending'
BEGIN
    UPDATE sluice_units
       SET pending_count = pending_count - 1,
           pending_tokens = pending_tokens - OLD.tokens,
           oldest_pending_ms = (SELECT i.created_at_ms FROM sluice_items i
                                 WHERE i.task_type = OLD.task_type AND i.work_unit_key = OLD.work_unit_key
                                   AND i.state = 'pending'
                                 ORDER BY i.id LIMIT 1)
     WHERE task_type = OLD.task_type AND work_unit_key = OLD.work_unit_key;
END;
