-- Gold (honeypot) samples, as migrations/0009_gold.sql for Postgres: `samples.gold`, the known answers, the
-- per-queue settings, and the trigger that keeps a gold sample without an open slot (SQLite runs it after the
-- update, in the same statement).

ALTER TABLE samples ADD COLUMN gold INTEGER NOT NULL DEFAULT 0;

CREATE TABLE gold_answers (
    tenant_id   TEXT NOT NULL,
    sample_id   TEXT PRIMARY KEY REFERENCES samples (id),
    queue_id    TEXT NOT NULL REFERENCES queues (id),
    answer      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX gold_answers_queue_idx ON gold_answers (queue_id, sample_id);

CREATE TABLE gold_settings (
    tenant_id     TEXT NOT NULL,
    queue_id      TEXT PRIMARY KEY REFERENCES queues (id),
    rate          REAL NOT NULL CHECK (rate >= 0 AND rate <= 1),
    min_accuracy  REAL CHECK (min_accuracy >= 0 AND min_accuracy <= 1),
    min_items     INTEGER CHECK (min_items >= 1),
    exempt        TEXT NOT NULL DEFAULT '[]',
    updated_by    TEXT NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TRIGGER samples_gold_stays_closed AFTER UPDATE OF open_slots ON samples
FOR EACH ROW WHEN NEW.gold AND NEW.open_slots > 0
BEGIN
    UPDATE samples SET open_slots = 0 WHERE id = NEW.id;
END;
