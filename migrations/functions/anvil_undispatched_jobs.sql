-- anvil_undispatched_jobs: the SQS dispatcher; the pending jobs not yet handed to SQS.
--
-- Current definition: migrations/0002_exports_imports_jobs.sql (created there). No earlier definition.
-- 0002_exports_imports_jobs.sql spells it `CREATE FUNCTION`; here it is `CREATE OR REPLACE FUNCTION`, as a
-- migration that changes it restates it. Privileges: REVOKE/GRANT in migrations/0002_exports_imports_jobs.sql
-- (CREATE OR REPLACE keeps them).
--
-- To change this function: add a new migration that restates this file's new text and update this file in the
-- same commit; never edit an applied migration (migrations/functions/README.md).
-- functions/shared/api/tests/sql_functions.rs checks that this file is what a migrated database runs.

CREATE OR REPLACE FUNCTION anvil_undispatched_jobs(p_limit integer)
RETURNS TABLE (id uuid, tenant_id text, kind text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT j.id, j.tenant_id, j.kind FROM jobs j
    WHERE j.dispatched_at IS NULL AND j.state = 'pending'
    ORDER BY j.created_at LIMIT p_limit
$$;
