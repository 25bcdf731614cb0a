-- anvil_lookup_token: a personal access token's row by the sha256 of its secret, before the tenant is known
-- (SECURITY DEFINER: the only way the application role reads api_tokens without a tenant set).
--
-- Current definition: migrations/0001_core.sql (created there). No earlier definition. 0001_core.sql spells it
-- `CREATE FUNCTION`; here it is `CREATE OR REPLACE FUNCTION`, as a migration that changes it restates it.
-- Privileges: REVOKE/GRANT in migrations/0001_core.sql (CREATE OR REPLACE keeps them).
--
-- To change this function: add a new migration that restates this file's new text and update this file in the
-- same commit; never edit an applied migration (migrations/functions/README.md).
-- functions/shared/api/tests/sql_functions.rs checks that this file is what a migrated database runs.

CREATE OR REPLACE FUNCTION anvil_lookup_token(p_hash text)
RETURNS TABLE (tenant_id text, id uuid, role text, subject text, expires_at timestamptz, revoked_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT t.tenant_id, t.id, t.role, t.subject, t.expires_at, t.revoked_at
    FROM api_tokens t WHERE t.token_hash = p_hash
$$;
