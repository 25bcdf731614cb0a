-- anvil_mark_dispatched: the SQS dispatcher; marks jobs as handed to SQS.
--
-- Current definition: migrations/0002_exports_imports_jobs.sql (created there). No earlier definition.
-- 0002_exports_imports_jobs.sql spells it `CREATE FUNCTION`; here it is `CREATE OR REPLACE FUNCTION`, as a
-- migration that changes it restates it. Privileges: REVOKE/GRANT in migrations/0002_exports_imports_jobs.sql
-- (CREATE OR REPLACE keeps them).
--
-- To change this function: add a new migration that restates this file's new text and update this file in the
-- same commit; never edit an applied migration (migrations/functions/README.md).
-- functions/shared/api/tests/sql_functions.rs checks that this file is what a migrated database runs.

CREATE OR REPLACE FUNCTION anvil_mark_dispatched(p_ids uuid[])
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public AS $$
    WITH d AS (UPDATE jobs SET dispatched_at = now() WHERE id = ANY(p_ids) AND dispatched_at IS NULL RETURNING 1)
    SELECT count(*)::integer FROM d
$$;
