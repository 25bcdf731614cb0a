-- Exports gain a mode: `labels` (one row per label, as before) or `final` (one row per sample with its final
-- answer, method, agreement and the labels behind it).

ALTER TABLE exports ADD COLUMN mode text NOT NULL DEFAULT 'labels' CHECK (mode IN ('labels', 'final'));
