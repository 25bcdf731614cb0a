-- anvil_reclaim_expired: the lease reaper; expired leases of every tenant go back to the pool (compare-and-set
-- on state, database time), at most p_limit per call.
--
-- Current definition: migrations/0001_core.sql (created there). No earlier definition. 0001_core.sql spells it
-- `CREATE FUNCTION`; here it is `CREATE OR REPLACE FUNCTION`, as a migration that changes it restates it. Then
-- altered by 0006_hot_path_plans_use_indexes.sql (ALTER FUNCTION ... SET); that statement follows the
-- definition, verbatim. Privileges: REVOKE/GRANT in migrations/0001_core.sql (CREATE OR REPLACE keeps them).
--
-- To change this function: add a new migration that restates this file's new text and update this file in the
-- same commit; never edit an applied migration (migrations/functions/README.md).
-- functions/shared/api/tests/sql_functions.rs checks that this file is what a migrated database runs.

CREATE OR REPLACE FUNCTION anvil_reclaim_expired(p_limit integer)
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public AS $$
    WITH due AS (
        SELECT id FROM assignments
        WHERE state = 'leased' AND expires_at < now()
        ORDER BY expires_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), expired AS (
        UPDATE assignments a
        SET state = 'expired', version = a.version + 1, finished_at = now()
        FROM due
        WHERE a.id = due.id AND a.state = 'leased' AND a.expires_at < now()
        RETURNING a.sample_id
    ), freed AS (
        UPDATE samples s SET open_slots = s.open_slots + f.n
        FROM (SELECT sample_id, count(*)::integer AS n FROM expired GROUP BY sample_id) f
        WHERE s.id = f.sample_id
        RETURNING 1
    )
    SELECT count(*)::integer FROM expired
$$;

ALTER FUNCTION anvil_reclaim_expired(integer) SET enable_seqscan = off;
