-- Anvil's Postgres schema, version 1: the labeling core.
--
-- Conventions
-- * Every tenant-owned table carries `tenant_id text NOT NULL`. The tenant comes only from a verified token; the
--   application filters every query by it AND row-level security policies (at the end of this file) enforce the
--   same filter as a second wall. The application runs its queries as the non-superuser role `anvil_app`
--   (superusers and BYPASSRLS roles skip policies), setting `app.tenant_id` per transaction with
--   `set_config('app.tenant_id', $1, true)`. Migrations run as the owner of the database.
-- * Ids are UUIDv7 made by the application (time-ordered: good index locality, usable as a pagination cursor).
-- * Time is always database time (`now()`): leases expire by the database clock, never a client's.
-- * States are text with CHECK constraints (readable in psql, cheap to extend).
-- * Counters that the hot path needs live on the rows it already locks (`samples.open_slots`), so no claim or
--   submit ever runs count(*) over labels or assignments.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anvil_app') THEN
        CREATE ROLE anvil_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    -- another database of the same cluster created it concurrently (tests create many databases at once)
    NULL;
END
$$;

-- The migrating user must be able to `SET ROLE anvil_app` (a no-op requirement for superusers).
DO $$
BEGIN
    EXECUTE format('GRANT anvil_app TO %I', current_user);
EXCEPTION WHEN OTHERS THEN
    NULL;
END
$$;

CREATE TABLE tenants (
    id          text PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE queues (
    tenant_id       text NOT NULL REFERENCES tenants (id),
    id              uuid PRIMARY KEY,
    name            text NOT NULL,
    description     text NOT NULL DEFAULT '',
    overlap         integer NOT NULL CHECK (overlap BETWEEN 1 AND 50),
    lease_seconds   integer NOT NULL CHECK (lease_seconds BETWEEN 10 AND 86400),
    policy          text NOT NULL CHECK (policy IN ('priority', 'random')),
    state           text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused', 'archived')),
    schema_version  integer NOT NULL,
    sample_count    bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT queues_tenant_name_key UNIQUE (tenant_id, name)
);

-- Immutable: rows are only ever inserted. A queue's current version is queues.schema_version.
CREATE TABLE schema_versions (
    tenant_id   text NOT NULL,
    queue_id    uuid NOT NULL REFERENCES queues (id),
    version     integer NOT NULL,
    schema      jsonb NOT NULL,
    -- sha256 of the canonical JSON of `schema`, recorded in export manifests
    hash        text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (queue_id, version)
);

-- Insertion order of samples (the order_key of queues with policy `priority`).
CREATE SEQUENCE sample_order_seq;

CREATE TABLE samples (
    tenant_id       text NOT NULL,
    id              uuid PRIMARY KEY,
    queue_id        uuid NOT NULL REFERENCES queues (id),
    external_id     text NOT NULL,
    payload         jsonb NOT NULL,
    priority        integer NOT NULL DEFAULT 0,
    -- Position in the queue's hand-out order: (rank, order_key, id) ascending. rank = -priority so that one
    -- ascending index serves "highest priority first"; order_key is the insertion sequence (policy priority)
    -- or a fixed random number (policy random).
    rank            integer NOT NULL,
    order_key       bigint NOT NULL,
    -- overlap minus the live-or-submitted assignments of this sample. Decremented by a claim, incremented by a
    -- release or a reclaimed expiry, all while holding this row's lock: the invariant "never more than k
    -- live-or-submitted assignments" is this CHECK.
    open_slots      integer NOT NULL CHECK (open_slots >= 0),
    submitted_count integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT samples_queue_external_id_key UNIQUE (queue_id, external_id)
);

-- The claim index: only samples that still have an open slot, in hand-out order. A claim reads the first
-- entries of this partial index after the labeler's cursor, so its cost does not grow with the number of
-- samples in the queue nor with the share already labeled (fully labeled samples leave the index).
CREATE INDEX samples_claimable_idx ON samples (queue_id, rank, order_key, id) WHERE open_slots > 0;
CREATE INDEX samples_queue_idx ON samples (queue_id, id);

CREATE TABLE assignments (
    tenant_id       text NOT NULL,
    id              uuid PRIMARY KEY,
    queue_id        uuid NOT NULL REFERENCES queues (id),
    sample_id       uuid NOT NULL REFERENCES samples (id),
    labeler         text NOT NULL,
    state           text NOT NULL CHECK (state IN ('leased', 'submitted', 'released', 'expired')),
    -- compare-and-set token: every state change and heartbeat increments it
    version         integer NOT NULL DEFAULT 1,
    schema_version  integer NOT NULL,
    leased_at       timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    release_reason  text,
    -- "a labeler never gets the same sample twice", enforced by the database whatever the code does
    CONSTRAINT assignments_sample_labeler_key UNIQUE (sample_id, labeler)
);

-- "Asking again while holding a live lease returns that lease": at most one lease per labeler and queue.
CREATE UNIQUE INDEX assignments_one_live_lease_idx ON assignments (queue_id, labeler) WHERE state = 'leased';
-- The reaper finds expired leases without scanning finished assignments.
CREATE INDEX assignments_leased_expiry_idx ON assignments (expires_at) WHERE state = 'leased';
CREATE INDEX assignments_queue_leased_idx ON assignments (queue_id, expires_at) WHERE state = 'leased';
CREATE INDEX assignments_queue_labeler_idx ON assignments (queue_id, labeler, state);

-- Where each labeler's forward search starts in a queue with overlap > 1 (see the claim in
-- functions/shared/core/src/store/postgres.rs for why).
CREATE TABLE labeler_cursors (
    tenant_id   text NOT NULL,
    queue_id    uuid NOT NULL REFERENCES queues (id),
    labeler     text NOT NULL,
    rank        integer NOT NULL,
    order_key   bigint NOT NULL,
    sample_id   uuid NOT NULL,
    PRIMARY KEY (queue_id, labeler)
);

CREATE TABLE labels (
    tenant_id       text NOT NULL,
    id              uuid PRIMARY KEY,
    queue_id        uuid NOT NULL REFERENCES queues (id),
    sample_id       uuid NOT NULL REFERENCES samples (id),
    assignment_id   uuid NOT NULL REFERENCES assignments (id),
    labeler         text NOT NULL,
    schema_version  integer NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT labels_assignment_key UNIQUE (assignment_id)
);
CREATE INDEX labels_queue_id_idx ON labels (queue_id, id);
CREATE INDEX labels_sample_idx ON labels (sample_id);

CREATE TABLE reviews (
    tenant_id   text NOT NULL,
    id          uuid PRIMARY KEY,
    label_id    uuid NOT NULL REFERENCES labels (id),
    reviewer    text NOT NULL,
    verdict     text NOT NULL CHECK (verdict IN ('accept', 'reject')),
    comment     text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reviews_label_idx ON reviews (label_id, created_at);

-- Provenance of what the system made: who/what produced an entity from which inputs (with versions).
CREATE TABLE lineage (
    tenant_id   text NOT NULL,
    id          uuid PRIMARY KEY,
    entity_kind text NOT NULL,
    entity_id   uuid NOT NULL,
    actor       text NOT NULL,
    inputs      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lineage_entity_idx ON lineage (entity_id);

-- Append-only record of privileged actions (queue and schema changes, token issue and revocation, ...).
CREATE TABLE audit_log (
    tenant_id   text NOT NULL,
    id          uuid PRIMARY KEY,
    actor       text NOT NULL,
    action      text NOT NULL,
    target      text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Personal access tokens: only the sha256 of the secret is stored.
CREATE TABLE api_tokens (
    tenant_id   text NOT NULL REFERENCES tenants (id),
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('labeler', 'auditor', 'admin')),
    subject     text NOT NULL,
    token_hash  text NOT NULL UNIQUE,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);

-- Jobs and outbox: a job row is written in the same transaction as the state change it belongs to.
CREATE TABLE jobs (
    tenant_id       text NOT NULL,
    id              uuid PRIMARY KEY,
    kind            text NOT NULL,
    payload         jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'succeeded', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    max_attempts    integer NOT NULL DEFAULT 5,
    available_at    timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    last_error      text,
    -- set when the row has been handed to an external queue (SQS) by the dispatcher
    dispatched_at   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX jobs_available_idx ON jobs (available_at) WHERE state IN ('pending', 'running');

-- A PAT is looked up before the tenant is known; this function (owned by the migrating user) is the only
-- way the application role can read api_tokens without a tenant set, and it returns just the one row.
CREATE FUNCTION anvil_lookup_token(p_hash text)
RETURNS TABLE (tenant_id text, id uuid, role text, subject text, expires_at timestamptz, revoked_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT t.tenant_id, t.id, t.role, t.subject, t.expires_at, t.revoked_at
    FROM api_tokens t WHERE t.token_hash = p_hash
$$;
REVOKE ALL ON FUNCTION anvil_lookup_token(text) FROM PUBLIC;

-- Expired leases of every tenant go back to the pool: compare-and-set on state (the row lock taken by the
-- UPDATE makes a concurrent submit or heartbeat either win entirely or see the new state), using database time.
CREATE FUNCTION anvil_reclaim_expired(p_limit integer)
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
REVOKE ALL ON FUNCTION anvil_reclaim_expired(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION anvil_reclaim_expired(integer) TO anvil_app;
GRANT EXECUTE ON FUNCTION anvil_lookup_token(text) TO anvil_app;

-- Row-level security: every tenant-owned table only shows and accepts rows of `app.tenant_id` to the
-- application role. Policies are not FORCEd on the owner: the few cross-tenant system operations (token lookup,
-- lease reaping, job polling) are SECURITY DEFINER functions owned by the migrating user, each doing one narrow
-- thing. The application never connects as the owner for its own queries (it runs `SET ROLE anvil_app`).
-- current_setting(..., true) is NULL when unset, and NULL matches nothing: no tenant set, no rows.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['queues', 'schema_versions', 'samples', 'assignments', 'labeler_cursors', 'labels',
                             'reviews', 'lineage', 'audit_log', 'api_tokens', 'jobs', 'tenants']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        IF t = 'tenants' THEN
            EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (id = current_setting(''app.tenant_id'', true)) '
                           'WITH CHECK (id = current_setting(''app.tenant_id'', true))', t);
        ELSE
            EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting(''app.tenant_id'', true)) '
                           'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
        END IF;
    END LOOP;
END
$$;

GRANT USAGE ON SCHEMA public TO anvil_app;
GRANT SELECT, INSERT, UPDATE ON tenants, queues, schema_versions, samples, assignments, labeler_cursors, labels,
    reviews, lineage, api_tokens, jobs TO anvil_app;
GRANT DELETE ON jobs, labeler_cursors TO anvil_app;
GRANT USAGE, SELECT ON SEQUENCE sample_order_seq TO anvil_app;
-- the audit log is append-only for the application
GRANT SELECT, INSERT ON audit_log TO anvil_app;
