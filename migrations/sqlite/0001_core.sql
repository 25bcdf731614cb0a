-- Anvil's SQLite schema (the embedded default), version 1. It mirrors migrations/0001_core.sql table for table;
-- the differences:
-- * No row-level security: SQLite has none, so the application's own tenant filter (every query has
--   `tenant_id = ?`) is the only wall; the conformance suite runs the same isolation tests on both stores.
-- * Ids are TEXT (hyphenated UUIDs), JSON is TEXT, times are INTEGER unix milliseconds taken from the server
--   clock (the database and the server are one process here).
-- * No SKIP LOCKED: every write goes through one writer connection, so a claim's read-then-write cannot race.
-- * STRICT tables: a value of the wrong type is an error, not a silent conversion.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE queues (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    overlap         INTEGER NOT NULL CHECK (overlap BETWEEN 1 AND 50),
    lease_seconds   INTEGER NOT NULL CHECK (lease_seconds BETWEEN 10 AND 86400),
    policy          TEXT NOT NULL CHECK (policy IN ('priority', 'random')),
    state           TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused', 'archived')),
    schema_version  INTEGER NOT NULL,
    sample_count    INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    CONSTRAINT queues_tenant_name_key UNIQUE (tenant_id, name)
) STRICT;

CREATE TABLE schema_versions (
    tenant_id   TEXT NOT NULL,
    queue_id    TEXT NOT NULL REFERENCES queues (id),
    version     INTEGER NOT NULL,
    schema      TEXT NOT NULL,
    hash        TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (queue_id, version)
) STRICT;

CREATE TABLE samples (
    tenant_id       TEXT NOT NULL,
    id              TEXT PRIMARY KEY,
    queue_id        TEXT NOT NULL REFERENCES queues (id),
    external_id     TEXT NOT NULL,
    payload         TEXT NOT NULL,
    priority        INTEGER NOT NULL DEFAULT 0,
    rank            INTEGER NOT NULL,
    order_key       INTEGER NOT NULL,
    open_slots      INTEGER NOT NULL CHECK (open_slots >= 0),
    submitted_count INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    CONSTRAINT samples_queue_external_id_key UNIQUE (queue_id, external_id)
) STRICT;
-- The claim index (see the Postgres migration): only samples with an open slot, in hand-out order.
CREATE INDEX samples_claimable_idx ON samples (queue_id, rank, order_key, id) WHERE open_slots > 0;
CREATE INDEX samples_queue_idx ON samples (queue_id, id);

CREATE TABLE assignments (
    tenant_id       TEXT NOT NULL,
    id              TEXT PRIMARY KEY,
    queue_id        TEXT NOT NULL REFERENCES queues (id),
    sample_id       TEXT NOT NULL REFERENCES samples (id),
    labeler         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('leased', 'submitted', 'released', 'expired')),
    version         INTEGER NOT NULL DEFAULT 1,
    schema_version  INTEGER NOT NULL,
    leased_at       INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    release_reason  TEXT,
    CONSTRAINT assignments_sample_labeler_key UNIQUE (sample_id, labeler)
) STRICT;
CREATE UNIQUE INDEX assignments_one_live_lease_idx ON assignments (queue_id, labeler) WHERE state = 'leased';
CREATE INDEX assignments_leased_expiry_idx ON assignments (expires_at) WHERE state = 'leased';
CREATE INDEX assignments_queue_leased_idx ON assignments (queue_id, expires_at) WHERE state = 'leased';
CREATE INDEX assignments_queue_labeler_idx ON assignments (queue_id, labeler, state);

CREATE TABLE labeler_cursors (
    tenant_id   TEXT NOT NULL,
    queue_id    TEXT NOT NULL REFERENCES queues (id),
    labeler     TEXT NOT NULL,
    rank        INTEGER NOT NULL,
    order_key   INTEGER NOT NULL,
    sample_id   TEXT NOT NULL,
    PRIMARY KEY (queue_id, labeler)
) STRICT;

CREATE TABLE labels (
    tenant_id       TEXT NOT NULL,
    id              TEXT PRIMARY KEY,
    queue_id        TEXT NOT NULL REFERENCES queues (id),
    sample_id       TEXT NOT NULL REFERENCES samples (id),
    assignment_id   TEXT NOT NULL REFERENCES assignments (id),
    labeler         TEXT NOT NULL,
    schema_version  INTEGER NOT NULL,
    payload         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    CONSTRAINT labels_assignment_key UNIQUE (assignment_id)
) STRICT;
CREATE INDEX labels_queue_id_idx ON labels (queue_id, id);
CREATE INDEX labels_sample_idx ON labels (sample_id);

CREATE TABLE reviews (
    tenant_id   TEXT NOT NULL,
    id          TEXT PRIMARY KEY,
    label_id    TEXT NOT NULL REFERENCES labels (id),
    reviewer    TEXT NOT NULL,
    verdict     TEXT NOT NULL CHECK (verdict IN ('accept', 'reject')),
    comment     TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX reviews_label_idx ON reviews (label_id, created_at);

CREATE TABLE lineage (
    tenant_id   TEXT NOT NULL,
    id          TEXT PRIMARY KEY,
    entity_kind TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    actor       TEXT NOT NULL,
    inputs      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX lineage_entity_idx ON lineage (entity_id);

CREATE TABLE audit_log (
    tenant_id   TEXT NOT NULL,
    id          TEXT PRIMARY KEY,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL
) STRICT;
-- append-only
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE api_tokens (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('labeler', 'auditor', 'admin')),
    subject     TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;

CREATE TABLE jobs (
    tenant_id       TEXT NOT NULL,
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'succeeded', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL DEFAULT 5,
    available_at    INTEGER NOT NULL,
    locked_until    INTEGER,
    last_error      TEXT,
    dispatched_at   INTEGER,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER
) STRICT;
CREATE INDEX jobs_available_idx ON jobs (available_at) WHERE state IN ('pending', 'running');
