-- Gold (honeypot) samples: samples with a known answer, served to each labeler at a per-queue rate among
-- ordinary claims, at most once per labeler, and scored against that answer.
--
-- * `samples.gold`: a gold sample is a row of `samples` like any other (the claim, the assignment, the
--   submit and the labeler's views read it unchanged, so nothing tells a labeler it is gold), with no open
--   slot: the ordinary claim's index (`samples_claimable_idx`, `WHERE open_slots > 0`) never holds it. The
--   trigger `samples_gold_stays_closed` keeps it so when a gold lease is released or reclaimed.
-- * `gold_answers`: the known answer per sample (only the fields it names are scored); never read by a
--   labeler-visible route.
-- * `gold_settings`: per queue, the share of claims that are gold, the optional accuracy floor (a labeler
--   under `min_accuracy` after `min_items` gold items gets no more claims from the queue) and the labelers an
--   admin exempted from it.

ALTER TABLE samples ADD COLUMN gold boolean NOT NULL DEFAULT false;

CREATE TABLE gold_answers (
    tenant_id   text NOT NULL,
    sample_id   uuid PRIMARY KEY REFERENCES samples (id),
    queue_id    uuid NOT NULL REFERENCES queues (id),
    answer      jsonb NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gold_answers_queue_idx ON gold_answers (queue_id, sample_id);

CREATE TABLE gold_settings (
    tenant_id     text NOT NULL,
    queue_id      uuid PRIMARY KEY REFERENCES queues (id),
    rate          double precision NOT NULL CHECK (rate >= 0 AND rate <= 1),
    min_accuracy  double precision CHECK (min_accuracy >= 0 AND min_accuracy <= 1),
    min_items     integer CHECK (min_items >= 1),
    exempt        jsonb NOT NULL DEFAULT '[]',
    updated_by    text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION anvil_gold_stays_closed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.open_slots := 0;
    RETURN NEW;
END
$$;

CREATE TRIGGER samples_gold_stays_closed BEFORE UPDATE OF open_slots ON samples
FOR EACH ROW
WHEN (NEW.gold AND NEW.open_slots > 0)
EXECUTE FUNCTION anvil_gold_stays_closed();

ALTER TABLE gold_answers ENABLE ROW LEVEL SECURITY;
ALTER TABLE gold_settings ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON gold_answers USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY tenant_isolation ON gold_settings USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON gold_answers, gold_settings TO anvil_app;
