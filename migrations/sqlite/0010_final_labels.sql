-- Final labels, as migrations/0010_final_labels.sql for Postgres: per-queue final settings and auditors'
-- decisions (one per sample).

CREATE TABLE final_settings (
    tenant_id   TEXT NOT NULL,
    queue_id    TEXT PRIMARY KEY REFERENCES queues (id),
    method      TEXT NOT NULL CHECK (method IN ('majority', 'unanimous', 'dawid_skene')),
    adjudicate  TEXT NOT NULL DEFAULT '[]',
    updated_by  TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE adjudications (
    tenant_id   TEXT NOT NULL,
    sample_id   TEXT PRIMARY KEY REFERENCES samples (id),
    queue_id    TEXT NOT NULL REFERENCES queues (id),
    answer      TEXT NOT NULL,
    label_id    TEXT REFERENCES labels (id),
    decided_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
