-- anvil_submit: the submit's write; compare-and-set of the assignment to `submitted` and the label, in one
-- statement.
--
-- Current definition: migrations/0008_fewer_index_entries_per_label.sql (replaced there). Earlier:
-- 0003_claim_submit_functions.sql (created), 0004_fewer_writes_per_label.sql (replaced),
-- 0006_hot_path_plans_use_indexes.sql (ALTER FUNCTION ... SET), 0007_claim_in_three_statements.sql (replaced).
-- Privileges: REVOKE/GRANT in migrations/0003_claim_submit_functions.sql (CREATE OR REPLACE keeps them).
--
-- To change this function: add a new migration that restates this file's new text and update this file in the
-- same commit; never edit an applied migration (migrations/functions/README.md).
-- functions/shared/api/tests/sql_functions.rs checks that this file is what a migrated database runs.

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
