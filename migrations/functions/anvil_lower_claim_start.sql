-- anvil_lower_claim_start: trigger function of `samples_slot_freed` (AFTER UPDATE OF open_slots, rank,
-- order_key ON samples, FOR EACH ROW, migrations/0005_claim_start.sql); a sample got an open slot or moved, so
-- its queue's claim start goes back to it if it was further on.
--
-- Current definition: migrations/0005_claim_start.sql (created there). No earlier definition.
-- 0005_claim_start.sql spells it `CREATE FUNCTION`; here it is `CREATE OR REPLACE FUNCTION`, as a migration
-- that changes it restates it. Privileges: the defaults (a trigger function cannot be called on its own).
--
-- To change this function: add a new migration that restates this file's new text and update this file in the
-- same commit; never edit an applied migration (migrations/functions/README.md).
-- functions/shared/api/tests/sql_functions.rs checks that this file is what a migrated database runs.

CREATE OR REPLACE FUNCTION anvil_lower_claim_start() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE queues q SET claim_rank = NEW.rank, claim_order_key = NEW.order_key, claim_sample = NEW.id
    WHERE q.id = NEW.queue_id AND q.claim_rank IS NOT NULL
      AND (q.claim_rank, q.claim_order_key, q.claim_sample) > (NEW.rank, NEW.order_key, NEW.id);
    RETURN NULL;
END
$$;
