-- The hot path's statements never plan a sequential scan.
--
-- Statements inside these functions are prepared once per connection and, after a few executions, run a
-- cached generic plan. On a new deployment (or any table that autovacuum has not analyzed yet) that plan is
-- made while `assignments` is empty or tiny, where a sequential scan is the cheapest plan, and it stays
-- while the table grows: every claim and every submit then read the whole `assignments` table (measured on a
-- new database: 15,682 sequential scans reading 30.7 million rows in 7 seconds of one labeler, 1.63 ms of
-- Postgres CPU per label; with this migration 0 sequential scans and 0.50 ms). Autovacuum's first ANALYZE
-- replans it, but only up to a minute later, and every new database starts there again.
--
-- Every statement of these functions has an index made for it (primary keys, assignments_one_live_lease_idx,
-- assignments_sample_labeler_key, samples_claimable_idx, labels_assignment_key,
-- assignments_leased_expiry_idx), so turning sequential scans off (as sorts and bitmap scans already are for
-- the claim) leaves the planner exactly those index paths, whatever the statistics say.

ALTER FUNCTION anvil_claim(text, uuid, text, uuid) SET enable_seqscan = off;
ALTER FUNCTION anvil_claim_take(text, uuid, text, uuid, integer, integer, boolean, integer, bigint, uuid)
    SET enable_seqscan = off;
ALTER FUNCTION anvil_submit_context(text, uuid, text) SET enable_seqscan = off;
ALTER FUNCTION anvil_submit(text, uuid, text, uuid, jsonb) SET enable_seqscan = off;
ALTER FUNCTION anvil_reclaim_expired(integer) SET enable_seqscan = off;
