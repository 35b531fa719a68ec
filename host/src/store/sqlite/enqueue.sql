-- One item, skipped when a pending item of its task type has its dedupe key.
-- It may first run at ?6 (ms) or ?7 ms from now, or at once (both NULL).
INSERT INTO sluice_items (task_type, work_unit_key, payload, tokens, dedupe_key, run_after_ms)
VALUES (?1, ?2, ?3, ?4, ?5,
        coalesce(?6, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) + ?7))
ON CONFLICT (task_type, dedupe_key) WHERE state = 'pending' AND dedupe_key IS NOT NULL DO NOTHING
RETURNING id
