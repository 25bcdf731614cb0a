-- Fewer index entries and one row update less per label.
--
-- Per label the claim inserted an assignment (five index entries) and the submit updated it (a non-HOT update:
-- `state` is in the predicates of the partial indexes, so three more entries) and updated the sample's
-- `submitted_count`, against the floor's one sample update and one label (BENCHMARKS.md, "What limits each
-- target"). Two of those indexes and the counter served only the queue statistics and the lease reaper, both
-- off the hot path, which can read what they need from rows and indexes the hot path keeps anyway:
--
-- * `assignments_queue_labeler_idx (queue_id, labeler, state)`: only the per-labeler statistics read it. They
--   now count a labeler's submitted assignments as its labels (a label exists if and only if its assignment
--   is submitted: the submit writes both in one statement) through `labels_queue_id_idx`, its live lease
--   through `assignments_one_live_lease_idx`, and its released and expired assignments through the new
--   partial index below, which receives an entry only when a lease is released or reclaimed (rare), never on
--   the claim or the submit.
-- * `assignments_leased_expiry_idx (expires_at) WHERE state = 'leased'`: only the reaper read it. It holds the
--   same rows as `assignments_one_live_lease_idx` (the live leases, one per labeler and queue), which the
--   reaper now walks instead: as many entries as there are labelers at work, not a growing table.
-- * `samples.submitted_count`: only the statistics' "completed samples" read it. They now count the samples
--   of the queue with at least `overlap` labels from the labels themselves, so the submit no longer rewrites
--   the sample row.
--
-- Per label: 12 index entries and three row writes (sample, assignment twice, label) instead of 15 and four.

CREATE INDEX assignments_queue_finished_idx ON assignments (queue_id, labeler)
    WHERE state IN ('released', 'expired');
DROP INDEX assignments_queue_labeler_idx;
DROP INDEX assignments_leased_expiry_idx;

-- The submit's write: the compare-and-set on the assignment and the label, in one statement, as before, without
-- the sample's counter.
CREATE OR REPLACE FUNCTION anvil_submit(p_tenant text, p_assignment uuid, p_labeler text, p_label uuid, p_payload jsonb)
RETURNS TABLE (id uuid, created_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    ok text;
BEGIN
    ok := set_config('app.tenant_id', p_tenant, true);
    RETURN QUERY
    WITH up AS (
        UPDATE assignments a SET state = 'submitted', version = a.version + 1, finished_at = now()
        WHERE a.id = p_assignment AND a.tenant_id = p_tenant AND a.labeler = p_labeler AND a.state = 'leased'
        RETURNING a.id, a.queue_id, a.sample_id, a.labeler, a.schema_version
    )
    INSERT INTO labels (tenant_id, id, queue_id, sample_id, assignment_id, labeler, schema_version, payload)
    SELECT p_tenant, p_label, up.queue_id, up.sample_id, up.id, up.labeler, up.schema_version, p_payload
    FROM up
    RETURNING labels.id, labels.created_at;
END
$$;

ALTER TABLE samples DROP COLUMN submitted_count;
