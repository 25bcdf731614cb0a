-- Exports and imports (see migrations/0002_exports_imports_jobs.sql); the jobs table of 0001 is the outbox.

CREATE TABLE exports (
    tenant_id       TEXT NOT NULL,
    id              TEXT PRIMARY KEY,
    queue_id        TEXT NOT NULL REFERENCES queues (id),
    format          TEXT NOT NULL CHECK (format IN ('jsonl', 'csv')),
    filter          TEXT NOT NULL DEFAULT '{}',
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'succeeded', 'failed')),
    snapshot_at     INTEGER NOT NULL,
    object_key      TEXT NOT NULL,
    manifest_key    TEXT NOT NULL,
    rows            INTEGER,
    bytes           INTEGER,
    sha256          TEXT,
    manifest        TEXT,
    error           TEXT,
    created_by      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER
) STRICT;
CREATE INDEX exports_queue_idx ON exports (queue_id, created_at);

CREATE TABLE imports (
    tenant_id       TEXT NOT NULL,
    id              TEXT PRIMARY KEY,
    queue_id        TEXT NOT NULL REFERENCES queues (id),
    format          TEXT NOT NULL CHECK (format IN ('jsonl', 'csv')),
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'succeeded', 'failed')),
    object_key      TEXT NOT NULL,
    rows_created    INTEGER NOT NULL DEFAULT 0,
    rows_existing   INTEGER NOT NULL DEFAULT 0,
    rows_failed     INTEGER NOT NULL DEFAULT 0,
    errors          TEXT NOT NULL DEFAULT '[]',
    error           TEXT,
    created_by      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER
) STRICT;
CREATE INDEX imports_queue_idx ON imports (queue_id, created_at);
CREATE INDEX labels_queue_created_idx ON labels (queue_id, created_at);
