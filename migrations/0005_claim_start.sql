-- Claims no longer walk the front of the queue that is already taken.
--
-- `samples_claimable_idx` holds only samples with an open slot, but that is true of live rows: a claim that
-- takes a sample's last slot leaves the old row version's index entry behind until VACUUM removes it, and
-- every later claim of the queue steps over all of them from the front. Between two autovacuum runs (a minute
-- apart at best, and only once 20 % of the table changed) that is every sample claimed meanwhile: measured
-- 210 index pages per claim after 15,000 claims on a 200k-sample queue (`EXPLAIN (ANALYZE, BUFFERS)` of the
-- claim statement), growing with the claim rate and the table size.
--
-- So each queue keeps a claim start (`queues.claim_rank/claim_order_key/claim_sample`, NULL = the front):
-- no sample before it has an open slot. Claims search from it (and from the labeler's cursor when that is
-- further on); one claim in 16 moves it up to the first sample with an open slot. Whatever frees a slot or
-- adds a sample before it — a release, a reclaimed expiry, new samples, a changed position — lowers it, by
-- the triggers below, in the same transaction. A search from the front still runs when nothing is found
-- after the start, as before.

ALTER TABLE queues ADD COLUMN claim_rank integer, ADD COLUMN claim_order_key bigint, ADD COLUMN claim_sample uuid;

-- A sample got an open slot (release, reclaimed expiry) or moved: the queue's claim start goes back to it if
-- it was further on. Under a lock on the queue row, so it waits for a claim that is moving the start.
CREATE FUNCTION anvil_lower_claim_start() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE queues q SET claim_rank = NEW.rank, claim_order_key = NEW.order_key, claim_sample = NEW.id
    WHERE q.id = NEW.queue_id AND q.claim_rank IS NOT NULL
      AND (q.claim_rank, q.claim_order_key, q.claim_sample) > (NEW.rank, NEW.order_key, NEW.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER samples_slot_freed AFTER UPDATE OF open_slots, rank, order_key ON samples
FOR EACH ROW
WHEN (NEW.open_slots > 0 AND (NEW.open_slots > OLD.open_slots OR NEW.rank <> OLD.rank
                              OR NEW.order_key <> OLD.order_key))
EXECUTE FUNCTION anvil_lower_claim_start();

-- New samples: the claim start goes back to the first of them in each queue if it was further on.
CREATE FUNCTION anvil_lower_claim_start_on_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE queues q SET claim_rank = m.rank, claim_order_key = m.order_key, claim_sample = m.id
    FROM (SELECT DISTINCT ON (n.queue_id) n.queue_id, n.rank, n.order_key, n.id
          FROM new_samples n WHERE n.open_slots > 0
          ORDER BY n.queue_id, n.rank, n.order_key, n.id) m
    WHERE q.id = m.queue_id AND q.claim_rank IS NOT NULL
      AND (q.claim_rank, q.claim_order_key, q.claim_sample) > (m.rank, m.order_key, m.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER samples_added AFTER INSERT ON samples
REFERENCING NEW TABLE AS new_samples
FOR EACH STATEMENT
EXECUTE FUNCTION anvil_lower_claim_start_on_insert();

CREATE OR REPLACE FUNCTION anvil_claim(p_tenant text, p_queue uuid, p_labeler text, p_id uuid)
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
    nxt record;
    lo record;
    taken boolean := false;
    reclaimed integer;
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant, true);

    SELECT qq.state, qq.overlap, qq.lease_seconds, qq.schema_version, sv.schema,
           qq.claim_rank, qq.claim_order_key, qq.claim_sample INTO q
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
            -- after the labeler's cursor, or from the queue's claim start if that is further on
            IF q.claim_rank IS NOT NULL
               AND (q.claim_rank, q.claim_order_key, q.claim_sample) > (cur.rank, cur.order_key, cur.sample_id) THEN
                cur.rank := q.claim_rank; cur.order_key := q.claim_order_key; cur.sample_id := q.claim_sample;
            END IF;
            SELECT * INTO got FROM anvil_claim_take(p_tenant, p_queue, p_labeler, p_id, q.schema_version,
                q.lease_seconds, true, cur.rank, cur.order_key, cur.sample_id);
            taken := got.id IS NOT NULL;
        END IF;
    END IF;
    IF NOT taken AND q.claim_rank IS NOT NULL THEN
        -- from the queue's claim start: no sample before it has an open slot
        SELECT * INTO got FROM anvil_claim_take(p_tenant, p_queue, p_labeler, p_id, q.schema_version,
            q.lease_seconds, q.overlap > 1, q.claim_rank, q.claim_order_key, q.claim_sample);
        taken := got.id IS NOT NULL;
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
            SELECT s.rank, s.order_key, s.id INTO nxt
            FROM samples s
            WHERE s.queue_id = p_queue AND s.open_slots > 0
              AND (lo.claim_rank IS NULL
                   OR (s.rank, s.order_key, s.id) >= (lo.claim_rank, lo.claim_order_key, lo.claim_sample))
            ORDER BY s.rank, s.order_key, s.id
            LIMIT 1;
            IF FOUND THEN
                UPDATE queues qq SET claim_rank = nxt.rank, claim_order_key = nxt.order_key, claim_sample = nxt.id
                WHERE qq.id = p_queue;
            END IF;
        END IF;
    END IF;

    RETURN QUERY SELECT 'new'::text, got.id, got.queue_id, got.sample_id, got.labeler, got.state, got.version,
        got.schema_version, got.leased_at, got.expires_at, got.release_reason, got.external_id, got.payload,
        got.priority, q.schema, now();
END
$$;


CREATE OR REPLACE FUNCTION anvil_claim_take(
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
        )
        SELECT asg.id, asg.queue_id, asg.sample_id, asg.labeler, asg.state, asg.version, asg.schema_version,
               asg.leased_at, asg.expires_at, asg.release_reason, cand.external_id, cand.payload, cand.priority
        INTO r FROM asg JOIN cand ON true;
    ELSE
        WITH cand AS (
            SELECT s.id, s.rank, s.order_key, s.external_id, s.payload, s.priority
            FROM samples s
            WHERE s.queue_id = p_queue AND s.open_slots > 0
              AND (s.rank, s.order_key, s.id) >= (p_rank, p_order_key, p_sample)
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
