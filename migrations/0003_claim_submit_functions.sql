-- The claim and the submit, each one round trip.
--
-- Before this migration a claim was five round trips (BEGIN, the tenant, the decision read, the claim
-- statement, COMMIT) and a submit six; with a few hundredths of a millisecond of Postgres and client CPU per
-- round trip, that overhead was larger than the work. These functions run the same statements inside the
-- database, in the caller's transaction (one statement in autocommit: its own transaction):
--
-- * SECURITY INVOKER: they run as the application role, so row-level security applies to every statement.
--   The tenant comes in as a parameter (from the verified token, as before) and is set first thing, exactly as
--   the transaction's first statement did.
-- * Claims run with sorts and bitmap scans off (the function's SET clause), so that even before the first
--   ANALYZE of a new table the only plan is the ordered walk of samples_claimable_idx (a new table has no
--   statistics, and the planner would otherwise sort the queue's whole open set under the LIMIT 1).
-- * The design of the claim is described in functions/shared/core/src/store/postgres.rs.

CREATE FUNCTION anvil_claim(p_tenant text, p_queue uuid, p_labeler text, p_id uuid)
RETURNS TABLE (
    outcome text,            -- not_found | inactive | none | live | new
    id uuid, queue_id uuid, sample_id uuid, labeler text, state text, version integer,
    schema_version integer, leased_at timestamptz, expires_at timestamptz, release_reason text,
    external_id text, payload jsonb, priority integer, schema jsonb, server_time timestamptz
)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET enable_sort = off SET enable_bitmapscan = off
AS $$
#variable_conflict use_column
DECLARE
    q record;
    live record;
    cur record;
    got record;
    taken boolean := false;
    reclaimed integer;
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant, true);

    SELECT qq.state, qq.overlap, qq.lease_seconds, qq.schema_version, sv.schema INTO q
    FROM queues qq JOIN schema_versions sv ON sv.queue_id = qq.id AND sv.version = qq.schema_version
    WHERE qq.id = p_queue AND qq.tenant_id = p_tenant;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN NEXT;
        RETURN;
    END IF;

    -- At most one live lease per labeler and queue (assignments_one_live_lease_idx).
    SELECT a.id, a.version, a.expires_at > now() AS alive INTO live
    FROM assignments a
    WHERE a.queue_id = p_queue AND a.labeler = p_labeler AND a.state = 'leased';
    IF FOUND THEN
        IF live.alive THEN
            -- Asking again while holding a live lease returns that lease.
            RETURN QUERY
            SELECT 'live'::text, a.id, a.queue_id, a.sample_id, a.labeler, a.state, a.version, a.schema_version,
                   a.leased_at, a.expires_at, a.release_reason, s.external_id, s.payload, s.priority,
                   sv.schema, now()
            FROM assignments a
            JOIN samples s ON s.id = a.sample_id
            JOIN schema_versions sv ON sv.queue_id = a.queue_id AND sv.version = a.schema_version
            WHERE a.id = live.id;
            RETURN;
        END IF;
        -- The labeler's own lease expired unreclaimed: reclaim it (compare-and-set on state + version).
        WITH e AS (
            UPDATE assignments a SET state = 'expired', version = a.version + 1, finished_at = now()
            WHERE a.id = live.id AND a.version = live.version AND a.state = 'leased' AND a.expires_at < now()
            RETURNING a.sample_id
        )
        UPDATE samples s SET open_slots = s.open_slots + 1 FROM e WHERE s.id = e.sample_id;
    END IF;

    IF q.state <> 'active' THEN
        outcome := 'inactive';
        RETURN NEXT;
        RETURN;
    END IF;

    IF q.overlap > 1 THEN
        SELECT c.rank, c.order_key, c.sample_id INTO cur
        FROM labeler_cursors c WHERE c.queue_id = p_queue AND c.labeler = p_labeler;
        IF FOUND THEN
            SELECT * INTO got FROM anvil_claim_take(p_tenant, p_queue, p_labeler, p_id, q.schema_version,
                q.lease_seconds, true, cur.rank, cur.order_key, cur.sample_id);
            taken := got.id IS NOT NULL;
        END IF;
    END IF;
    IF NOT taken THEN
        SELECT * INTO got FROM anvil_claim_take(p_tenant, p_queue, p_labeler, p_id, q.schema_version,
            q.lease_seconds, q.overlap > 1, NULL, NULL, NULL);
        taken := got.id IS NOT NULL;
    END IF;
    IF NOT taken THEN
        -- Nothing open: put this queue's expired leases back, then look once more.
        WITH expired AS (
            UPDATE assignments a SET state = 'expired', version = a.version + 1, finished_at = now()
            WHERE a.queue_id = p_queue AND a.state = 'leased' AND a.expires_at < now()
            RETURNING a.sample_id
        ), freed AS (
            UPDATE samples s SET open_slots = s.open_slots + f.n
            FROM (SELECT e.sample_id, count(*)::integer AS n FROM expired e GROUP BY e.sample_id) f
            WHERE s.id = f.sample_id
            RETURNING 1
        )
        SELECT count(*) INTO reclaimed FROM expired;
        IF reclaimed > 0 THEN
            SELECT * INTO got FROM anvil_claim_take(p_tenant, p_queue, p_labeler, p_id, q.schema_version,
                q.lease_seconds, q.overlap > 1, NULL, NULL, NULL);
            taken := got.id IS NOT NULL;
        END IF;
    END IF;
    IF NOT taken THEN
        outcome := 'none';
        RETURN NEXT;
        RETURN;
    END IF;

    RETURN QUERY SELECT 'new'::text, got.id, got.queue_id, got.sample_id, got.labeler, got.state, got.version,
        got.schema_version, got.leased_at, got.expires_at, got.release_reason, got.external_id, got.payload,
        got.priority, q.schema, now();
END
$$;

-- One attempt: the first open sample this labeler never had, from the front of the queue or (p_rank not null)
-- after the labeler's cursor. Locks it (SKIP LOCKED: concurrent labelers take the next one), takes a slot,
-- inserts the assignment and its lineage, and moves the cursor (queues with overlap > 1).
CREATE FUNCTION anvil_claim_take(
    p_tenant text, p_queue uuid, p_labeler text, p_id uuid, p_schema_version integer, p_lease_seconds integer,
    p_move_cursor boolean, p_rank integer, p_order_key bigint, p_sample uuid,
    OUT id uuid, OUT queue_id uuid, OUT sample_id uuid, OUT labeler text, OUT state text, OUT version integer,
    OUT schema_version integer, OUT leased_at timestamptz, OUT expires_at timestamptz, OUT release_reason text,
    OUT external_id text, OUT payload jsonb, OUT priority integer
)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET enable_sort = off SET enable_bitmapscan = off
AS $$
#variable_conflict use_column
DECLARE
    r record;
BEGIN
    IF p_rank IS NULL THEN
        WITH cand AS (
            SELECT s.id, s.rank, s.order_key, s.external_id, s.payload, s.priority
            FROM samples s
            WHERE s.queue_id = p_queue AND s.open_slots > 0
              -- OFFSET 0 keeps this a per-candidate probe of (sample_id, labeler): see postgres.rs
              AND NOT EXISTS (SELECT 1 FROM assignments x WHERE x.sample_id = s.id AND x.labeler = p_labeler
                              OFFSET 0)
            ORDER BY s.rank, s.order_key, s.id
            LIMIT 1
            FOR UPDATE OF s SKIP LOCKED
        ), taken AS (
            UPDATE samples s SET open_slots = s.open_slots - 1
            FROM cand WHERE s.id = cand.id AND s.open_slots > 0
            RETURNING s.id
        ), asg AS (
            INSERT INTO assignments (tenant_id, id, queue_id, sample_id, labeler, state, schema_version, expires_at)
            SELECT p_tenant, p_id, p_queue, taken.id, p_labeler, 'leased', p_schema_version,
                   now() + make_interval(secs => p_lease_seconds)
            FROM taken
            RETURNING *
        ), cur AS (
            INSERT INTO labeler_cursors AS c (tenant_id, queue_id, labeler, rank, order_key, sample_id)
            SELECT p_tenant, p_queue, p_labeler, cand.rank, cand.order_key, cand.id
            FROM cand JOIN asg ON true WHERE p_move_cursor
            ON CONFLICT ON CONSTRAINT labeler_cursors_pkey DO UPDATE
            SET rank = EXCLUDED.rank, order_key = EXCLUDED.order_key, sample_id = EXCLUDED.sample_id
            WHERE (c.rank, c.order_key, c.sample_id) < (EXCLUDED.rank, EXCLUDED.order_key, EXCLUDED.sample_id)
        ), lin AS (
            INSERT INTO lineage (tenant_id, id, entity_kind, entity_id, actor, inputs)
            SELECT p_tenant, p_id, 'assignment', asg.id, p_labeler,
                   jsonb_build_object('queue_id', p_queue, 'sample_id', asg.sample_id,
                                      'schema_version', p_schema_version)
            FROM asg
        )
        SELECT asg.id, asg.queue_id, asg.sample_id, asg.labeler, asg.state, asg.version, asg.schema_version,
               asg.leased_at, asg.expires_at, asg.release_reason, cand.external_id, cand.payload, cand.priority
        INTO r FROM asg JOIN cand ON true;
    ELSE
        WITH cand AS (
            SELECT s.id, s.rank, s.order_key, s.external_id, s.payload, s.priority
            FROM samples s
            WHERE s.queue_id = p_queue AND s.open_slots > 0
              AND (s.rank, s.order_key, s.id) > (p_rank, p_order_key, p_sample)
              AND NOT EXISTS (SELECT 1 FROM assignments x WHERE x.sample_id = s.id AND x.labeler = p_labeler
                              OFFSET 0)
            ORDER BY s.rank, s.order_key, s.id
            LIMIT 1
            FOR UPDATE OF s SKIP LOCKED
        ), taken AS (
            UPDATE samples s SET open_slots = s.open_slots - 1
            FROM cand WHERE s.id = cand.id AND s.open_slots > 0
            RETURNING s.id
        ), asg AS (
            INSERT INTO assignments (tenant_id, id, queue_id, sample_id, labeler, state, schema_version, expires_at)
            SELECT p_tenant, p_id, p_queue, taken.id, p_labeler, 'leased', p_schema_version,
                   now() + make_interval(secs => p_lease_seconds)
            FROM taken
            RETURNING *
        ), cur AS (
            INSERT INTO labeler_cursors AS c (tenant_id, queue_id, labeler, rank, order_key, sample_id)
            SELECT p_tenant, p_queue, p_labeler, cand.rank, cand.order_key, cand.id
            FROM cand JOIN asg ON true WHERE p_move_cursor
            ON CONFLICT ON CONSTRAINT labeler_cursors_pkey DO UPDATE
            SET rank = EXCLUDED.rank, order_key = EXCLUDED.order_key, sample_id = EXCLUDED.sample_id
            WHERE (c.rank, c.order_key, c.sample_id) < (EXCLUDED.rank, EXCLUDED.order_key, EXCLUDED.sample_id)
        ), lin AS (
            INSERT INTO lineage (tenant_id, id, entity_kind, entity_id, actor, inputs)
            SELECT p_tenant, p_id, 'assignment', asg.id, p_labeler,
                   jsonb_build_object('queue_id', p_queue, 'sample_id', asg.sample_id,
                                      'schema_version', p_schema_version)
            FROM asg
        )
        SELECT asg.id, asg.queue_id, asg.sample_id, asg.labeler, asg.state, asg.version, asg.schema_version,
               asg.leased_at, asg.expires_at, asg.release_reason, cand.external_id, cand.payload, cand.priority
        INTO r FROM asg JOIN cand ON true;
    END IF;
    IF FOUND THEN
        id := r.id; queue_id := r.queue_id; sample_id := r.sample_id; labeler := r.labeler; state := r.state;
        version := r.version; schema_version := r.schema_version; leased_at := r.leased_at;
        expires_at := r.expires_at; release_reason := r.release_reason; external_id := r.external_id;
        payload := r.payload; priority := r.priority;
    END IF;
END
$$;

-- What a submit needs before it can validate: the assignment (if it is the labeler's), its sample's payload,
-- its schema version's schema, and the label already submitted for it, if any.
CREATE FUNCTION anvil_submit_context(p_tenant text, p_assignment uuid, p_labeler text)
RETURNS TABLE (
    id uuid, queue_id uuid, sample_id uuid, labeler text, state text, version integer, schema_version integer,
    leased_at timestamptz, expires_at timestamptz, release_reason text,
    external_id text, payload jsonb, priority integer, schema jsonb, server_time timestamptz,
    label_id uuid, label_payload jsonb, label_created_at timestamptz
)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant, true);
    RETURN QUERY
    SELECT a.id, a.queue_id, a.sample_id, a.labeler, a.state, a.version, a.schema_version, a.leased_at,
           a.expires_at, a.release_reason, s.external_id, s.payload, s.priority, sv.schema, now(),
           l.id, l.payload, l.created_at
    FROM assignments a
    JOIN samples s ON s.id = a.sample_id
    JOIN schema_versions sv ON sv.queue_id = a.queue_id AND sv.version = a.schema_version
    LEFT JOIN labels l ON l.assignment_id = a.id
    WHERE a.id = p_assignment AND a.tenant_id = p_tenant AND a.labeler = p_labeler;
END
$$;

-- The submit's write, after validation: compare-and-set on the assignment (only a lease that is still
-- `leased`, even past its expiry as long as it has not been reclaimed, becomes `submitted`); the label, the
-- sample's counter and the lineage in the same statement, so a label exists if and only if its assignment is
-- submitted. No row: the compare-and-set lost (reclaimed, released, or a concurrent submit).
CREATE FUNCTION anvil_submit(p_tenant text, p_assignment uuid, p_labeler text, p_label uuid, p_payload jsonb)
RETURNS TABLE (id uuid, created_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant, true);
    RETURN QUERY
    WITH up AS (
        UPDATE assignments a SET state = 'submitted', version = a.version + 1, finished_at = now()
        WHERE a.id = p_assignment AND a.tenant_id = p_tenant AND a.labeler = p_labeler AND a.state = 'leased'
        RETURNING a.id, a.queue_id, a.sample_id, a.labeler, a.schema_version
    ), lab AS (
        INSERT INTO labels (tenant_id, id, queue_id, sample_id, assignment_id, labeler, schema_version, payload)
        SELECT p_tenant, p_label, up.queue_id, up.sample_id, up.id, up.labeler, up.schema_version, p_payload
        FROM up
        RETURNING labels.id, labels.created_at
    ), cnt AS (
        UPDATE samples s SET submitted_count = s.submitted_count + 1 FROM up WHERE s.id = up.sample_id
    ), lin AS (
        INSERT INTO lineage (tenant_id, id, entity_kind, entity_id, actor, inputs)
        SELECT p_tenant, p_label, 'label', lab.id, p_labeler,
               jsonb_build_object('assignment_id', p_assignment, 'sample_id', up.sample_id,
                                  'schema_version', up.schema_version)
        FROM lab, up
    )
    SELECT lab.id, lab.created_at FROM lab;
END
$$;

REVOKE ALL ON FUNCTION anvil_claim(text, uuid, text, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION anvil_claim_take(text, uuid, text, uuid, integer, integer, boolean, integer, bigint, uuid)
    FROM PUBLIC;
REVOKE ALL ON FUNCTION anvil_submit_context(text, uuid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION anvil_submit(text, uuid, text, uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION anvil_claim(text, uuid, text, uuid) TO anvil_app;
GRANT EXECUTE ON FUNCTION anvil_claim_take(text, uuid, text, uuid, integer, integer, boolean, integer, bigint, uuid)
    TO anvil_app;
GRANT EXECUTE ON FUNCTION anvil_submit_context(text, uuid, text) TO anvil_app;
GRANT EXECUTE ON FUNCTION anvil_submit(text, uuid, text, uuid, jsonb) TO anvil_app;
