//! The Postgres adapter of the store port.
//!
//! Every operation is one transaction that starts with `set_config('app.tenant_id', $1, true)`, so the
//! row-level security policies of migrations/0001_core.sql filter every statement by the token's tenant even
//! where a query forgets to. The pool runs `SET ROLE anvil_app` on every new connection: the policies do not
//! apply to superusers or the tables' owner.

use std::sync::Arc;
use std::time::Duration;

use anvil_types::Label;
use anvil_types::{
    AddSamplesResult, Assignment, AssignmentState, Claim, CreateQueue, NewSample, PatchQueue, Queue,
    QueueState, QueueStats, Review, Sample, TokenInfo, Verdict,
};
use async_trait::async_trait;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, Executor, PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use super::handed::HandedLeases;
use super::rows::{self, ASSIGNMENT_COLS, LABEL_COLS, QUEUE_COLS};
use super::{
    LabelFilter, LabelValidator, NewToken, Store, Submitted, TokenRecord, lease_gone, new_id, resubmitted,
};
use crate::domain::{Subject, TenantId};
use crate::error::{Error, Result, is_unique_violation};
use crate::schema::schema_hash;

/// The embedded migrations of Postgres (migrations/ at the repository root).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../../migrations");

/// The role the application's queries run as (created by the first migration).
pub const APP_ROLE: &str = "anvil_app";

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Leases handed out by this process: their submit skips the context read (store/handed.rs).
    pub(super) handed: Arc<HandedLeases>,
}

/// Runs the migrations as the connecting (owner) user.
pub async fn migrate(url: &str) -> anyhow::Result<()> {
    migrate_with(url.parse()?).await
}

/// [`migrate`] with connection options already parsed.
pub async fn migrate_with(opts: PgConnectOptions) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new().max_connections(1).connect_with(opts).await?;
    MIGRATOR.run(&pool).await?;
    pool.close().await;
    Ok(())
}

/// A pooled connection idle at least this long is pinged before it is handed out.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(2);

/// Builds the application pool: every connection switches to the non-superuser application role.
pub fn app_pool(opts: PgConnectOptions, max_connections: u32, acquire_timeout: Duration) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(acquire_timeout)
        // sqlx pings every connection it hands out (a round trip, and a wake-up of the backend, before every
        // statement). Only a connection that sat idle for a while is worth that check: one used moments ago is
        // alive or fails its next statement with an I/O error, which the API answers 503 (retry) and sqlx
        // then drops from the pool.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_BEFORE_PING {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("SET ROLE anvil_app").await?;
                Ok(())
            })
        })
        .connect_lazy_with(opts)
}

impl PgStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool, handed: Arc::default() }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Opens a transaction scoped to a tenant (for RLS).
    pub(super) async fn tx(&self, t: &TenantId) -> Result<Transaction<'static, Postgres>> {
        self.begin(t, TENANT_TX).await
    }

    /// Opens a transaction whose first statement is `settings` (which binds the tenant as `$1`).
    async fn begin(&self, t: &TenantId, settings: &'static str) -> Result<Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(settings).bind(t.as_str()).execute(&mut *tx).await?;
        Ok(tx)
    }
}

/// The first statement of every transaction: the tenant row-level security filters by.
const TENANT_TX: &str = "SELECT set_config('app.tenant_id', $1, true)";

// ------------------------------------------------------------------------------------------------------------
// Row mapping
// ------------------------------------------------------------------------------------------------------------

pub(super) async fn audit(
    tx: &mut Transaction<'static, Postgres>,
    t: &TenantId,
    actor: &Subject,
    action: &str,
    target: String,
    detail: Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, id, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(t.as_str())
    .bind(new_id())
    .bind(actor.as_str())
    .bind(action)
    .bind(target)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn load_queue(
    tx: &mut Transaction<'static, Postgres>,
    t: &TenantId,
    id: Uuid,
) -> Result<Queue> {
    let sql = format!(
        "SELECT {QUEUE_COLS} FROM queues q JOIN schema_versions sv ON sv.queue_id = q.id AND sv.version = \
         q.schema_version WHERE q.id = $1 AND q.tenant_id = $2"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(t.as_str())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(Error::NotFound("queue"))?;
    rows::queue(&row)
}

/// The full claim answer (assignment + sample + schema) for one assignment.
pub(super) async fn load_claim(
    tx: &mut Transaction<'static, Postgres>,
    t: &TenantId,
    id: Uuid,
    labeler: Option<&Subject>,
) -> Result<Claim> {
    let sql = format!(
        "SELECT {ASSIGNMENT_COLS}, s.external_id, s.payload, s.priority, sv.schema, now() AS server_time \
         FROM assignments a \
         JOIN samples s ON s.id = a.sample_id \
         JOIN schema_versions sv ON sv.queue_id = a.queue_id AND sv.version = a.schema_version \
         WHERE a.id = $1 AND a.tenant_id = $2 AND ($3::text IS NULL OR a.labeler = $3)"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(t.as_str())
        .bind(labeler.map(Subject::as_str))
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(Error::NotFound("assignment"))?;
    claim_from(&row)
}

async fn attach_reviews(tx: &mut Transaction<'static, Postgres>, labels: &mut [Label]) -> Result<()> {
    if labels.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = labels.iter().map(|l| l.id).collect();
    let rows = sqlx::query(
        "SELECT id, label_id, reviewer, verdict, comment, created_at FROM reviews \
         WHERE label_id = ANY($1) ORDER BY created_at, id",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    for r in rows {
        let rv = rows::review(&r)?;
        if let Some(l) = labels.iter_mut().find(|l| l.id == rv.label_id) {
            l.reviews.push(rv);
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------------------
// The claim
// ------------------------------------------------------------------------------------------------------------
//
// Design (why a claim stays O(1) as a queue grows to millions of samples):
//
// * `samples.open_slots` counts the slots a sample still has (overlap k minus live-or-submitted assignments).
//   It is changed only while the sample row is locked, and a CHECK keeps it >= 0, so "never more than k" is
//   enforced by the database. No claim counts labels or assignments.
// * `samples_claimable_idx` is a partial index on (queue_id, rank, order_key, id) WHERE open_slots > 0:
//   fully served samples leave it, so the first entries are always claimable whatever share of the queue is
//   already labeled. The claim takes the first entry it can lock (`FOR UPDATE SKIP LOCKED`: concurrent
//   labelers never wait on each other, each takes the next free row).
// * "Never the same sample twice" is the unique key (sample_id, labeler); the claim's NOT EXISTS probe on it
//   skips samples this labeler already had. `OFFSET 0` keeps that probe a per-candidate index lookup: pulled
//   up into an anti join, the planner may first read every assignment the labeler ever had (measured 4.9 ms
//   vs 0.115 ms per claim on a 1M-sample, 90 % labeled queue).
// * Samples that are full leave the index only for live rows: the old row version's entry stays until VACUUM,
//   and a search from the front would step over every sample claimed since the last VACUUM (210 index pages
//   per claim after 15k claims). So each queue has a claim start (`queues.claim_rank/_order_key/_sample`,
//   migrations/0005): no sample before it has an open slot. One claim in 16 moves it up to the first sample
//   with an open slot; triggers on `samples` move it back when a slot opens or a sample is added before it.
// * With overlap k = 1 a labeler's own past samples are full (they left the index), except the few it
//   released — so the search starts at the queue's claim start. With k > 1 the samples a labeler already labeled stay in the
//   index until the others catch up, and searching from the front would walk past that labeler's whole
//   backlog on every claim. So each labeler has a cursor (`labeler_cursors`: the position of the last sample
//   handed to it) and the search is an index range scan after the cursor. Slots that open behind the cursor
//   (releases, expiries, samples skipped while locked) are found by the fallback search from the front, which
//   runs only when nothing is left after the cursor.
// * Expired leases are put back by `anvil_reclaim_expired` (a periodic reaper) and, before answering
//   "nothing left", by the claim itself for its own queue.
// * The whole claim is one round trip: the SQL function `anvil_claim` (migrations/0007), which runs the
//   decision read (queue, the labeler's live lease, its cursor) as one statement, then the claim statement
//   from a position (cursor, then claim start, then front, then reclaim + front), with sorts, bitmap scans
//   and sequential scans off so that even a table without statistics yet is walked through
//   samples_claimable_idx (migrations/0008 restates it). The submit of a lease this process handed out is one
//   round trip, the compare-and-set write (`anvil_submit`), validated against what the claim returned
//   (`store/handed.rs`); any other submit first reads what validation needs (`anvil_submit_context`).

/// Maps a row of `anvil_claim` / `anvil_submit_context` (assignment, sample, schema columns) to a claim.
pub(super) fn claim_from(row: &PgRow) -> Result<Claim> {
    rows::claim(row, row.try_get("server_time")?)
}

// ------------------------------------------------------------------------------------------------------------

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_queue(&self, t: &TenantId, actor: &Subject, q: &CreateQueue) -> Result<Queue> {
        let mut tx = self.tx(t).await?;
        sqlx::query("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT (id) DO NOTHING")
            .bind(t.as_str())
            .execute(&mut *tx)
            .await?;
        let id = new_id();
        let res = sqlx::query(
            "INSERT INTO queues (tenant_id, id, name, description, overlap, lease_seconds, policy, schema_version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1)",
        )
        .bind(t.as_str())
        .bind(id)
        .bind(&q.name)
        .bind(&q.description)
        .bind(q.overlap)
        .bind(q.lease_seconds)
        .bind(q.policy.as_str())
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            return Err(if is_unique_violation(&e, "queues_tenant_name_key") {
                Error::conflict("name_taken", format!("a queue named `{}` already exists", q.name))
            } else {
                e.into()
            });
        }
        sqlx::query(
            "INSERT INTO schema_versions (tenant_id, queue_id, version, schema, hash, created_by) \
             VALUES ($1, $2, 1, $3, $4, $5)",
        )
        .bind(t.as_str())
        .bind(id)
        .bind(serde_json::to_value(&q.schema).map_err(anyhow::Error::from)?)
        .bind(schema_hash(&q.schema))
        .bind(actor.as_str())
        .execute(&mut *tx)
        .await?;
        audit(&mut tx, t, actor, "queue.create", id.to_string(), json!({"name": q.name})).await?;
        let out = load_queue(&mut tx, t, id).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn list_queues(&self, t: &TenantId) -> Result<Vec<Queue>> {
        let mut tx = self.tx(t).await?;
        let sql = format!(
            "SELECT {QUEUE_COLS} FROM queues q JOIN schema_versions sv ON sv.queue_id = q.id AND sv.version = \
             q.schema_version WHERE q.tenant_id = $1 ORDER BY q.created_at, q.id LIMIT 1000"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(t.as_str()).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        rows.iter().map(rows::queue).collect()
    }

    async fn get_queue(&self, t: &TenantId, id: Uuid) -> Result<Queue> {
        let mut tx = self.tx(t).await?;
        let q = load_queue(&mut tx, t, id).await?;
        tx.commit().await?;
        Ok(q)
    }

    async fn patch_queue(&self, t: &TenantId, actor: &Subject, id: Uuid, p: &PatchQueue) -> Result<Queue> {
        let mut tx = self.tx(t).await?;
        // Lock the queue row: concurrent schema changes get consecutive versions.
        let cur: Option<(i32, String)> = sqlx::query_as(
            "SELECT schema_version, state FROM queues WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
        )
        .bind(id)
        .bind(t.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let (mut version, state) = cur.ok_or(Error::NotFound("queue"))?;
        if state == "archived"
            && p.state.is_none_or(|s| s == QueueState::Archived)
            && *p != PatchQueue::default()
        {
            return Err(Error::conflict("queue_archived", "an archived queue can only be unarchived"));
        }
        if let Some(schema) = &p.schema {
            let current: Value =
                sqlx::query_scalar("SELECT schema FROM schema_versions WHERE queue_id = $1 AND version = $2")
                    .bind(id)
                    .bind(version)
                    .fetch_one(&mut *tx)
                    .await?;
            let new = serde_json::to_value(schema).map_err(anyhow::Error::from)?;
            if current != new {
                version += 1;
                sqlx::query(
                    "INSERT INTO schema_versions (tenant_id, queue_id, version, schema, hash, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(t.as_str())
                .bind(id)
                .bind(version)
                .bind(new)
                .bind(schema_hash(schema))
                .bind(actor.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
        let res = sqlx::query(
            "UPDATE queues SET name = COALESCE($3, name), description = COALESCE($4, description), \
             state = COALESCE($5, state), lease_seconds = COALESCE($6, lease_seconds), schema_version = $7, \
             updated_at = now() WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id)
        .bind(t.as_str())
        .bind(p.name.as_deref())
        .bind(p.description.as_deref())
        .bind(p.state.map(QueueState::as_str))
        .bind(p.lease_seconds)
        .bind(version)
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            return Err(if is_unique_violation(&e, "queues_tenant_name_key") {
                Error::conflict("name_taken", "a queue with that name already exists")
            } else {
                e.into()
            });
        }
        let detail = json!({
            "name": p.name, "state": p.state.map(QueueState::as_str), "lease_seconds": p.lease_seconds,
            "schema_version": version,
        });
        audit(&mut tx, t, actor, "queue.update", id.to_string(), detail).await?;
        let out = load_queue(&mut tx, t, id).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn queue_stats(&self, t: &TenantId, id: Uuid) -> Result<QueueStats> {
        let mut tx = self.tx(t).await?;
        let q = load_queue(&mut tx, t, id).await?;
        let row = sqlx::query(
            "SELECT
               (SELECT count(*) FROM (SELECT 1 FROM labels l WHERE l.queue_id = $1
                                        AND NOT EXISTS (SELECT 1 FROM gold_answers g WHERE g.sample_id = l.sample_id)
                                      GROUP BY l.sample_id HAVING count(*) >= $2) c) AS completed,
               (SELECT count(*) FROM labels WHERE queue_id = $1) AS submitted,
               (SELECT count(*) FROM assignments WHERE queue_id = $1 AND state = 'leased' AND expires_at >= now())
                 AS leased,
               (SELECT count(*) FROM assignments WHERE queue_id = $1 AND state = 'leased' AND expires_at < now())
                 AS expired",
        )
        .bind(id)
        .bind(q.overlap)
        .fetch_one(&mut *tx)
        .await?;
        // Every labeler with an assignment in the queue: submitted ones counted as labels (one per submitted
        // assignment), live leases and finished ones through their partial indexes (migrations/0008).
        let per = sqlx::query(
            "SELECT labeler, sum(submitted)::bigint AS submitted, sum(leased)::bigint AS leased,
                    sum(released)::bigint AS released
             FROM (SELECT labeler, count(*) AS submitted, 0 AS leased, 0 AS released
                   FROM labels WHERE queue_id = $1 GROUP BY labeler
                   UNION ALL
                   SELECT labeler, 0, count(*), 0
                   FROM assignments WHERE queue_id = $1 AND state = 'leased' GROUP BY labeler
                   UNION ALL
                   SELECT labeler, 0, 0, count(*) FILTER (WHERE state = 'released')
                   FROM assignments WHERE queue_id = $1 AND state IN ('released', 'expired') GROUP BY labeler) x
             GROUP BY labeler ORDER BY labeler LIMIT 10000",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows::queue_stats(&q, &row, &per)
    }

    async fn add_samples(
        &self,
        t: &TenantId,
        actor: &Subject,
        queue: Uuid,
        samples: &[NewSample],
    ) -> Result<AddSamplesResult> {
        let mut tx = self.tx(t).await?;
        let q: Option<(i32, String, String)> =
            sqlx::query_as("SELECT overlap, policy, state FROM queues WHERE id = $1 AND tenant_id = $2")
                .bind(queue)
                .bind(t.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let (overlap, policy, state) = q.ok_or(Error::NotFound("queue"))?;
        if state == "archived" {
            return Err(Error::conflict("queue_archived", "samples cannot be added to an archived queue"));
        }
        let ids: Vec<Uuid> = samples.iter().map(|_| new_id()).collect();
        let ext: Vec<&str> = samples.iter().map(|s| s.external_id.as_str()).collect();
        let payloads: Vec<Value> = samples.iter().map(|s| s.payload.clone()).collect();
        let prio: Vec<i32> = samples.iter().map(|s| s.priority).collect();
        // One statement for the batch; ON CONFLICT keeps the first sample of an external_id (idempotent
        // re-import). The order key is the insertion sequence, or a fixed random number for policy random.
        let created: i64 = sqlx::query_scalar(
            "WITH ins AS (
                INSERT INTO samples (tenant_id, id, queue_id, external_id, payload, priority, rank, order_key,
                                     open_slots)
                SELECT $1, u.id, $2, u.ext, u.payload, u.prio, -u.prio,
                       CASE WHEN $5 = 'random' THEN (random() * 9007199254740991)::bigint
                            ELSE nextval('sample_order_seq') END,
                       $6
                FROM unnest($3::uuid[], $4::text[], $7::jsonb[], $8::integer[])
                     WITH ORDINALITY AS u(id, ext, payload, prio, ord)
                ORDER BY u.ord
                ON CONFLICT (queue_id, external_id) DO NOTHING
                RETURNING 1
            ), cnt AS (
                UPDATE queues SET sample_count = sample_count + (SELECT count(*) FROM ins), updated_at = now()
                WHERE id = $2
            )
            SELECT count(*) FROM ins",
        )
        .bind(t.as_str())
        .bind(queue)
        .bind(&ids)
        .bind(&ext)
        .bind(policy)
        .bind(overlap)
        .bind(&payloads)
        .bind(&prio)
        .fetch_one(&mut *tx)
        .await?;
        let total = i64::try_from(samples.len()).unwrap_or(i64::MAX);
        audit(
            &mut tx,
            t,
            actor,
            "samples.add",
            queue.to_string(),
            json!({"created": created, "sent": total}),
        )
        .await?;
        tx.commit().await?;
        Ok(AddSamplesResult { created, existing: total - created })
    }

    async fn claim(&self, t: &TenantId, labeler: &Subject, queue: Uuid) -> Result<Option<Claim>> {
        // One round trip: the whole claim runs in `anvil_claim` (migrations/0007), in its own transaction.
        let row = sqlx::query("SELECT * FROM anvil_claim($1, $2, $3, $4)")
            .bind(t.as_str())
            .bind(queue)
            .bind(labeler.as_str())
            .bind(new_id())
            .fetch_one(&self.pool)
            .await?;
        let outcome: String = row.try_get("outcome")?;
        match outcome.as_str() {
            "live" | "new" => {
                let c = claim_from(&row)?;
                self.handed.remember(t, &c);
                Ok(Some(c))
            }
            "none" | "inactive" => Ok(None),
            "not_found" => Err(Error::NotFound("queue")),
            other => Err(Error::Internal(anyhow::anyhow!("anvil_claim answered `{other}`"))),
        }
    }

    async fn get_assignment(&self, t: &TenantId, id: Uuid, labeler: Option<&Subject>) -> Result<Claim> {
        let mut tx = self.tx(t).await?;
        let c = load_claim(&mut tx, t, id, labeler).await?;
        tx.commit().await?;
        Ok(c)
    }

    async fn heartbeat(&self, t: &TenantId, labeler: &Subject, id: Uuid) -> Result<Assignment> {
        let mut tx = self.tx(t).await?;
        // Extends a lease that is still the labeler's; a lease past its expiry that has not been reclaimed yet
        // is still the labeler's (its slot was never given away), so it is extended too.
        let sql = format!(
            "UPDATE assignments a SET expires_at = now() + make_interval(secs => q.lease_seconds),
                    version = a.version + 1
             FROM queues q
             WHERE a.id = $1 AND a.tenant_id = $2 AND a.labeler = $3 AND a.state = 'leased' AND q.id = a.queue_id
             RETURNING {ASSIGNMENT_COLS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(t.as_str())
            .bind(labeler.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let out = match row {
            Some(r) => rows::assignment(&r)?,
            None => {
                let c = load_claim(&mut tx, t, id, Some(labeler)).await?;
                return Err(lease_gone(c.assignment.state));
            }
        };
        tx.commit().await?;
        Ok(out)
    }

    async fn release(&self, t: &TenantId, labeler: &Subject, id: Uuid, reason: &str) -> Result<Assignment> {
        let mut tx = self.tx(t).await?;
        let sql = format!(
            "WITH r AS (
                UPDATE assignments a SET state = 'released', version = a.version + 1, finished_at = now(),
                       release_reason = $4
                WHERE a.id = $1 AND a.tenant_id = $2 AND a.labeler = $3 AND a.state = 'leased'
                RETURNING {ASSIGNMENT_COLS}
             ), freed AS (
                UPDATE samples s SET open_slots = s.open_slots + 1 FROM r WHERE s.id = r.sample_id
             )
             SELECT * FROM r"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(t.as_str())
            .bind(labeler.as_str())
            .bind(reason)
            .fetch_optional(&mut *tx)
            .await?;
        let out = match row {
            Some(r) => rows::assignment(&r)?,
            None => {
                let c = load_claim(&mut tx, t, id, Some(labeler)).await?;
                match c.assignment.state {
                    // releasing twice is answered like the first time
                    AssignmentState::Released => c.assignment,
                    s => return Err(lease_gone(s)),
                }
            }
        };
        tx.commit().await?;
        Ok(out)
    }

    async fn reclaim_expired(&self, limit: i32) -> Result<u64> {
        let n: i32 =
            sqlx::query_scalar("SELECT anvil_reclaim_expired($1)").bind(limit).fetch_one(&self.pool).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn submit(
        &self,
        t: &TenantId,
        labeler: &Subject,
        assignment: Uuid,
        payload: &Value,
        validate: LabelValidator<'_>,
    ) -> Result<Submitted> {
        // A lease this process handed out: validate against what the claim returned, then one round trip.
        // (An invalid payload takes the full path: if a label is already there, that answer comes first.)
        let handed = self.handed.take(t, labeler, assignment);
        if let Some(h) = handed
            && validate(&h.schema, &h.sample.payload, payload).is_empty()
        {
            return self.write_label(t, labeler, &h.assignment, &h.sample, payload).await;
        }
        // Otherwise two round trips, each its own transaction: what validation needs (and any label already
        // there), then the compare-and-set write. Nothing is written between them, so nothing is half-done.
        let row = sqlx::query("SELECT * FROM anvil_submit_context($1, $2, $3)")
            .bind(t.as_str())
            .bind(assignment)
            .bind(labeler.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("assignment"))?;
        let ctx = claim_from(&row)?;
        if let Some(id) = row.try_get::<Option<Uuid>, _>("label_id")? {
            return resubmitted(existing_from(&ctx, id, &row)?, payload);
        }
        let errs = validate(&ctx.schema, &ctx.sample.payload, payload);
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        self.write_label(t, labeler, &ctx.assignment, &ctx.sample, payload).await
    }

    async fn get_label(&self, t: &TenantId, id: Uuid) -> Result<Label> {
        let mut tx = self.tx(t).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LABEL_COLS} FROM labels l JOIN samples s ON s.id = l.sample_id \
             WHERE l.id = $1 AND l.tenant_id = $2"
        )))
        .bind(id)
        .bind(t.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("label"))?;
        let mut labels = vec![rows::label(&row)?];
        attach_reviews(&mut tx, &mut labels).await?;
        tx.commit().await?;
        labels.pop().ok_or(Error::NotFound("label"))
    }

    async fn list_labels(&self, t: &TenantId, queue: Uuid, f: &LabelFilter) -> Result<Vec<Label>> {
        let mut tx = self.tx(t).await?;
        // Ensures the queue exists for this tenant (404 otherwise, not an empty page).
        load_queue(&mut tx, t, queue).await?;
        // Keyset pagination on the time-ordered label id (labels_queue_id_idx); the first page starts after
        // the nil UUID so the comparison is always an index range condition.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LABEL_COLS} FROM labels l JOIN samples s ON s.id = l.sample_id
             WHERE l.queue_id = $1 AND l.tenant_id = $2
               AND l.id > $3
               AND ($4::uuid IS NULL OR l.sample_id = $4)
               AND ($5::text IS NULL OR l.labeler = $5)
             ORDER BY l.id LIMIT $6"
        )))
        .bind(queue)
        .bind(t.as_str())
        .bind(f.after.unwrap_or(Uuid::nil()))
        .bind(f.sample_id)
        .bind(f.labeler.as_deref())
        .bind(i64::from(f.limit))
        .fetch_all(&mut *tx)
        .await?;
        let mut labels: Vec<Label> = rows.iter().map(rows::label).collect::<Result<_>>()?;
        attach_reviews(&mut tx, &mut labels).await?;
        tx.commit().await?;
        Ok(labels)
    }

    async fn review(
        &self,
        t: &TenantId,
        reviewer: &Subject,
        label: Uuid,
        verdict: Verdict,
        comment: &str,
    ) -> Result<Review> {
        let mut tx = self.tx(t).await?;
        let exists: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM labels WHERE id = $1 AND tenant_id = $2")
                .bind(label)
                .bind(t.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        exists.ok_or(Error::NotFound("label"))?;
        // Reject -> relabel: a label's first reject (its latest review was not one already) opens one more
        // slot on its sample, for a labeler who has not had it (the claim never hands a sample twice to one
        // labeler). A gold sample stays closed (samples_gold_stays_closed).
        let prev: Option<String> = sqlx::query_scalar(
            "SELECT verdict FROM reviews WHERE label_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(label)
        .fetch_optional(&mut *tx)
        .await?;
        if verdict == Verdict::Reject && prev.as_deref() != Some("reject") {
            sqlx::query(
                "UPDATE samples SET open_slots = open_slots + 1 WHERE id = (SELECT sample_id FROM labels WHERE id = $1)",
            )
            .bind(label)
            .execute(&mut *tx)
            .await?;
        }
        let row = sqlx::query(
            "INSERT INTO reviews (tenant_id, id, label_id, reviewer, verdict, comment) VALUES ($1, $2, $3, $4, $5, $6)
             RETURNING id, label_id, reviewer, verdict, comment, created_at",
        )
        .bind(t.as_str())
        .bind(new_id())
        .bind(label)
        .bind(reviewer.as_str())
        .bind(verdict.as_str())
        .bind(comment)
        .fetch_one(&mut *tx)
        .await?;
        audit(&mut tx, t, reviewer, "label.review", label.to_string(), json!({"verdict": verdict.as_str()}))
            .await?;
        tx.commit().await?;
        rows::review(&row)
    }

    async fn create_token(&self, t: &TenantId, actor: &Subject, tok: &NewToken) -> Result<TokenInfo> {
        let mut tx = self.tx(t).await?;
        sqlx::query("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT (id) DO NOTHING")
            .bind(t.as_str())
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(concat!(
            "INSERT INTO api_tokens (tenant_id, id, name, role, subject, token_hash, created_by, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
            rows::token_cols!()
        ))
        .bind(t.as_str())
        .bind(new_id())
        .bind(&tok.name)
        .bind(tok.role.as_str())
        .bind(&tok.subject)
        .bind(&tok.hash)
        .bind(actor.as_str())
        .bind(tok.expires_at)
        .fetch_one(&mut *tx)
        .await?;
        let info = rows::token(&row)?;
        audit(&mut tx, t, actor, "token.create", info.id.to_string(), json!({"role": tok.role.as_str()}))
            .await?;
        tx.commit().await?;
        Ok(info)
    }

    async fn list_tokens(&self, t: &TenantId) -> Result<Vec<TokenInfo>> {
        let mut tx = self.tx(t).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            rows::token_cols!(),
            " FROM api_tokens WHERE tenant_id = $1 ORDER BY created_at DESC, id LIMIT 1000"
        ))
        .bind(t.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(rows::token).collect()
    }

    async fn revoke_token(&self, t: &TenantId, actor: &Subject, id: Uuid) -> Result<TokenInfo> {
        let mut tx = self.tx(t).await?;
        let row = sqlx::query(concat!(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 AND tenant_id = $2
             RETURNING ",
            rows::token_cols!()
        ))
        .bind(id)
        .bind(t.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("token"))?;
        audit(&mut tx, t, actor, "token.revoke", id.to_string(), json!({})).await?;
        tx.commit().await?;
        rows::token(&row)
    }

    async fn find_token(&self, hash: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query(
            "SELECT tenant_id, id, role, subject, expires_at, revoked_at FROM anvil_lookup_token($1)",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        // A stored tenant, subject or role this version does not know is an error, not a missing token.
        row.as_ref().map(rows::token_record).transpose()
    }
}

impl PgStore {
    /// The submit's write, after validation: one round trip (`anvil_submit`).
    async fn write_label(
        &self,
        t: &TenantId,
        labeler: &Subject,
        a: &Assignment,
        sample: &Sample,
        payload: &Value,
    ) -> Result<Submitted> {
        let written = sqlx::query("SELECT * FROM anvil_submit($1, $2, $3, $4, $5)")
            .bind(t.as_str())
            .bind(a.id)
            .bind(labeler.as_str())
            .bind(new_id())
            .bind(payload)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = written else {
            // Lost the race (reclaimed, released, a concurrent submit of this same assignment, or a label
            // that was already there).
            return self.submit_after_race(t, labeler, a.id, payload).await;
        };
        Ok(Submitted::Created(Label {
            id: row.try_get("id")?,
            queue_id: a.queue_id,
            sample_id: sample.id,
            external_id: sample.external_id.clone(),
            assignment_id: a.id,
            labeler: labeler.as_str().to_string(),
            schema_version: a.schema_version,
            payload: payload.clone(),
            created_at: row.try_get("created_at")?,
            reviews: Vec::new(),
        }))
    }

    /// After a submit's compare-and-set matched nothing: decide between "already submitted (same payload)",
    /// "conflict" and "the lease is gone", from a fresh snapshot.
    async fn submit_after_race(
        &self,
        t: &TenantId,
        labeler: &Subject,
        assignment: Uuid,
        payload: &Value,
    ) -> Result<Submitted> {
        let row = sqlx::query("SELECT * FROM anvil_submit_context($1, $2, $3)")
            .bind(t.as_str())
            .bind(assignment)
            .bind(labeler.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound("assignment"))?;
        let ctx = claim_from(&row)?;
        match row.try_get::<Option<Uuid>, _>("label_id")? {
            Some(id) => resubmitted(existing_from(&ctx, id, &row)?, payload),
            None => Err(lease_gone(ctx.assignment.state)),
        }
    }
}

/// The label already submitted for an assignment, from a row of `anvil_submit_context`.
fn existing_from(ctx: &Claim, id: Uuid, row: &PgRow) -> Result<Label> {
    Ok(Label {
        id,
        queue_id: ctx.assignment.queue_id,
        sample_id: ctx.sample.id,
        external_id: ctx.sample.external_id.clone(),
        assignment_id: ctx.assignment.id,
        labeler: ctx.assignment.labeler.clone(),
        schema_version: ctx.assignment.schema_version,
        payload: row.try_get("label_payload")?,
        created_at: row.try_get("label_created_at")?,
        reviews: Vec::new(),
    })
}
