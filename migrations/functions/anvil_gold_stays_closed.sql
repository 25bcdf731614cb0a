-- anvil_gold_stays_closed: trigger function of `samples_gold_stays_closed` (BEFORE UPDATE OF open_slots on
-- samples, for gold samples only). A gold sample is handed out by the gold claim, once per labeler, never by
-- the ordinary claim: it keeps no open slot. Releasing or reclaiming a gold lease gives the slot back as for
-- any sample (open_slots + 1); this keeps it at 0, so the claimable index never holds a gold sample.
--
-- Current definition: migrations/0009_gold.sql (created).

CREATE OR REPLACE FUNCTION anvil_gold_stays_closed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.open_slots := 0;
    RETURN NEW;
END
$$;
