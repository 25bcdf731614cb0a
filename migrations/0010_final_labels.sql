-- Final labels: how each queue decides the final answer of a sample, and auditors' decisions.
--
-- * `final_settings`: per queue, the method (majority, unanimous, dawid_skene) and the rules that send a
--   sample to adjudication (`adjudicate`, a JSON list of {field, when, threshold}).
-- * `adjudications`: an auditor's final answer for a sample (a label they picked, or one they wrote); one per
--   sample, so two auditors deciding the same sample at once cannot both win.

CREATE TABLE final_settings (
    tenant_id   text NOT NULL,
    queue_id    uuid PRIMARY KEY REFERENCES queues (id),
    method      text NOT NULL CHECK (method IN ('majority', 'unanimous', 'dawid_skene')),
    adjudicate  jsonb NOT NULL DEFAULT '[]',
    updated_by  text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE adjudications (
    tenant_id   text NOT NULL,
    sample_id   uuid PRIMARY KEY REFERENCES samples (id),
    queue_id    uuid NOT NULL REFERENCES queues (id),
    answer      jsonb NOT NULL,
    label_id    uuid REFERENCES labels (id),
    decided_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE final_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE adjudications ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON final_settings USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY tenant_isolation ON adjudications USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON final_settings, adjudications TO anvil_app;
