-- anvil_lower_claim_start_on_insert: trigger function of `samples_added` (AFTER INSERT ON samples, FOR EACH
-- STATEMENT, migrations/0005_claim_start.sql); each queue's claim start goes back to the first of its new
-- samples if it was further on.
--
-- Current definition: migrations/0005_claim_start.sql (created there). No earlier definition.
-- 0005_claim_start.sql spells it `CREATE FUNCTION`; here it is `CREATE OR REPLACE FUNCTION`, as a migration
-- that changes it restates it. Privileges: the defaults (a trigger function cannot be called on its own).
--
-- To change this function: add a new migration that restates this file's new text and update this file in the
-- same commit; never edit an applied migration (migrations/functions/README.md).
-- functions/shared/api/tests/sql_functions.rs checks that this file is what a migrated database runs.

CREATE OR REPLACE FUNCTION anvil_lower_claim_start_on_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE queues q SET claim_rank = m.rank, claim_order_key = m.order_key, claim_sample = m.id
    FROM (SELECT DISTINCT ON (n.queue_id) n.queue_id, n.rank, n.order_key, n.id
          FROM new_samples n WHERE n.open_slots > 0
          ORDER BY n.queue_id, n.rank, n.order_key, n.id) m
    WHERE q.id = m.queue_id AND q.claim_rank IS NOT NULL
      AND (q.claim_rank, q.claim_order_key, q.claim_sample) > (m.rank, m.order_key, m.id);
    RETURN NULL;
END
$$;
