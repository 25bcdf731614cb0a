-- Exports gain a mode, as migrations/0011_final_exports.sql for Postgres.

ALTER TABLE exports ADD COLUMN mode TEXT NOT NULL DEFAULT 'labels' CHECK (mode IN ('labels', 'final'));
