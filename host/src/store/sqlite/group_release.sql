-- Releases the units whose row ids are in ?1 (a JSON array) if they have
-- nothing pending (their counts, kept by the triggers, already reflect this
-- transaction's writes). Returns the released units' row ids.
UPDATE sluice_units
   SET claimed_by = NULL,
       available_at_ms = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
 WHERE id IN (SELECT value FROM json_each(?1)) AND pending_count = 0
RETURNING id
