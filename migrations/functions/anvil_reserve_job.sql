-- anvil_reserve_job: the job poller; takes the next due job (or one whose worker died) and marks dead the jobs
-- whose last attempt's lock expired.
--
-- Current definition: migrations/0002_exports_imports_jobs.sql (created there). No earlier definition.
-- 0002_exports_imports_jobs.sql spells it `CREATE FUNCTION`; here it is `CREATE OR REPLACE FUNCTION`, as a
-- migration that changes it restates it. Privileges: REVOKE/GRANT in migrations/0002_exports_imports_jobs.sql
-- (CREATE OR REPLACE keeps them).
--
-- To change this function: add a new migration that restates this file's new text and update this file in the
-- same commit; never edit an applied migration (migrations/functions/README.md).
-- functions/shared/api/tests/sql_functions.rs checks that this file is what a migrated database runs.

CREATE OR REPLACE FUNCTION anvil_reserve_job(p_visibility_secs integer)
RETURNS TABLE (id uuid, tenant_id text, kind text, payload jsonb, attempts integer, max_attempts integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $$
BEGIN
    UPDATE jobs j SET state = 'dead', finished_at = now(),
           last_error = COALESCE(j.last_error, 'the worker stopped during the last attempt')
    WHERE j.state = 'running' AND j.locked_until < now() AND j.attempts >= j.max_attempts;
    RETURN QUERY
    WITH next AS (
        SELECT j.id FROM jobs j
        WHERE j.dispatched_at IS NULL
          AND ((j.state = 'pending' AND j.available_at <= now())
               OR (j.state = 'running' AND j.locked_until < now()))
        ORDER BY j.available_at
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    UPDATE jobs j SET state = 'running', attempts = j.attempts + 1,
           locked_until = now() + make_interval(secs => p_visibility_secs)
    FROM next WHERE j.id = next.id
    RETURNING j.id, j.tenant_id, j.kind, j.payload, j.attempts, j.max_attempts;
END
$$;
