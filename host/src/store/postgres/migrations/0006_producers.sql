-- Producers: delayed items, and SQL functions that enqueue inside the
-- application's own transaction.
--
-- 1. Delayed items. sluice_items.run_after_ms: the item is not fetched
--    before then (NULL: at once). A unit runs its items in id order, so a
--    delayed item holds its unit's later items too: the unit keeps its first
--    pending item's run_after_ms in head_run_after_ms, and a unit row is
--    never available before it (a trigger raises available_at_ms, whoever
--    writes the row: an enqueue, a release, a backoff). The claim and its
--    ready index need no change. Fetching a batch stops at the first item
--    not yet due and records that item's time on the unit, so the release
--    that follows makes the unit wait for it.
-- 2. sluice_enqueue(...) and sluice_enqueue_many(jsonb): the producer's door
--    in SQL, with the same checks as every other door (host/src/store/
--    validate.rs; a test holds the two in step).

ALTER TABLE sluice_items ADD COLUMN run_after_ms bigint;
ALTER TABLE sluice_units ADD COLUMN head_run_after_ms bigint;

CREATE FUNCTION sluice_units_wait_for_head() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    NEW.available_at_ms := NEW.head_run_after_ms;
    RETURN NEW;
END
$$;

CREATE TRIGGER sluice_units_wait_for_head
    BEFORE INSERT OR UPDATE ON sluice_units
    FOR EACH ROW
    WHEN (NEW.head_run_after_ms > NEW.available_at_ms)
    EXECUTE FUNCTION sluice_units_wait_for_head();

-- As in 0001, plus the head's run_after_ms for units that had nothing
-- pending (a unit with pending items keeps its head).
CREATE OR REPLACE FUNCTION sluice_items_inserted() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sluice_units AS u (task_type, work_unit_key, pending_count, pending_tokens,
                                   oldest_pending_ms, available_at_ms, head_run_after_ms)
    SELECT task_type, work_unit_key, count(*), sum(tokens), min(created_at_ms), sluice_now_ms(),
           (array_agg(run_after_ms ORDER BY id))[1]
      FROM inserted
     WHERE state = 'pending'
     GROUP BY task_type, work_unit_key
    ON CONFLICT (task_type, work_unit_key) DO UPDATE
       SET pending_count = u.pending_count + EXCLUDED.pending_count,
           pending_tokens = u.pending_tokens + EXCLUDED.pending_tokens,
           oldest_pending_ms = LEAST(u.oldest_pending_ms, EXCLUDED.oldest_pending_ms),
           head_run_after_ms = CASE WHEN u.pending_count = 0 THEN EXCLUDED.head_run_after_ms
                                    ELSE u.head_run_after_ms END;
    PERFORM pg_notify('sluice_items', task_type)
       FROM (SELECT DISTINCT task_type FROM inserted WHERE state = 'pending') t;
    RETURN NULL;
END
$$;

-- As in 0004, plus: when items come back to pending (a dead-letter retry),
-- one of them may be the unit's new head, so the head's time is looked up
-- again, and a unit that was waiting only for its old head is available.
CREATE OR REPLACE FUNCTION sluice_items_updated() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
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
           oldest_pending_ms = CASE
               WHEN u.pending_count + EXCLUDED.pending_count <= 0 THEN NULL
               ELSE coalesce((SELECT i.created_at_ms FROM sluice_items i
                               WHERE i.task_type = u.task_type AND i.work_unit_key = u.work_unit_key
                                 AND i.state = 'pending'
                               ORDER BY i.id LIMIT 1),
                             LEAST(u.oldest_pending_ms, EXCLUDED.oldest_pending_ms))
           END,
           available_at_ms = CASE
               WHEN EXCLUDED.oldest_pending_ms IS NOT NULL AND u.claimed_by IS NULL
                    AND u.available_at_ms = u.head_run_after_ms
               THEN sluice_now_ms() ELSE u.available_at_ms END,
           head_run_after_ms = CASE
               WHEN EXCLUDED.oldest_pending_ms IS NULL THEN u.head_run_after_ms
               ELSE (SELECT i.run_after_ms FROM sluice_items i
                      WHERE i.task_type = u.task_type AND i.work_unit_key = u.work_unit_key
                        AND i.state = 'pending'
                      ORDER BY i.id LIMIT 1)
           END;
    PERFORM pg_notify('sluice_items', n.task_type)
       FROM (SELECT DISTINCT n.task_type FROM new_rows n JOIN old_rows o ON o.id = n.id
              WHERE n.state = 'pending' AND o.state <> 'pending') n;
    RETURN NULL;
END
$$;

-- As in 0001, plus the new head's time, and a unit that was waiting only
-- for a deleted (cancelled) head is available again.
CREATE OR REPLACE FUNCTION sluice_items_deleted() RETURNS trigger
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
                                 ORDER BY i.id LIMIT 1),
           available_at_ms = CASE
               WHEN u.claimed_by IS NULL AND u.available_at_ms = u.head_run_after_ms
               THEN sluice_now_ms() ELSE u.available_at_ms END,
           head_run_after_ms = (SELECT i.run_after_ms FROM sluice_items i
                                 WHERE i.task_type = u.task_type AND i.work_unit_key = u.work_unit_key
                                   AND i.state = 'pending'
                                 ORDER BY i.id LIMIT 1)
      FROM delta d
     WHERE u.task_type = d.task_type AND u.work_unit_key = d.work_unit_key;
    RETURN NULL;
END
$$;

-- What is wrong with an item, or NULL: the rules of host/src/store/
-- validate.rs (same limits, same words), for the SQL door.
CREATE FUNCTION sluice_item_problem(task_type text, work_unit_key text, payload jsonb,
                                    tokens bigint, dedupe_key text,
                                    run_after timestamptz, delay interval)
    RETURNS text
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    -- Rust's char::is_whitespace, which the other doors use.
    blank constant text := '^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$';
    payload_bytes bigint;
BEGIN
    IF task_type IS NULL OR task_type ~ blank THEN RETURN 'task_type is empty'; END IF;
    IF octet_length(task_type) > 128 THEN
        RETURN format('task_type is %s bytes, over the limit of 128 bytes', octet_length(task_type));
    END IF;
    IF task_type ~ '[\u0001-\u001f\u007f-\u009f]' THEN
        RETURN 'task_type contains a control character';
    END IF;
    IF work_unit_key IS NULL OR work_unit_key ~ blank THEN RETURN 'work_unit_key is empty'; END IF;
    IF octet_length(work_unit_key) > 1024 THEN
        RETURN format('work_unit_key is %s bytes, over the limit of 1024 bytes', octet_length(work_unit_key));
    END IF;
    IF dedupe_key IS NOT NULL AND dedupe_key ~ blank THEN
        RETURN 'dedupe_key is empty (omit dedupe_key for none)';
    END IF;
    IF octet_length(dedupe_key) > 1024 THEN
        RETURN format('dedupe_key is %s bytes, over the limit of 1024 bytes (omit dedupe_key for none)',
                      octet_length(dedupe_key));
    END IF;
    IF payload IS NULL THEN RETURN 'payload is missing (use the JSON null for none)'; END IF;
    payload_bytes := octet_length(payload::text);
    IF payload_bytes > 1048576 THEN
        RETURN format('payload is %s bytes, over the limit of 1048576 bytes', payload_bytes);
    END IF;
    IF jsonb_path_exists(payload, 'strict $.**{64} ? (@.type() == "array" || @.type() == "object")') THEN
        RETURN 'payload nests deeper than 64 levels';
    END IF;
    -- Numbers a 64-bit float cannot hold, which plugins could not read.
    IF jsonb_path_exists(payload, 'strict $.** ? (@.type() == "number" && (@ > 1.7976931348623157e308 || @ < -1.7976931348623157e308))') THEN
        RETURN 'payload is not valid JSON: number out of range';
    END IF;
    IF tokens IS NULL OR tokens < 0 OR tokens > 4294967295 THEN
        RETURN format('tokens is %s, not a whole number from 0 to 4294967295', coalesce(tokens::text, 'NULL'));
    END IF;
    IF run_after IS NOT NULL AND delay IS NOT NULL THEN
        RETURN 'give run_after or delay, not both';
    END IF;
    IF run_after < '1970-01-01T00:00:00Z' OR run_after >= '10000-01-01T00:00:00Z' THEN
        RETURN 'run_after is outside the years 1970 to 9999';
    END IF;
    IF delay < interval '0' THEN
        RETURN format('delay is %s, which is negative; use a positive delay or none', delay);
    END IF;
    IF delay > interval '3660 days' THEN
        RETURN format('delay is %s, over the limit of ten years; use run_after for a fixed time', delay);
    END IF;
    RETURN NULL;
END
$$;

-- When an item with this run_after or delay may first run, in ms (NULL: now).
CREATE FUNCTION sluice_run_after_ms(run_after timestamptz, delay interval) RETURNS bigint
    LANGUAGE sql VOLATILE AS $$
    SELECT CASE
        WHEN run_after IS NOT NULL THEN (extract(epoch FROM run_after) * 1000)::bigint
        WHEN delay IS NOT NULL THEN sluice_now_ms() + (extract(epoch FROM delay) * 1000)::bigint
    END
$$;

-- Enqueues one item inside the caller's transaction and returns its id (or,
-- when a pending item of the task type has the dedupe key, that item's id).
-- Hosts are woken when the transaction commits; a rollback leaves no trace.
CREATE FUNCTION sluice_enqueue(task_type text, work_unit_key text, payload jsonb,
                               tokens bigint DEFAULT 0, dedupe_key text DEFAULT NULL,
                               run_after timestamptz DEFAULT NULL, delay interval DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    problem text := sluice_item_problem(task_type, work_unit_key, payload, tokens, dedupe_key,
                                        run_after, delay);
    new_id bigint;
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('sluice_enqueue: %s; nothing was enqueued', problem);
    END IF;
    LOOP
        INSERT INTO sluice_items AS i (task_type, work_unit_key, payload, tokens, dedupe_key, run_after_ms)
        VALUES (task_type, work_unit_key, payload, tokens, dedupe_key,
                sluice_run_after_ms(run_after, delay))
        ON CONFLICT (task_type, dedupe_key) WHERE state = 'pending' AND dedupe_key IS NOT NULL
        DO NOTHING
        RETURNING i.id INTO new_id;
        IF new_id IS NOT NULL THEN RETURN new_id; END IF;
        SELECT i.id INTO new_id FROM sluice_items i
         WHERE i.task_type = sluice_enqueue.task_type AND i.dedupe_key = sluice_enqueue.dedupe_key
           AND i.state = 'pending';
        -- The pending original may have finished meanwhile: then insert again.
        IF new_id IS NOT NULL THEN RETURN new_id; END IF;
    END LOOP;
END
$$;

-- Enqueues a JSON array of items, each {"task_type", "work_unit_key",
-- "payload"[, "tokens", "dedupe_key", "run_after" | "delay"]} as on every
-- other door, in one statement, after checking all of them (one bad item and
-- nothing is enqueued; the error names its position, counting from 1).
-- Returns one row per item, in order: its id, and whether it was a duplicate
-- of a pending item with the same dedupe key.
CREATE FUNCTION sluice_enqueue_many(items jsonb)
    RETURNS TABLE (id bigint, duplicate boolean)
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    item jsonb;
    n bigint := 0;
    problem text;
    field text;
BEGIN
    IF jsonb_typeof(items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'sluice_enqueue_many: items must be a JSON array of items; nothing was enqueued';
    END IF;
    FOR item IN SELECT value FROM jsonb_array_elements(items) LOOP
        n := n + 1;
        problem := NULL;
        IF jsonb_typeof(item) <> 'object' THEN
            problem := 'not an item: a JSON object with task_type, work_unit_key and payload';
        ELSE
            SELECT k INTO field FROM jsonb_object_keys(item) k
             WHERE k NOT IN ('task_type', 'work_unit_key', 'payload', 'tokens', 'dedupe_key',
                             'run_after', 'delay')
             LIMIT 1;
            IF field IS NOT NULL THEN
                problem := format('unknown field `%s`', field);
            END IF;
            FOREACH field IN ARRAY ARRAY['task_type', 'work_unit_key', 'dedupe_key', 'run_after', 'delay'] LOOP
                IF problem IS NULL AND jsonb_typeof(item -> field) NOT IN ('string', 'null') THEN
                    problem := format('%s must be a string', field);
                END IF;
            END LOOP;
            IF problem IS NULL AND jsonb_typeof(item -> 'tokens') <> 'null'
               AND (jsonb_typeof(item -> 'tokens') <> 'number' OR (item ->> 'tokens') !~ '^[0-9]{1,10}$') THEN
                problem := 'tokens must be a whole number from 0 to 4294967295';
            END IF;
            IF problem IS NULL AND jsonb_typeof(item -> 'delay') = 'string'
               AND (item ->> 'delay') !~ '^\s*\d+\s*(ms|s|m|h|d)(\s*\d+\s*(ms|s|m|h|d))*\s*$' THEN
                problem := format('delay `%s` is not a duration such as 90s, 15m, 1h 30m or 500ms',
                                  item ->> 'delay');
            END IF;
            IF problem IS NULL AND jsonb_typeof(item -> 'run_after') = 'string'
               AND (item ->> 'run_after') !~ '^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$' THEN
                problem := format('run_after `%s` is not an RFC 3339 time such as 2026-12-01T09:30:00Z',
                                  item ->> 'run_after');
            END IF;
            IF problem IS NULL THEN
                problem := sluice_item_problem(item ->> 'task_type', item ->> 'work_unit_key',
                                               item -> 'payload',
                                               coalesce((item ->> 'tokens')::bigint, 0),
                                               item ->> 'dedupe_key',
                                               (item ->> 'run_after')::timestamptz,
                                               (item ->> 'delay')::interval);
            END IF;
        END IF;
        IF problem IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('sluice_enqueue_many: item %s: %s; nothing was enqueued', n, problem);
        END IF;
    END LOOP;
    RETURN QUERY
    WITH input AS (
        SELECT e.ord, e.value ->> 'task_type' AS task_type, e.value ->> 'dedupe_key' AS dedupe_key, e.value
          FROM jsonb_array_elements(items) WITH ORDINALITY AS e(value, ord)
    ), inserted AS (
        INSERT INTO sluice_items AS i (task_type, work_unit_key, payload, tokens, dedupe_key, run_after_ms)
        SELECT input.task_type, value ->> 'work_unit_key', value -> 'payload',
               coalesce((value ->> 'tokens')::bigint, 0), input.dedupe_key,
               sluice_run_after_ms((value ->> 'run_after')::timestamptz, (value ->> 'delay')::interval)
          FROM input
         ORDER BY input.ord
        ON CONFLICT (task_type, dedupe_key) WHERE state = 'pending' AND dedupe_key IS NOT NULL
        DO NOTHING
        RETURNING i.id, i.task_type, i.dedupe_key
    ), plain AS (
        -- Items without a dedupe key were all inserted, numbered in input order.
        SELECT p.ord, q.id
          FROM (SELECT input.ord, row_number() OVER (ORDER BY input.ord) AS r
                  FROM input WHERE input.dedupe_key IS NULL) p
          JOIN (SELECT inserted.id, row_number() OVER (ORDER BY inserted.id) AS r
                  FROM inserted WHERE inserted.dedupe_key IS NULL) q ON q.r = p.r
    ), keyed AS (
        -- The first item with a dedupe key was inserted unless a pending item
        -- had the key already; later items with the same key are duplicates.
        SELECT input.ord,
               coalesce(new.id, old.id) AS id,
               new.id IS NULL
                   OR input.ord > min(input.ord) OVER (PARTITION BY input.task_type, input.dedupe_key)
                   AS duplicate
          FROM input
          LEFT JOIN inserted new
                 ON new.task_type = input.task_type AND new.dedupe_key = input.dedupe_key
          LEFT JOIN sluice_items old
                 ON old.task_type = input.task_type AND old.dedupe_key = input.dedupe_key
                AND old.state = 'pending'
         WHERE input.dedupe_key IS NOT NULL
    )
    SELECT all_items.id, all_items.duplicate
      FROM (SELECT plain.ord, plain.id, false AS duplicate FROM plain
            UNION ALL
            SELECT keyed.ord, keyed.id, keyed.duplicate FROM keyed) all_items
     ORDER BY all_items.ord;
END
$$;

-- 3. The task types each host serves (a JSON array; NULL for hosts from
--    before this column, taken to serve everything), so that status can say
--    which waiting task types no running host serves.
ALTER TABLE sluice_workers ADD COLUMN task_types text;
