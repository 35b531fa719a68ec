-- Sluice's queue on PostgreSQL. Producers may enqueue with plain SQL inside
-- their own transactions: insert into sluice_items (task_type, work_unit_key,
-- payload[, tokens, dedupe_key]); the triggers below keep sluice_units in step
-- and wake idle hosts.

-- The database clock, in milliseconds since the Unix epoch: every host judges
-- leases and backoff by the same clock.
CREATE FUNCTION sluice_now_ms() RETURNS bigint
    LANGUAGE sql VOLATILE
    AS $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;

CREATE TABLE sluice_items (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_type      text    NOT NULL CHECK (length(task_type) > 0),
    work_unit_key  text    NOT NULL CHECK (length(work_unit_key) > 0),
    payload        jsonb   NOT NULL,
    tokens         bigint  NOT NULL DEFAULT 0 CHECK (tokens >= 0),
    dedupe_key     text,
    state          text    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),
    attempts       integer NOT NULL DEFAULT 0,
    -- The claim (sluice_units.claim_seq) this item is in flight under, if any.
    claim_seq      bigint,
    last_error     text,
    -- Every failure, oldest first: [{"attempt": n, "at_ms": t, "error": "..."}].
    errors         jsonb   NOT NULL DEFAULT '[]',
    created_at_ms  bigint  NOT NULL DEFAULT sluice_now_ms(),
    finished_at_ms bigint
);
-- A unit's pending items in id order: batches, and the head item for backoff.
CREATE INDEX sluice_items_pending ON sluice_items (task_type, work_unit_key, id) WHERE state = 'pending';
-- At most one pending item per dedupe key and task type.
CREATE UNIQUE INDEX sluice_items_dedupe ON sluice_items (task_type, dedupe_key)
    WHERE state = 'pending' AND dedupe_key IS NOT NULL;
CREATE INDEX sluice_items_dead ON sluice_items (task_type, work_unit_key, id) WHERE state = 'dead';

-- One row per work unit (task type + key): what is pending, when it may next
-- run, and who holds it. Claims touch only this table.
CREATE TABLE sluice_units (
    task_type         text   NOT NULL,
    work_unit_key     text   NOT NULL,
    pending_count     bigint NOT NULL DEFAULT 0,
    pending_tokens    bigint NOT NULL DEFAULT 0,
    oldest_pending_ms bigint,
    available_at_ms   bigint NOT NULL DEFAULT 0,
    -- Incremented by every claim: the fencing token every write checks.
    claim_seq         bigint NOT NULL DEFAULT 0,
    claimed_by        text,
    lease_expires_ms  bigint,
    PRIMARY KEY (task_type, work_unit_key)
);
CREATE INDEX sluice_units_ready ON sluice_units (task_type, available_at_ms)
    WHERE pending_count > 0 AND claimed_by IS NULL;
CREATE INDEX sluice_units_leases ON sluice_units (lease_expires_ms) WHERE claimed_by IS NOT NULL;
CREATE INDEX sluice_units_owner ON sluice_units (claimed_by) WHERE claimed_by IS NOT NULL;

-- What handlers returned, against the items they covered.
CREATE TABLE sluice_outputs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_type     text     NOT NULL,
    work_unit_key text     NOT NULL,
    item_ids      bigint[] NOT NULL,
    output        jsonb,
    created_at_ms bigint   NOT NULL DEFAULT sluice_now_ms()
);
CREATE INDEX sluice_outputs_unit ON sluice_outputs (task_type, work_unit_key, id);

-- Host processes, for status and for telling live owners from dead ones.
CREATE TABLE sluice_workers (
    id            text   PRIMARY KEY,
    host_name     text   NOT NULL,
    pid           bigint NOT NULL,
    version       text   NOT NULL,
    started_at_ms bigint NOT NULL DEFAULT sluice_now_ms(),
    last_seen_ms  bigint NOT NULL DEFAULT sluice_now_ms()
);

-- Keep sluice_units in step with the items' states, whoever changes them.
-- Statement-level triggers with transition tables: one grouped upsert per
-- statement, however many items it touched (a 5,000-item enqueue or a
-- 100-item completion costs one unit update per unit, not one per item).
CREATE FUNCTION sluice_items_inserted() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sluice_units AS u (task_type, work_unit_key, pending_count, pending_tokens,
                                   oldest_pending_ms, available_at_ms)
    SELECT task_type, work_unit_key, count(*), sum(tokens), min(created_at_ms), sluice_now_ms()
      FROM inserted
     WHERE state = 'pending'
     GROUP BY task_type, work_unit_key
    ON CONFLICT (task_type, work_unit_key) DO UPDATE
       SET pending_count = u.pending_count + EXCLUDED.pending_count,
           pending_tokens = u.pending_tokens + EXCLUDED.pending_tokens,
           oldest_pending_ms = LEAST(u.oldest_pending_ms, EXCLUDED.oldest_pending_ms);
    PERFORM pg_notify('sluice_items', task_type)
       FROM (SELECT DISTINCT task_type FROM inserted WHERE state = 'pending') t;
    RETURN NULL;
END
$$;

CREATE TRIGGER sluice_items_inserted
    AFTER INSERT ON sluice_items
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION sluice_items_inserted();

CREATE FUNCTION sluice_items_updated() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    -- Items entering or leaving 'pending', summed per unit.
    WITH moved AS (
        SELECT n.task_type, n.work_unit_key,
               CASE WHEN n.state = 'pending' THEN 1 ELSE -1 END AS sign,
               n.tokens, n.created_at_ms
          FROM new_rows n
          JOIN old_rows o ON o.id = n.id
         WHERE (o.state = 'pending') <> (n.state = 'pending')
    ), delta AS (
        SELECT task_type, work_unit_key,
               sum(sign) AS count_delta,
               sum(sign * tokens) AS tokens_delta,
               min(created_at_ms) FILTER (WHERE sign > 0) AS oldest_entering
          FROM moved
         GROUP BY task_type, work_unit_key
    )
    INSERT INTO sluice_units AS u (task_type, work_unit_key, pending_count, pending_tokens,
                                   oldest_pending_ms, available_at_ms)
    SELECT task_type, work_unit_key, count_delta, tokens_delta, oldest_entering, sluice_now_ms()
      FROM delta
    ON CONFLICT (task_type, work_unit_key) DO UPDATE
       SET pending_count = u.pending_count + EXCLUDED.pending_count,
           pending_tokens = u.pending_tokens + EXCLUDED.pending_tokens,
           oldest_pending_ms = (SELECT i.created_at_ms FROM sluice_items i
                                 WHERE i.task_type = u.task_type AND i.work_unit_key = u.work_unit_key
                                   AND i.state = 'pending'
                                 ORDER BY i.id LIMIT 1);
    PERFORM pg_notify('sluice_items', n.task_type)
       FROM (SELECT DISTINCT n.task_type FROM new_rows n JOIN old_rows o ON o.id = n.id
              WHERE n.state = 'pending' AND o.state <> 'pending') n;
    RETURN NULL;
END
$$;

CREATE TRIGGER sluice_items_updated
    AFTER UPDATE ON sluice_items
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sluice_items_updated();

-- A producer may delete pending items it no longer wants done.
CREATE FUNCTION sluice_items_deleted() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    WITH delta AS (
        SELECT task_type, work_unit_key, count(*) AS n, sum(tokens) AS tokens
          FROM removed
         WHERE state = 'pending'
         GROUP BY task_type, work_unit_key
    )
    UPDATE sluice_units u
       SET pending_count = u.pending_count - d.n,
           pending_tokens = u.pending_tokens - d.tokens,
           oldest_pending_ms = (SELECT i.created_at_ms FROM sluice_items i
                                 WHERE i.task_type = u.task_type AND i.work_unit_key = u.work_unit_key
                                   AND i.state = 'pending'
                                 ORDER BY i.id LIMIT 1)
      FROM delta d
     WHERE u.task_type = d.task_type AND u.work_unit_key = d.work_unit_key;
    RETURN NULL;
END
$$;

CREATE TRIGGER sluice_items_deleted
    AFTER DELETE ON sluice_items
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION sluice_items_deleted();

-- An item's unit and size are fixed once enqueued: the unit rows count them.
CREATE FUNCTION sluice_items_immutable() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'sluice_items.task_type, work_unit_key and tokens cannot change once enqueued (item %); delete the item and enqueue a new one', OLD.id;
END
$$;

CREATE TRIGGER sluice_items_immutable
    BEFORE UPDATE OF task_type, work_unit_key, tokens ON sluice_items
    FOR EACH ROW
    WHEN (OLD.task_type IS DISTINCT FROM NEW.task_type
          OR OLD.work_unit_key IS DISTINCT FROM NEW.work_unit_key
          OR OLD.tokens IS DISTINCT FROM NEW.tokens)
    EXECUTE FUNCTION sluice_items_immutable();
