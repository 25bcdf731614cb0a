-- anvil_submit_context: what a submit reads before it validates; the assignment, its sample, its schema
-- version's schema and the label already submitted for it, if any.
--
-- Current definition: migrations/0007_claim_in_three_statements.sql (replaced there). Earlier:
-- 0003_claim_submit_functions.sql (created), 0006_hot_path_plans_use_indexes.sql (ALTER FUNCTION ... SET).
-- Privileges: REVOKE/GRANT in migrations/0003_claim_submit_functions.sql (CREATE OR REPLACE keeps them).
--
-- To change this function: add a new migration that restates this file's new text and update this file in the
-- same commit; never edit an applied migration (migrations/functions/README.md).
-- functions/shared/api/tests/sql_functions.rs checks that this file is what a migrated database runs.

CREATE OR REPLACE FUNCTION anvil_submit_context(p_tenant text, p_assignment uuid, p_labeler text)
RETURNS TABLE (
    id uuid, queue_id uuid, sample_id uuid, labeler text, state text, version integer, schema_version integer,
    leased_at timestamptz, expires_at timestamptz, release_reason text,
    external_id text, payload jsonb, priority integer, schema jsonb, server_time timestamptz,
    label_id uuid, label_payload jsonb, label_created_at timestamptz
)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    ok text;
BEGIN
    ok := set_config('app.tenant_id', p_tenant, true);
    RETURN QUERY
    SELECT a.id, a.queue_id, a.sample_id, a.labeler, a.state, a.version, a.schema_version, a.leased_at,
           a.expires_at, a.release_reason, s.external_id, s.payload, s.priority, sv.schema, now(),
           l.id, l.payload, l.created_at
    FROM assignments a
    JOIN samples s ON s.id = a.sample_id
    JOIN schema_versions sv ON sv.queue_id = a.queue_id AND sv.version = a.schema_version
    LEFT JOIN labels l ON l.assignment_id = a.id
    WHERE a.id = p_assignment AND a.tenant_id = p_tenant AND a.labeler = p_labeler;
END
$$;
