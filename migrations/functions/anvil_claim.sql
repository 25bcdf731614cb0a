-- anvil_claim: a claim in one call; the labeler's live lease again, or a new lease on the next open sample
-- (design: functions/shared/core/src/store/postgres.rs).
--
-- Current definition: migrations/0008_fewer_index_entries_per_label.sql (replaced there). Earlier:
-- 0003_claim_submit_functions.sql (created), 0005_claim_start.sql (replaced),
-- 0006_hot_path_plans_use_indexes.sql (ALTER FUNCTION ... SET), 0007_claim_in_three_statements.sql (replaced).
-- Privileges: REVOKE/GRANT in migrations/0003_claim_submit_functions.sql (CREATE OR REPLACE keeps them).
--
-- To change this function: add a new migration that restates this file's new text and update this file in the
-- same commit; never edit an applied migration (migrations/functions/README.md).
-- functions/shared/api/tests/sql_functions.rs checks that this file is what a migrated database runs.

CREATE OR REPLACE FUNCTION anvil_claim(p_tenant text, p_queue uuid, p_labeler text, p_id uuid)
RETURNS TABLE (
    outcome text,            -- not_found | inactive | none | live | new
    id uuid, queue_id uuid, sample_id uuid, labeler text, state text, version integer,
    schema_version integer, leased_at timestamptz, expires_at timestamptz, release_reason text,
    external_id text, payload jsonb, priority integer, schema jsonb, server_time timestamptz
)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET enable_sort = off SET enable_bitmapscan = off SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    q record;
    lo record;
    nxt record;
    ok text;
    -- where the take searches from, and which search this is: 0 from the labeler's cursor, 1 from the queue's
    -- claim start, 2 from the front, 3 from the front after reclaiming expired leases
    v_rank integer;
    v_order_key bigint;
    v_sample uuid;
    tried integer;
    move_cursor boolean;
    reclaimed integer;
BEGIN
    ok := set_config('app.tenant_id', p_tenant, true);

    SELECT qq.state, qq.overlap, qq.lease_seconds, qq.schema_version, sv.schema,
           qq.claim_rank, qq.claim_order_key, qq.claim_sample,
           l.id AS live_id, l.version AS live_version, l.expires_at > now() AS live_alive,
           c.rank AS cur_rank, c.order_key AS cur_order_key, c.sample_id AS cur_sample
    INTO q
    FROM queues qq
    JOIN schema_versions sv ON sv.queue_id = qq.id AND sv.version = qq.schema_version
    -- at most one live lease per labeler and queue (assignments_one_live_lease_idx)
    LEFT JOIN LATERAL (
        SELECT a.id, a.version, a.expires_at FROM assignments a
        WHERE a.queue_id = qq.id AND a.labeler = p_labeler AND a.state = 'leased'
    ) l ON true
    LEFT JOIN LATERAL (
        SELECT lc.rank, lc.order_key, lc.sample_id FROM labeler_cursors lc
        WHERE lc.queue_id = qq.id AND lc.labeler = p_labeler AND qq.overlap > 1
    ) c ON true
    WHERE qq.id = p_queue AND qq.tenant_id = p_tenant;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN NEXT;
        RETURN;
    END IF;

    IF q.live_id IS NOT NULL THEN
        IF q.live_alive THEN
            -- Asking again while holding a live lease returns that lease.
            RETURN QUERY
            SELECT 'live'::text, a.id, a.queue_id, a.sample_id, a.labeler, a.state, a.version, a.schema_version,
                   a.leased_at, a.expires_at, a.release_reason, s.external_id, s.payload, s.priority,
                   sv.schema, now()
            FROM assignments a
            JOIN samples s ON s.id = a.sample_id
            JOIN schema_versions sv ON sv.queue_id = a.queue_id AND sv.version = a.schema_version
            WHERE a.id = q.live_id;
            RETURN;
        END IF;
        -- The labeler's own lease expired unreclaimed: reclaim it (compare-and-set on state + version).
        WITH e AS (
            UPDATE assignments a SET state = 'expired', version = a.version + 1, finished_at = now()
            WHERE a.id = q.live_id AND a.version = q.live_version AND a.state = 'leased' AND a.expires_at < now()
            RETURNING a.sample_id
        )
        UPDATE samples s SET open_slots = s.open_slots + 1 FROM e WHERE s.id = e.sample_id;
    END IF;

    IF q.state <> 'active' THEN
        outcome := 'inactive';
        RETURN NEXT;
        RETURN;
    END IF;

    move_cursor := q.overlap > 1;
    IF q.claim_rank IS NULL THEN
        tried := 2;
        v_rank := -2147483648; v_order_key := -9223372036854775808;
        v_sample := '00000000-0000-0000-0000-000000000000';
    ELSE
        tried := 1;
        v_rank := q.claim_rank; v_order_key := q.claim_order_key; v_sample := q.claim_sample;
    END IF;
    -- after the labeler's cursor when that is further on than the claim start
    IF q.cur_rank IS NOT NULL AND (q.cur_rank, q.cur_order_key, q.cur_sample) > (v_rank, v_order_key, v_sample) THEN
        tried := 0;
        v_rank := q.cur_rank; v_order_key := q.cur_order_key; v_sample := q.cur_sample;
    END IF;

    LOOP
        RETURN QUERY
        WITH cand AS (
            SELECT s.id, s.rank, s.order_key, s.external_id, s.payload, s.priority
            FROM samples s
            WHERE s.queue_id = p_queue AND s.open_slots > 0
              AND (s.rank, s.order_key, s.id) >= (v_rank, v_order_key, v_sample)
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
            SELECT p_tenant, p_id, p_queue, taken.id, p_labeler, 'leased', q.schema_version,
                   now() + make_interval(secs => q.lease_seconds)
            FROM taken
            RETURNING *
        ), cur AS (
            INSERT INTO labeler_cursors AS lc (tenant_id, queue_id, labeler, rank, order_key, sample_id)
            SELECT p_tenant, p_queue, p_labeler, cand.rank, cand.order_key, cand.id
            FROM cand JOIN asg ON true WHERE move_cursor
            ON CONFLICT ON CONSTRAINT labeler_cursors_pkey DO UPDATE
            SET rank = EXCLUDED.rank, order_key = EXCLUDED.order_key, sample_id = EXCLUDED.sample_id
            WHERE (lc.rank, lc.order_key, lc.sample_id) < (EXCLUDED.rank, EXCLUDED.order_key, EXCLUDED.sample_id)
        )
        SELECT 'new'::text, asg.id, asg.queue_id, asg.sample_id, asg.labeler, asg.state, asg.version,
               asg.schema_version, asg.leased_at, asg.expires_at, asg.release_reason, cand.external_id,
               cand.payload, cand.priority, q.schema, now()
        FROM asg JOIN cand ON true;
        EXIT WHEN FOUND;

        IF tried = 0 AND q.claim_rank IS NOT NULL THEN
            -- from the queue's claim start: no sample before it has an open slot
            tried := 1;
            v_rank := q.claim_rank; v_order_key := q.claim_order_key; v_sample := q.claim_sample;
        ELSIF tried <= 1 THEN
            tried := 2;
            v_rank := -2147483648; v_order_key := -9223372036854775808;
            v_sample := '00000000-0000-0000-0000-000000000000';
        ELSIF tried = 2 THEN
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
            IF reclaimed = 0 THEN
                outcome := 'none';
                RETURN NEXT;
                RETURN;
            END IF;
            tried := 3;
        ELSE
            outcome := 'none';
            RETURN NEXT;
            RETURN;
        END IF;
    END LOOP;

    -- Now and then (one claim in 16, so that the queue row is not written by every claim), move the queue's
    -- claim start up to the first sample that still has an open slot, locked or not. The queue row is locked
    -- first (a row locked by another claim or a release is skipped, not waited for), and only then is the first
    -- open sample looked up, with a snapshot taken after the lock: a slot freed before that is seen, and one
    -- freed after it lowers the new start again (trigger anvil_lower_claim_start waits for this lock).
    IF random() < 0.0625 THEN
        SELECT qq.claim_rank, qq.claim_order_key, qq.claim_sample INTO lo
        FROM queues qq WHERE qq.id = p_queue
        FOR NO KEY UPDATE SKIP LOCKED;
        IF FOUND THEN
            -- plain variables, not COALESCE(...) in the statement: see the head of migrations/0008
            v_rank := COALESCE(lo.claim_rank, -2147483648);
            v_order_key := COALESCE(lo.claim_order_key, -9223372036854775808);
            v_sample := COALESCE(lo.claim_sample, '00000000-0000-0000-0000-000000000000');
            SELECT s.rank, s.order_key, s.id INTO nxt
            FROM samples s
            WHERE s.queue_id = p_queue AND s.open_slots > 0
              AND (s.rank, s.order_key, s.id) >= (v_rank, v_order_key, v_sample)
            ORDER BY s.rank, s.order_key, s.id
            LIMIT 1;
            IF FOUND THEN
                UPDATE queues qq SET claim_rank = nxt.rank, claim_order_key = nxt.order_key, claim_sample = nxt.id
                WHERE qq.id = p_queue;
            END IF;
        END IF;
    END IF;
END
$$;
