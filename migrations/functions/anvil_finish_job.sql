-- anvil_finish_job: records a job's outcome: succeeded, pending again after a back-off, or dead.
--
-- Current definition: migrations/0002_exports_imports_jobs.sql (created there). No earlier definition.
-- 0002_exports_imports_jobs.sql spells it `CREATE FUNCTION`; here it is `CREATE OR REPLACE FUNCTION`, as a
-- migration that changes it restates it. Privileges: REVOKE/GRANT in migrations/0002_exports_imports_jobs.sql
-- (CREATE OR REPLACE keeps them).
--
-- To change this function: add a new migration that restates this file's new text and update this file in the
-- same commit; never edit an applied migration (migrations/functions/README.md).
-- functions/shared/api/tests/sql_functions.rs checks that this file is what a migrated database runs.

CREATE OR REPLACE FUNCTION anvil_finish_job(p_id uuid, p_ok boolean, p_error text, p_backoff_secs integer, p_give_up boolean)
RETURNS text
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public AS $$
    UPDATE jobs SET
        state = CASE WHEN p_ok THEN 'succeeded' WHEN p_give_up OR attempts >= max_attempts THEN 'dead'
                     ELSE 'pending' END,
        finished_at = CASE WHEN p_ok OR p_give_up OR attempts >= max_attempts THEN now() ELSE NULL END,
        available_at = CASE WHEN p_ok THEN available_at ELSE now() + make_interval(secs => p_backoff_secs) END,
        locked_until = NULL,
        last_error = CASE WHEN p_ok THEN last_error ELSE left(p_error, 2000) END
    WHERE id = p_id
    RETURNING state
$$;
