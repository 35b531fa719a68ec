-- A unit whose last attempt timed out or trapped is a suspect: the claim
-- lets each host hold only a share of its slots with suspects, so poison
-- being retried never crowds out healthy work. Set by the worker after such
-- an attempt, cleared once the unit completes an item again.
ALTER TABLE sluice_units ADD COLUMN suspect INTEGER NOT NULL DEFAULT 0;

-- Task types an operator paused (`sluice pause`): no host claims their units
-- until `sluice resume`. Units already running finish their current work.
CREATE TABLE sluice_paused (
    task_type    TEXT    PRIMARY KEY,
    paused_at_ms INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
);

-- Shared LLM budgets: one row per rate (`llm/<provider>/requests`, `.../tokens`),
-- the time (µs since the epoch) until which the budget spent so far is paid
-- off. Every host on this database paces its requests by the same rows.
CREATE TABLE sluice_budget_paces (
    key           TEXT    PRIMARY KEY,
    paid_until_us INTEGER NOT NULL
);
