-- Exports, imports, and the job functions of the worker.
--
-- An export or import request writes its row AND its job row in one transaction (the jobs table is the
-- outbox): a crash can never leave a request without its job or a job without its request. Workers poll the
-- jobs table (`anvil_reserve_job`), or, on AWS, a dispatcher moves undispatched job rows to SQS.

CREATE TABLE exports (
    tenant_id       text NOT NULL,
    id              uuid PRIMARY KEY,
    queue_id        uuid NOT NULL REFERENCES queues (id),
    format          text NOT NULL CHECK (format IN ('jsonl', 'csv')),
    filter          jsonb NOT NULL DEFAULT '{}'::jsonb,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'succeeded', 'failed')),
    -- labels created up to this instant are exported, so a re-run gives the same bytes
    snapshot_at     timestamptz NOT NULL,
    object_key      text NOT NULL,
    manifest_key    text NOT NULL,
    rows            bigint,
    bytes           bigint,
    sha256          text,
    manifest        jsonb,
    error           text,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX exports_queue_idx ON exports (queue_id, created_at);

CREATE TABLE imports (
    tenant_id       text NOT NULL,
    id              uuid PRIMARY KEY,
    queue_id        uuid NOT NULL REFERENCES queues (id),
    format          text NOT NULL CHECK (format IN ('jsonl', 'csv')),
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'succeeded', 'failed')),
    object_key      text NOT NULL,
    rows_created    bigint NOT NULL DEFAULT 0,
    rows_existing   bigint NOT NULL DEFAULT 0,
    rows_failed     bigint NOT NULL DEFAULT 0,
    errors          jsonb NOT NULL DEFAULT '[]'::jsonb,
    error           text,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX imports_queue_idx ON imports (queue_id, created_at);

-- label exports read labels of one queue in id order, up to the snapshot
CREATE INDEX labels_queue_created_idx ON labels (queue_id, created_at);

ALTER TABLE exports ENABLE ROW LEVEL SECURITY;
ALTER TABLE imports ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON exports USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY tenant_isolation ON imports USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON exports, imports TO anvil_app;

-- Takes the next job a poller may run: pending and due, or running with an expired lock (its worker died).
-- Jobs handed to SQS (dispatched_at set) are the SQS worker's, never a poller's. A job whose lock expired
-- after its last attempt is dead.
CREATE FUNCTION anvil_reserve_job(p_visibility_secs integer)
RETURNS TABLE (id uuid, tenant_id text, kind text, payload jsonb, attempts integer, max_attempts integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $$
BEGIN
    UPDATE jobs j SET state = 'dead', finished_at = now(),
           last_error = COALESCE(j.last_error, 'the worker stopped during the last attempt')
    WHERE j.state = 'running' AND j.locked_until < now() AND j.attempts >= j.max_attempts;
    RETURN QUERY
    WITH next AS (
        SELECT j.id FROM jobs j
        WHERE j.dispatched_at IS NULL
          AND ((j.state = 'pending' AND j.available_at <= now())
               OR (j.state = 'running' AND j.locked_until < now()))
        ORDER BY j.available_at
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    UPDATE jobs j SET state = 'running', attempts = j.attempts + 1,
           locked_until = now() + make_interval(secs => p_visibility_secs)
    FROM next WHERE j.id = next.id
    RETURNING j.id, j.tenant_id, j.kind, j.payload, j.attempts, j.max_attempts;
END
$$;

-- Reads one job by id (the SQS worker gets only the id in its message) and counts the attempt.
CREATE FUNCTION anvil_begin_job(p_id uuid)
RETURNS TABLE (id uuid, tenant_id text, kind text, payload jsonb, attempts integer, max_attempts integer, state text)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public AS $$
    UPDATE jobs j SET attempts = j.attempts + 1,
           state = CASE WHEN j.state IN ('succeeded', 'dead') THEN j.state ELSE 'running' END
    WHERE j.id = p_id
    RETURNING j.id, j.tenant_id, j.kind, j.payload, j.attempts, j.max_attempts, j.state
$$;

-- Records a job's outcome: success, or a failure that backs off (pending again) or ends it (dead: after the
-- last attempt, or at once when the failure is permanent).
CREATE FUNCTION anvil_finish_job(p_id uuid, p_ok boolean, p_error text, p_backoff_secs integer, p_give_up boolean)
RETURNS text
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public AS $$
    UPDATE jobs SET
        state = CASE WHEN p_ok THEN 'succeeded' WHEN p_give_up OR attempts >= max_attempts THEN 'dead'
                     ELSE 'pending' END,
        finished_at = CASE WHEN p_ok OR p_give_up OR attempts >= max_attempts THEN now() ELSE NULL END,
        available_at = CASE WHEN p_ok THEN available_at ELSE now() + make_interval(secs => p_backoff_secs) END,
        locked_until = NULL,
        last_error = CASE WHEN p_ok THEN last_error ELSE left(p_error, 2000) END
    WHERE id = p_id
    RETURNING state
$$;

-- The outbox side of SQS: jobs not yet handed over, and marking them handed over.
CREATE FUNCTION anvil_undispatched_jobs(p_limit integer)
RETURNS TABLE (id uuid, tenant_id text, kind text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT j.id, j.tenant_id, j.kind FROM jobs j
    WHERE j.dispatched_at IS NULL AND j.state = 'pending'
    ORDER BY j.created_at LIMIT p_limit
$$;

CREATE FUNCTION anvil_mark_dispatched(p_ids uuid[])
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public AS $$
    WITH d AS (UPDATE jobs SET dispatched_at = now() WHERE id = ANY(p_ids) AND dispatched_at IS NULL RETURNING 1)
    SELECT count(*)::integer FROM d
$$;

DO $$
DECLARE f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['anvil_reserve_job(integer)', 'anvil_begin_job(uuid)',
                             'anvil_finish_job(uuid, boolean, text, integer, boolean)', 'anvil_undispatched_jobs(integer)',
                             'anvil_mark_dispatched(uuid[])']
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO anvil_app', f);
    END LOOP;
END
$$;
