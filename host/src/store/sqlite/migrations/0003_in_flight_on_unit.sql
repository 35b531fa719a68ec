-- A claim's items in flight are recorded on its unit instead of on each item:
-- a batch is always the unit's first pending items in id order, so "in flight
-- under the current claim" is "pending, with id <= in_flight_through". Marking
-- each fetched item rewrote one table page per item (a unit's items are spread
-- across the table among other units' items); now fetching a batch writes one
-- unit row. The claim that is current when this runs keeps its batch.
ALTER TABLE sluice_units ADD COLUMN in_flight_through INTEGER;
UPDATE sluice_units
   SET in_flight_through = (SELECT max(i.id) FROM sluice_items i
                             WHERE i.task_type = sluice_units.task_type
                               AND i.work_unit_key = sluice_units.work_unit_key
                               AND i.state = 'pending' AND i.claim_seq = sluice_units.claim_seq)
 WHERE claimed_by IS NOT NULL;
ALTER TABLE sluice_items DROP COLUMN claim_seq;
