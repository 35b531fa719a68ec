-- A group commit keeps its units' pending counts itself (issue 18).
--
-- The statement trigger on sluice_items (0006) upserts every touched unit
-- after each UPDATE, whoever wrote it. For the host's commit statement that
-- meant writing each unit row twice: once in commit.sql (release, fence) and
-- once more in the trigger (counts, oldest pending), with a PL/pgSQL call and
-- three queries on top. commit.sql now sets the pending counts and the oldest
-- pending time in the same UPDATE that releases the unit, and marks the
-- statement so that the trigger stands aside for it. Every other writer
-- (producers' SQL, failures, dead letters, retries, cancels) is counted by
-- the trigger as before.
--
-- The mark is transaction-local and names the statement (its transaction and
-- its start time), so a later statement of the same transaction is counted by
-- the trigger again.
CREATE FUNCTION sluice_statement_mark() RETURNS text
    LANGUAGE sql STABLE AS $$ SELECT pg_current_xact_id()::text || '@' || statement_timestamp()::text $$;

DROP TRIGGER sluice_items_updated ON sluice_items;
CREATE TRIGGER sluice_items_updated
    AFTER UPDATE ON sluice_items
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT
    WHEN (current_setting('sluice.counts_kept_by', true) IS DISTINCT FROM sluice_statement_mark())
    EXECUTE FUNCTION sluice_items_updated();
