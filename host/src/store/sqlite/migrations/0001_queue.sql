-- Sluice's queue on SQLite. Producers may enqueue with plain SQL: insert into
-- sluice_items (task_type, work_unit_key, payload[, tokens, dedupe_key]); the
-- triggers below keep sluice_units in step. Times are milliseconds since the
-- Unix epoch, computed with julianday() so producers on any SQLite version
-- (not just the one bundled with Sluice) get the same defaults.

CREATE TABLE sluice_items (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    task_type      TEXT    NOT NULL CHECK (length(task_type) > 0),
    work_unit_key  TEXT    NOT NULL CHECK (length(work_unit_key) > 0),
    payload        TEXT    NOT NULL CHECK (json_valid(payload)),
    tokens         INTEGER NOT NULL DEFAULT 0 CHECK (tokens >= 0),
    dedupe_key     TEXT,
    state          TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    -- The claim (sluice_units.claim_seq) this item is in flight under, if any.
    claim_seq      INTEGER,
    last_error     TEXT,
    -- Every failure, oldest first: [{"attempt": n, "at_ms": t, "error": "..."}].
    errors         TEXT    NOT NULL DEFAULT '[]',
    created_at_ms  INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
    finished_at_ms INTEGER
);
CREATE INDEX sluice_items_pending ON sluice_items (task_type, work_unit_key, id) WHERE state = 'pending';
CREATE UNIQUE INDEX sluice_items_dedupe ON sluice_items (task_type, dedupe_key)
    WHERE state = 'pending' AND dedupe_key IS NOT NULL;
CREATE INDEX sluice_items_dead ON sluice_items (task_type, work_unit_key, id) WHERE state = 'dead';

CREATE TABLE sluice_units (
    task_type         TEXT    NOT NULL,
    work_unit_key     TEXT    NOT NULL,
    pending_count     INTEGER NOT NULL DEFAULT 0,
    pending_tokens    INTEGER NOT NULL DEFAULT 0,
    oldest_pending_ms INTEGER,
    available_at_ms   INTEGER NOT NULL DEFAULT 0,
    claim_seq         INTEGER NOT NULL DEFAULT 0,
    claimed_by        TEXT,
    lease_expires_ms  INTEGER,
    PRIMARY KEY (task_type, work_unit_key)
) WITHOUT ROWID;
CREATE INDEX sluice_units_ready ON sluice_units (available_at_ms)
    WHERE pending_count > 0 AND claimed_by IS NULL;
CREATE INDEX sluice_units_leases ON sluice_units (lease_expires_ms) WHERE claimed_by IS NOT NULL;
CREATE INDEX sluice_units_owner ON sluice_units (claimed_by) WHERE claimed_by IS NOT NULL;

CREATE TABLE sluice_outputs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    task_type     TEXT    NOT NULL,
    work_unit_key TEXT    NOT NULL,
    item_ids      TEXT    NOT NULL, -- JSON array of item ids
    output        TEXT CHECK (output IS NULL OR json_valid(output)),
    created_at_ms INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
);
CREATE INDEX sluice_outputs_unit ON sluice_outputs (task_type, work_unit_key, id);

CREATE TABLE sluice_workers (
    id            TEXT    PRIMARY KEY,
    host_name     TEXT    NOT NULL,
    pid           INTEGER NOT NULL,
    version       TEXT    NOT NULL,
    started_at_ms INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
    last_seen_ms  INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
);

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

-- An item's unit and size are fixed once enqueued: the unit rows count them.
CREATE TRIGGER sluice_items_immutable BEFORE UPDATE OF task_type, work_unit_key, tokens ON sluice_items
    WHEN OLD.task_type IS NOT NEW.task_type
      OR OLD.work_unit_key IS NOT NEW.work_unit_key
      OR OLD.tokens IS NOT NEW.tokens
BEGIN
    SELECT RAISE(ABORT, 'sluice_items.task_type, work_unit_key and tokens cannot change once enqueued; delete the item and enqueue a new one');
END;
