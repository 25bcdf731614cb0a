-- Fewer writes per label on the hot path.
--
-- A claim and a submit wrote ~25 index entries and ~36 WAL records per label against the ~4 index entries of
-- the bare claim + submit SQL (BENCHMARKS.md, "Where the time goes"). This migration removes the writes that
-- carried nothing the rows themselves do not already hold:
--
-- * Lineage of assignments and labels. Each claim and each submit inserted a `lineage` row (heap + two
--   indexes, a jsonb built per row) repeating the actor, the inputs and their versions that the assignment
--   row (labeler, queue_id, sample_id, schema_version, leased_at) and the label row (labeler, assignment_id,
--   sample_id, schema_version, created_at) carry anyway. Provenance is now read through the view
--   `lineage_records`: those two derived from their rows, plus the `lineage` table for what has no row of its
--   own to derive from (exports). The view is `security_invoker`, so row-level security of the underlying
--   tables applies to whoever reads it. The rows earlier versions wrote for assignments and labels are
--   deleted: the view yields the same records from the rows themselves.
-- * Two indexes nothing read: `assignments_queue_leased_idx` (the per-queue reclaim and the stats walk the
--   live leases of a queue through `assignments_one_live_lease_idx`, which holds exactly the leased rows,
--   keyed by queue first) and `labels_queue_created_idx` (exports page through `labels_queue_id_idx` in id
--   order).
-- * Three foreign keys implied by the others: an assignment's queue is its sample's queue (the claim copies it
--   from the sample row it locks), and a label's queue and sample are its assignment's (the submit copies them
--   from the assignment row it updates). `assignments.sample_id -> samples` and `labels.assignment_id ->
--   assignments` stay, so every assignment has its sample and every label its assignment; no table of these
--   is ever deleted from. Each of these checks was a row lock (FOR KEY SHARE) per insert.

CREATE VIEW lineage_records WITH (security_invoker = true) AS
SELECT a.tenant_id, a.id, 'assignment'::text AS entity_kind, a.id AS entity_id, a.labeler AS actor,
       jsonb_build_object('queue_id', a.queue_id, 'sample_id', a.sample_id, 'schema_version', a.schema_version)
           AS inputs,
       a.leased_at AS created_at
FROM assignments a
UNION ALL
SELECT l.tenant_id, l.id, 'label'::text, l.id, l.labeler,
       jsonb_build_object('assignment_id', l.assignment_id, 'sample_id', l.sample_id,
                          'schema_version', l.schema_version),
       l.created_at
FROM labels l
UNION ALL
SELECT x.tenant_id, x.id, x.entity_kind, x.entity_id, x.actor, x.inputs, x.created_at
FROM lineage x
WHERE x.entity_kind NOT IN ('assignment', 'label');

GRANT SELECT ON lineage_records TO anvil_app;

DELETE FROM lineage WHERE entity_kind IN ('assignment', 'label');

DROP INDEX assignments_queue_leased_idx;
DROP INDEX labels_queue_created_idx;

ALTER TABLE assignments DROP CONSTRAINT assignments_queue_id_fkey;
ALTER TABLE labels DROP CONSTRAINT labels_queue_id_fkey, DROP CONSTRAINT labels_sample_id_fkey;

-- The submit without its lineage insert. (The claim's `anvil_claim_take` loses its own in migration 0005,
-- which redefines the claim.)

-- The submit's write, after validation: compare-and-set on the assignment (only a lease that is still
-- `leased`, even past its expiry as long as it has not been reclaimed, becomes `submitted`); the label, the
-- sample's counter in the same statement, so a label exists if and only if its assignment is
-- submitted. No row: the compare-and-set lost (reclaimed, released, or a concurrent submit).
CREATE OR REPLACE FUNCTION anvil_submit(p_tenant text, p_assignment uuid, p_labeler text, p_label uuid, p_payload jsonb)
RETURNS TABLE (id uuid, created_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant, true);
    RETURN QUERY
    WITH up AS (
        UPDATE assignments a SET state = 'submitted', version = a.version + 1, finished_at = now()
        WHERE a.id = p_assignment AND a.tenant_id = p_tenant AND a.labeler = p_labeler AND a.state = 'leased'
        RETURNING a.id, a.queue_id, a.sample_id, a.labeler, a.schema_version
    ), lab AS (
        INSERT INTO labels (tenant_id, id, queue_id, sample_id, assignment_id, labeler, schema_version, payload)
        SELECT p_tenant, p_label, up.queue_id, up.sample_id, up.id, up.labeler, up.schema_version, p_payload
        FROM up
        RETURNING labels.id, labels.created_at
    ), cnt AS (
        UPDATE samples s SET submitted_count = s.submitted_count + 1 FROM up WHERE s.id = up.sample_id
    
    )
    SELECT lab.id, lab.created_at FROM lab;
END
$$;
