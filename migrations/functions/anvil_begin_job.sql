-- anvil_begin_job: the SQS worker; reads one job by id and counts the attempt.
--
-- Current definition: migrations/0002_exports_imports_jobs.sql (created there). No earlier definition.
-- 0002_exports_imports_jobs.sql spells it `CREATE FUNCTION`; here it is `CREATE OR REPLACE FUNCTION`, as a
-- migration that changes it restates it. Privileges: REVOKE/GRANT in migrations/0002_exports_imports_jobs.sql
-- (CREATE OR REPLACE keeps them).
--
-- To change this function: add a new migration that restates this file's new text and update this file in the
-- same commit; never edit an applied migration (migrations/functions/README.md).
-- functions/shared/api/tests/sql_functions.rs checks that this file is what a migrated database runs.

CREATE OR REPLACE FUNCTION anvil_begin_job(p_id uuid)
RETURNS TABLE (id uuid, tenant_id text, kind text, payload jsonb, attempts integer, max_attempts integer, state text)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public AS $$
    UPDATE jobs j SET attempts = j.attempts + 1,
           state = CASE WHEN j.state IN ('succeeded', 'dead') THEN j.state ELSE 'running' END
    WHERE j.id = p_id
    RETURNING j.id, j.tenant_id, j.kind, j.payload, j.attempts, j.max_attempts, j.state
$$;
