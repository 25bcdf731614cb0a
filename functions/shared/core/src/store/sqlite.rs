//! The SQLite adapter of the store port: the embedded default of `anvil serve` with no configuration.
//!
//! SQLite allows one writer at a time; several connections each writing under busy_timeout starve and fail
//! with `database is locked` under load. So every write transaction goes through ONE writer connection (a pool
//! of size one: its wait queue is the in-process write queue) and reads go through a pool of readers (WAL
//! lets them run beside the writer). Because writes are serialized, a claim's read-then-write needs no
//! SKIP LOCKED: nothing can change between its SELECT and its UPDATE.
//!
//! Durability: `synchronous=FULL` by default (an acknowledged label survives a power cut);
//! `ANVIL_SQLITE_SYNCHRONOUS=normal` is ~10x faster and survives a process crash but not a power cut.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anvil_types::{
    AddSamplesResult, Assignment, AssignmentPolicy, AssignmentState, Claim, CreateQueue, Label, LabelSchema,
    NewSample, PatchQueue, Queue, QueueState, QueueStats, Review, Sample, TokenInfo, Verdict,
};
use async_trait::async_trait;
use serde_json::{Value, json};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqliteConnection, SqlitePool, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use super::handed::HandedLeases;
use super::rows::{self, ASSIGNMENT_COLS, StoredRow, TOKEN_COLS};
use super::sqlite_group::GroupWriter;
use super::{
    LabelFilter, LabelValidator, NewToken, Store, Submitted, TokenRecord, lease_gone, new_id, resubmitted,
};
use crate::domain::{Subject, TenantId};
use crate::error::{Error, Result, is_unique_violation};
use crate::schema::schema_hash;

/// The embedded migrations of SQLite (migrations/sqlite/).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../../migrations/sqlite");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
    /// Claims and submits: group commit on the writer connection (see sqlite_group.rs).
    pub(super) group: GroupWriter,
    /// Leases handed out by this process: their submit skips the context read (store/handed.rs).
    pub(super) handed: Arc<HandedLeases>,
}

/// How hard SQLite syncs to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync on every commit: survives power loss.
    Full,
    /// fsync at checkpoints: survives a process crash, may lose the last commits on power loss.
    Normal,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, applies the migrations, and builds the pools.
    pub async fn open(path: &Path, durability: Durability) -> anyhow::Result<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            })
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("temp_store", "memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts.clone())
            .await?;
        MIGRATOR.run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts.read_only(true))
            .await?;
        let group = GroupWriter::start(writer.clone());
        Ok(Self { writer, readers, group, handed: Arc::default() })
    }

    /// Parses `sqlite://path` (or a bare path).
    pub fn path_from_url(url: &str) -> anyhow::Result<std::path::PathBuf> {
        let p = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        let p = p.split('?').next().unwrap_or(p);
        anyhow::ensure!(!p.is_empty(), "DATABASE_URL names no SQLite file");
        Ok(std::path::PathBuf::from_str(p)?)
    }

    /// The writer pool, for tests that need to reach under the store (forcing an expiry).
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// The reader pool (read-only connections), as the store reads with it.
    pub fn readers(&self) -> &SqlitePool {
        &self.readers
    }

    pub(super) async fn write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin().await?)
    }

    pub(super) async fn read(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.readers.begin().await?)
    }
}

// ------------------------------------------------------------------------------------------------------------
// Conversions
// ------------------------------------------------------------------------------------------------------------

pub fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(super) fn ts(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

macro_rules! queue_select {
    ($($extra:literal)?) => {
        concat!(
            "SELECT ",
            rows::queue_cols!(),
            $($extra,)?
            " FROM queues q JOIN schema_versions sv ON sv.queue_id = q.id AND sv.version = q.schema_version"
        )
    };
}

const QUEUE_SQL: &str = queue_select!();

/// The claim's first read: the queue, its schema and the labeler's lease in it, if any (at most one:
/// assignments_one_live_lease_idx).
const CLAIM_QUEUE_SQL: &str = concat!(
    queue_select!(", la.id AS live_id, la.version AS live_version, la.expires_at AS live_expires_at"),
    " LEFT JOIN assignments la ON la.queue_id = q.id AND la.labeler = ?1 AND la.state = 'leased'
     WHERE q.id = ?2 AND q.tenant_id = ?3"
);

const LABEL_SQL: &str =
    concat!("SELECT ", rows::label_cols!(), " FROM labels l JOIN samples s ON s.id = l.sample_id");

pub(super) async fn audit(
    tx: &mut SqliteConnection,
    t: &TenantId,
    actor: &Subject,
    action: &str,
    target: String,
    detail: Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, id, actor, action, target, detail, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(t.as_str())
    .bind(new_id().to_string())
    .bind(actor.as_str())
    .bind(action)
    .bind(target)
    .bind(detail.to_string())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub(super) async fn load_queue(tx: &mut SqliteConnection, t: &TenantId, id: Uuid) -> Result<Queue> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{QUEUE_SQL} WHERE q.id = ? AND q.tenant_id = ?")))
        .bind(id.to_string())
        .bind(t.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("queue"))?;
    rows::queue(&row)
}

pub(super) async fn load_claim(
    tx: &mut SqliteConnection,
    t: &TenantId,
    id: Uuid,
    labeler: Option<&Subject>,
) -> Result<Claim> {
    let sql = format!(
        "SELECT {ASSIGNMENT_COLS}, s.external_id, s.payload, s.priority, sv.schema
         FROM assignments a
         JOIN samples s ON s.id = a.sample_id
         JOIN schema_versions sv ON sv.queue_id = a.queue_id AND sv.version = a.schema_version
         WHERE a.id = ? AND a.tenant_id = ? AND (? IS NULL OR a.labeler = ?)"
    );
    let who = labeler.map(Subject::as_str);
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .bind(t.as_str())
        .bind(who)
        .bind(who)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("assignment"))?;
    claim_row(&row)
}

/// An assignment row joined with its sample and schema, as a claim (SQLite has no server clock to ask).
fn claim_row(row: &SqliteRow) -> Result<Claim> {
    rows::claim(row, OffsetDateTime::now_utc())
}

/// What a submit needs before it can validate, in one statement: the labeler's assignment with its sample and
/// schema, and the label already submitted for it, if any.
async fn submit_context(
    conn: &mut SqliteConnection,
    t: &TenantId,
    id: Uuid,
    labeler: &Subject,
) -> Result<(Claim, Option<Label>)> {
    let sql = format!(
        "SELECT {ASSIGNMENT_COLS}, s.external_id, s.payload, s.priority, sv.schema,
                l.id AS label_id, l.payload AS label_payload, l.created_at AS label_created_at
         FROM assignments a
         JOIN samples s ON s.id = a.sample_id
         JOIN schema_versions sv ON sv.queue_id = a.queue_id AND sv.version = a.schema_version
         LEFT JOIN labels l ON l.assignment_id = a.id
         WHERE a.id = ? AND a.tenant_id = ? AND a.labeler = ?"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .bind(t.as_str())
        .bind(labeler.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(Error::NotFound("assignment"))?;
    let c = claim_row(&row)?;
    let label = match row.try_get::<Option<String>, _>("label_id")? {
        None => None,
        Some(_) => Some(Label {
            id: row.uuid("label_id")?,
            queue_id: c.assignment.queue_id,
            sample_id: c.sample.id,
            external_id: c.sample.external_id.clone(),
            assignment_id: c.assignment.id,
            labeler: c.assignment.labeler.clone(),
            schema_version: c.assignment.schema_version,
            payload: row.json("label_payload")?,
            created_at: row.time("label_created_at")?,
            reviews: Vec::new(),
        }),
    };
    Ok((c, label))
}

async fn attach_reviews(tx: &mut SqliteConnection, labels: &mut [Label]) -> Result<()> {
    if labels.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = labels.iter().map(|l| l.id.to_string()).collect();
    let rows = sqlx::query(
        "SELECT id, label_id, reviewer, verdict, comment, created_at FROM reviews
         WHERE label_id IN (SELECT value FROM json_each(?)) ORDER BY created_at, id",
    )
    .bind(serde_json::to_string(&ids).map_err(anyhow::Error::from)?)
    .fetch_all(&mut *tx)
    .await?;
    for r in rows {
        let rv = rows::review(&r)?;
        if let Some(l) = labels.iter_mut().find(|l| l.id == rv.label_id) {
            l.reviews.push(rv);
        }
    }
    Ok(())
}

async fn existing_label(tx: &mut SqliteConnection, assignment: Uuid) -> Result<Option<Label>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{LABEL_SQL} WHERE l.assignment_id = ?")))
        .bind(assignment.to_string())
        .fetch_optional(&mut *tx)
        .await?;
    row.as_ref().map(rows::label).transpose()
}

/// Returns expired leases of one queue (or all queues) to the pool; runs inside the writer transaction.
async fn reclaim(tx: &mut SqliteConnection, queue: Option<Uuid>, limit: i64) -> Result<u64> {
    let now = now_ms();
    let rows = sqlx::query(
        "SELECT id, sample_id FROM assignments
         WHERE state = 'leased' AND expires_at < ? AND (? IS NULL OR queue_id = ?)
         ORDER BY expires_at LIMIT ?",
    )
    .bind(now)
    .bind(queue.map(|q| q.to_string()))
    .bind(queue.map(|q| q.to_string()))
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let mut n = 0;
    for r in rows {
        let id: String = r.try_get("id")?;
        let sample: String = r.try_get("sample_id")?;
        let changed = sqlx::query(
            "UPDATE assignments SET state = 'expired', version = version + 1, finished_at = ?
             WHERE id = ? AND state = 'leased' AND expires_at < ?",
        )
        .bind(now)
        .bind(&id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 {
            sqlx::query("UPDATE samples SET open_slots = open_slots + 1 WHERE id = ?")
                .bind(&sample)
                .execute(&mut *tx)
                .await?;
            n += 1;
        }
    }
    Ok(n)
}

struct ClaimCtx<'a> {
    t: &'a TenantId,
    labeler: &'a Subject,
    queue: Uuid,
    overlap: i32,
    lease_seconds: i32,
    schema_version: i32,
    schema: &'a LabelSchema,
}

/// Takes the first open sample (after the cursor when given) that this labeler never had.
/// See the claim design in `postgres.rs`; the same index and cursor serve here.
async fn try_claim(
    tx: &mut SqliteConnection,
    c: &ClaimCtx<'_>,
    cursor: Option<(i64, i64, String)>,
) -> Result<Option<Claim>> {
    // Built at compile time: the statement text is the same on every claim (sqlx caches its preparation).
    // One statement finds the candidate and takes its slot (one hand-off to SQLite's thread, not two).
    macro_rules! candidate {
        ($after_cursor:literal) => {
            concat!(
                "UPDATE samples SET open_slots = open_slots - 1
                 WHERE id = (SELECT s.id FROM samples s
                             WHERE s.queue_id = ? AND s.open_slots > 0
                               AND NOT EXISTS (SELECT 1 FROM assignments x
                                               WHERE x.sample_id = s.id AND x.labeler = ?)",
                $after_cursor,
                "            ORDER BY s.rank, s.order_key, s.id LIMIT 1)
                   AND open_slots > 0
                 RETURNING id, rank, order_key, external_id, payload, priority"
            )
        };
    }
    let q = c.queue.to_string();
    let row = match &cursor {
        Some((rank, key, id)) => {
            sqlx::query(candidate!(" AND (s.rank, s.order_key, s.id) > (?, ?, ?)"))
                .bind(&q)
                .bind(c.labeler.as_str())
                .bind(rank)
                .bind(key)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
        }
        None => {
            sqlx::query(candidate!("")).bind(&q).bind(c.labeler.as_str()).fetch_optional(&mut *tx).await?
        }
    };
    let Some(row) = row else { return Ok(None) };
    let sample_id: String = row.try_get("id")?;
    let rank: i64 = row.try_get("rank")?;
    let key: i64 = row.try_get("order_key")?;
    let now = now_ms();
    let id = new_id();
    sqlx::query(
        "INSERT INTO assignments (tenant_id, id, queue_id, sample_id, labeler, state, schema_version, leased_at,
                                  expires_at)
         VALUES (?, ?, ?, ?, ?, 'leased', ?, ?, ?)",
    )
    .bind(c.t.as_str())
    .bind(id.to_string())
    .bind(&q)
    .bind(&sample_id)
    .bind(c.labeler.as_str())
    .bind(c.schema_version)
    .bind(now)
    .bind(now + i64::from(c.lease_seconds) * 1000)
    .execute(&mut *tx)
    .await?;
    if c.overlap > 1 {
        sqlx::query(
            "INSERT INTO labeler_cursors (tenant_id, queue_id, labeler, rank, order_key, sample_id)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (queue_id, labeler) DO UPDATE
             SET rank = excluded.rank, order_key = excluded.order_key, sample_id = excluded.sample_id
             WHERE (labeler_cursors.rank, labeler_cursors.order_key, labeler_cursors.sample_id)
                 < (excluded.rank, excluded.order_key, excluded.sample_id)",
        )
        .bind(c.t.as_str())
        .bind(&q)
        .bind(c.labeler.as_str())
        .bind(rank)
        .bind(key)
        .bind(&sample_id)
        .execute(&mut *tx)
        .await?;
    }
    let sample_uuid = Uuid::parse_str(&sample_id).map_err(anyhow::Error::from)?;
    Ok(Some(Claim {
        assignment: Assignment {
            id,
            queue_id: c.queue,
            sample_id: sample_uuid,
            labeler: c.labeler.as_str().to_string(),
            state: AssignmentState::Leased,
            version: 1,
            schema_version: c.schema_version,
            leased_at: ts(now),
            expires_at: ts(now + i64::from(c.lease_seconds) * 1000),
            release_reason: None,
        },
        sample: Sample {
            id: sample_uuid,
            queue_id: c.queue,
            external_id: row.try_get("external_id")?,
            payload: row.json("payload")?,
            priority: row.try_get("priority")?,
        },
        schema: c.schema.clone(),
        server_time: ts(now),
    }))
}

/// The claim, on the writer's turn (see the claim design in `postgres.rs`; the same index and cursor serve).
async fn claim_in(
    tx: &mut SqliteConnection,
    t: &TenantId,
    labeler: &Subject,
    queue: Uuid,
) -> Result<Option<Claim>> {
    let row = sqlx::query(CLAIM_QUEUE_SQL)
        .bind(labeler.as_str())
        .bind(queue.to_string())
        .bind(t.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("queue"))?;
    let q = rows::queue(&row)?;
    if row.try_get::<Option<String>, _>("live_id")?.is_some() {
        let id = row.uuid("live_id")?;
        let expires: i64 = row.try_get("live_expires_at")?;
        let now = now_ms();
        if expires > now {
            return Ok(Some(load_claim(tx, t, id, Some(labeler)).await?));
        }
        let version: i32 = row.try_get("live_version")?;
        let changed = sqlx::query(
            "UPDATE assignments SET state = 'expired', version = version + 1, finished_at = ?
             WHERE id = ? AND version = ? AND state = 'leased' AND expires_at < ?",
        )
        .bind(now)
        .bind(id.to_string())
        .bind(version)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 {
            sqlx::query(
                "UPDATE samples SET open_slots = open_slots + 1 WHERE id = (SELECT sample_id FROM assignments WHERE id = ?)",
            )
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        }
    }
    if q.state != QueueState::Active {
        return Ok(None);
    }
    let ctx = ClaimCtx {
        t,
        labeler,
        queue,
        overlap: q.overlap,
        lease_seconds: q.lease_seconds,
        schema_version: q.schema_version,
        schema: &q.schema,
    };
    let mut found = None;
    if q.overlap > 1 {
        let cur = sqlx::query(
            "SELECT rank, order_key, sample_id FROM labeler_cursors WHERE queue_id = ? AND labeler = ?",
        )
        .bind(queue.to_string())
        .bind(labeler.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(c) = cur {
            found = try_claim(
                tx,
                &ctx,
                Some((c.try_get("rank")?, c.try_get("order_key")?, c.try_get("sample_id")?)),
            )
            .await?;
        }
    }
    if found.is_none() {
        found = try_claim(tx, &ctx, None).await?;
    }
    if found.is_none() && reclaim(tx, Some(queue), 10_000).await? > 0 {
        found = try_claim(tx, &ctx, None).await?;
    }
    Ok(found)
}

/// The submit's write, on the writer's turn: compare-and-set on the assignment (a lease still `leased`, even
/// past its expiry while not reclaimed), then the label.
async fn submit_in(
    tx: &mut SqliteConnection,
    t: &TenantId,
    labeler: &Subject,
    ctx: &Claim,
    payload: Value,
) -> Result<Submitted> {
    let assignment = ctx.assignment.id;
    let now = now_ms();
    let changed = sqlx::query(
        "UPDATE assignments SET state = 'submitted', version = version + 1, finished_at = ?
         WHERE id = ? AND tenant_id = ? AND labeler = ? AND state = 'leased'",
    )
    .bind(now)
    .bind(assignment.to_string())
    .bind(t.as_str())
    .bind(labeler.as_str())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed != 1 {
        // Lost the race: a concurrent submit of this assignment (same payload: the same label), or the lease
        // is gone.
        if let Some(label) = existing_label(tx, assignment).await? {
            return resubmitted(label, &payload);
        }
        let c = load_claim(tx, t, assignment, Some(labeler)).await?;
        return Err(lease_gone(c.assignment.state));
    }
    let id = new_id();
    sqlx::query(
        "INSERT INTO labels (tenant_id, id, queue_id, sample_id, assignment_id, labeler, schema_version, payload,
                             created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(t.as_str())
    .bind(id.to_string())
    .bind(ctx.assignment.queue_id.to_string())
    .bind(ctx.sample.id.to_string())
    .bind(assignment.to_string())
    .bind(labeler.as_str())
    .bind(ctx.assignment.schema_version)
    .bind(payload.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(Submitted::Created(Label {
        id,
        queue_id: ctx.assignment.queue_id,
        sample_id: ctx.sample.id,
        external_id: ctx.sample.external_id.clone(),
        assignment_id: assignment,
        labeler: labeler.as_str().to_string(),
        schema_version: ctx.assignment.schema_version,
        payload,
        created_at: ts(now),
        reviews: Vec::new(),
    }))
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.readers).await?;
        Ok(())
    }

    async fn create_queue(&self, t: &TenantId, actor: &Subject, q: &CreateQueue) -> Result<Queue> {
        let mut tx = self.write().await?;
        let now = now_ms();
        sqlx::query("INSERT INTO tenants (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING")
            .bind(t.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let id = new_id();
        let res = sqlx::query(
            "INSERT INTO queues (tenant_id, id, name, description, overlap, lease_seconds, policy, schema_version,
                                 created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
        )
        .bind(t.as_str())
        .bind(id.to_string())
        .bind(&q.name)
        .bind(&q.description)
        .bind(q.overlap)
        .bind(q.lease_seconds)
        .bind(q.policy.as_str())
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            return Err(if is_unique_violation(&e, "queues_tenant_name_key") || is_sqlite_unique(&e) {
                Error::conflict("name_taken", format!("a queue named `{}` already exists", q.name))
            } else {
                e.into()
            });
        }
        sqlx::query(
            "INSERT INTO schema_versions (tenant_id, queue_id, version, schema, hash, created_by, created_at)
             VALUES (?, ?, 1, ?, ?, ?, ?)",
        )
        .bind(t.as_str())
        .bind(id.to_string())
        .bind(serde_json::to_string(&q.schema).map_err(anyhow::Error::from)?)
        .bind(schema_hash(&q.schema))
        .bind(actor.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        audit(&mut tx, t, actor, "queue.create", id.to_string(), json!({"name": q.name})).await?;
        let out = load_queue(&mut tx, t, id).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn list_queues(&self, t: &TenantId) -> Result<Vec<Queue>> {
        let mut tx = self.read().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{QUEUE_SQL} WHERE q.tenant_id = ? ORDER BY q.created_at, q.id LIMIT 1000"
        )))
        .bind(t.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(rows::queue).collect()
    }

    async fn get_queue(&self, t: &TenantId, id: Uuid) -> Result<Queue> {
        let mut tx = self.read().await?;
        let q = load_queue(&mut tx, t, id).await?;
        tx.commit().await?;
        Ok(q)
    }

    async fn patch_queue(&self, t: &TenantId, actor: &Subject, id: Uuid, p: &PatchQueue) -> Result<Queue> {
        let mut tx = self.write().await?;
        let cur = load_queue(&mut tx, t, id).await?;
        if cur.state == QueueState::Archived
            && p.state.is_none_or(|s| s == QueueState::Archived)
            && *p != PatchQueue::default()
        {
            return Err(Error::conflict("queue_archived", "an archived queue can only be unarchived"));
        }
        let mut version = cur.schema_version;
        let now = now_ms();
        if let Some(schema) = &p.schema
            && *schema != cur.schema
        {
            version += 1;
            sqlx::query(
                "INSERT INTO schema_versions (tenant_id, queue_id, version, schema, hash, created_by, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(t.as_str())
            .bind(id.to_string())
            .bind(version)
            .bind(serde_json::to_string(schema).map_err(anyhow::Error::from)?)
            .bind(schema_hash(schema))
            .bind(actor.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let res = sqlx::query(
            "UPDATE queues SET name = COALESCE(?, name), description = COALESCE(?, description),
             state = COALESCE(?, state), lease_seconds = COALESCE(?, lease_seconds), schema_version = ?,
             updated_at = ? WHERE id = ? AND tenant_id = ?",
        )
        .bind(p.name.as_deref())
        .bind(p.description.as_deref())
        .bind(p.state.map(QueueState::as_str))
        .bind(p.lease_seconds)
        .bind(version)
        .bind(now)
        .bind(id.to_string())
        .bind(t.as_str())
        .execute(&mut *tx)
        .await;
        if let Err(e) = res {
            return Err(if is_sqlite_unique(&e) {
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
        let mut tx = self.read().await?;
        let q = load_queue(&mut tx, t, id).await?;
        let now = now_ms();
        let qid = id.to_string();
        let row = sqlx::query(
            "SELECT
               (SELECT count(*) FROM (SELECT 1 FROM labels l WHERE l.queue_id = ?1
                                        AND NOT EXISTS (SELECT 1 FROM gold_answers g WHERE g.sample_id = l.sample_id)
                                      GROUP BY l.sample_id HAVING count(*) >= ?2)) AS completed,
               (SELECT count(*) FROM labels WHERE queue_id = ?1) AS submitted,
               (SELECT count(*) FROM assignments WHERE queue_id = ?1 AND state = 'leased' AND expires_at >= ?3)
                 AS leased,
               (SELECT count(*) FROM assignments WHERE queue_id = ?1 AND state = 'leased' AND expires_at < ?3)
                 AS expired",
        )
        .bind(&qid)
        .bind(q.overlap)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        // as on Postgres (migrations/0008): labels, live leases and finished assignments by their indexes
        let per = sqlx::query(
            "SELECT labeler, sum(submitted) AS submitted, sum(leased) AS leased, sum(released) AS released
             FROM (SELECT labeler, count(*) AS submitted, 0 AS leased, 0 AS released
                   FROM labels WHERE queue_id = ?1 GROUP BY labeler
                   UNION ALL
                   SELECT labeler, 0, count(*), 0
                   FROM assignments WHERE queue_id = ?1 AND state = 'leased' GROUP BY labeler
                   UNION ALL
                   SELECT labeler, 0, 0, sum(state = 'released')
                   FROM assignments WHERE queue_id = ?1 AND state IN ('released', 'expired') GROUP BY labeler)
             GROUP BY labeler ORDER BY labeler LIMIT 10000",
        )
        .bind(&qid)
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
        let mut tx = self.write().await?;
        let q = load_queue(&mut tx, t, queue).await?;
        if q.state == QueueState::Archived {
            return Err(Error::conflict("queue_archived", "samples cannot be added to an archived queue"));
        }
        let now = now_ms();
        let qid = queue.to_string();
        // Insertion order: continue after the queue's largest order key (policy priority).
        let mut next_key: i64 =
            sqlx::query_scalar("SELECT COALESCE(max(order_key), 0) FROM samples WHERE queue_id = ?")
                .bind(&qid)
                .fetch_one(&mut *tx)
                .await?;
        let mut created = 0i64;
        for s in samples {
            let key = match q.policy {
                AssignmentPolicy::Priority => {
                    next_key += 1;
                    next_key
                }
                AssignmentPolicy::Random => {
                    let mut b = [0u8; 8];
                    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
                    i64::from_le_bytes(b) & i64::MAX
                }
            };
            created += i64::try_from(
                sqlx::query(
                    "INSERT INTO samples (tenant_id, id, queue_id, external_id, payload, priority, rank, order_key,
                                          open_slots, created_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (queue_id, external_id) DO NOTHING",
                )
                .bind(t.as_str())
                .bind(new_id().to_string())
                .bind(&qid)
                .bind(&s.external_id)
                .bind(s.payload.to_string())
                .bind(s.priority)
                .bind(-i64::from(s.priority))
                .bind(key)
                .bind(q.overlap)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            )
            .unwrap_or(0);
        }
        sqlx::query("UPDATE queues SET sample_count = sample_count + ?, updated_at = ? WHERE id = ?")
            .bind(created)
            .bind(now)
            .bind(&qid)
            .execute(&mut *tx)
            .await?;
        let total = i64::try_from(samples.len()).unwrap_or(i64::MAX);
        audit(&mut tx, t, actor, "samples.add", qid, json!({"created": created, "sent": total})).await?;
        tx.commit().await?;
        Ok(AddSamplesResult { created, existing: total - created })
    }

    async fn claim(&self, t: &TenantId, labeler: &Subject, queue: Uuid) -> Result<Option<Claim>> {
        let (tenant, who) = (t.clone(), labeler.clone());
        let out = self
            .group
            .write(move |conn| Box::pin(async move { claim_in(conn, &tenant, &who, queue).await }))
            .await?;
        if let Some(c) = &out {
            self.handed.remember(t, c);
        }
        Ok(out)
    }

    async fn get_assignment(&self, t: &TenantId, id: Uuid, labeler: Option<&Subject>) -> Result<Claim> {
        let mut tx = self.read().await?;
        let c = load_claim(&mut tx, t, id, labeler).await?;
        tx.commit().await?;
        Ok(c)
    }

    async fn heartbeat(&self, t: &TenantId, labeler: &Subject, id: Uuid) -> Result<Assignment> {
        let mut tx = self.write().await?;
        let c = load_claim(&mut tx, t, id, Some(labeler)).await?;
        if c.assignment.state != AssignmentState::Leased {
            return Err(lease_gone(c.assignment.state));
        }
        let lease: i32 = sqlx::query_scalar("SELECT lease_seconds FROM queues WHERE id = ?")
            .bind(c.assignment.queue_id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE assignments SET expires_at = ?, version = version + 1 WHERE id = ? AND state = 'leased'",
        )
        .bind(now_ms() + i64::from(lease) * 1000)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        let out = load_claim(&mut tx, t, id, Some(labeler)).await?.assignment;
        tx.commit().await?;
        Ok(out)
    }

    async fn release(&self, t: &TenantId, labeler: &Subject, id: Uuid, reason: &str) -> Result<Assignment> {
        let mut tx = self.write().await?;
        let c = load_claim(&mut tx, t, id, Some(labeler)).await?;
        match c.assignment.state {
            AssignmentState::Released => return Ok(c.assignment),
            AssignmentState::Leased => {}
            s => return Err(lease_gone(s)),
        }
        sqlx::query(
            "UPDATE assignments SET state = 'released', version = version + 1, finished_at = ?, release_reason = ?
             WHERE id = ? AND state = 'leased'",
        )
        .bind(now_ms())
        .bind(reason)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE samples SET open_slots = open_slots + 1 WHERE id = ?")
            .bind(c.sample.id.to_string())
            .execute(&mut *tx)
            .await?;
        let out = load_claim(&mut tx, t, id, Some(labeler)).await?.assignment;
        tx.commit().await?;
        Ok(out)
    }

    async fn reclaim_expired(&self, limit: i32) -> Result<u64> {
        let mut tx = self.write().await?;
        let n = reclaim(&mut tx, None, i64::from(limit)).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn submit(
        &self,
        t: &TenantId,
        labeler: &Subject,
        assignment: Uuid,
        payload: &Value,
        validate: LabelValidator<'_>,
    ) -> Result<Submitted> {
        // A lease this process handed out: validate against what the claim returned, then the write alone.
        // (An invalid payload takes the full path: if a label is already there, that answer comes first.)
        if let Some(c) = self.handed.take(t, labeler, assignment)
            && validate(&c.schema, &c.sample.payload, payload).is_empty()
        {
            let (t, labeler, payload) = (t.clone(), labeler.clone(), payload.clone());
            return self
                .group
                .write(move |conn| Box::pin(async move { submit_in(conn, &t, &labeler, &c, payload).await }))
                .await;
        }
        // Read and validate beside the writer: an assignment's sample and schema version never change.
        let (ctx, existing) = {
            let mut conn = self.readers.acquire().await?;
            submit_context(&mut conn, t, assignment, labeler).await?
        };
        if let Some(label) = existing {
            return resubmitted(label, payload);
        }
        let errs = validate(&ctx.schema, &ctx.sample.payload, payload);
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        let (t, labeler, payload) = (t.clone(), labeler.clone(), payload.clone());
        self.group
            .write(move |conn| Box::pin(async move { submit_in(conn, &t, &labeler, &ctx, payload).await }))
            .await
    }

    async fn get_label(&self, t: &TenantId, id: Uuid) -> Result<Label> {
        let mut tx = self.read().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{LABEL_SQL} WHERE l.id = ? AND l.tenant_id = ?")))
            .bind(id.to_string())
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
        let mut tx = self.read().await?;
        load_queue(&mut tx, t, queue).await?;
        let after = f.after.map(|u| u.to_string()).unwrap_or_default();
        let sample = f.sample_id.map(|u| u.to_string());
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{LABEL_SQL} WHERE l.queue_id = ? AND l.tenant_id = ?
               AND l.id > ?3 AND (?4 IS NULL OR l.sample_id = ?4) AND (?5 IS NULL OR l.labeler = ?5)
             ORDER BY l.id LIMIT ?6"
        )))
        .bind(queue.to_string())
        .bind(t.as_str())
        .bind(after)
        .bind(sample)
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
        let mut tx = self.write().await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT id FROM labels WHERE id = ? AND tenant_id = ?")
                .bind(label.to_string())
                .bind(t.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        exists.ok_or(Error::NotFound("label"))?;
        // Reject -> relabel, as on Postgres: a label's first reject opens one more slot on its sample.
        let prev: Option<String> = sqlx::query_scalar(
            "SELECT verdict FROM reviews WHERE label_id = ? ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(label.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        if verdict == Verdict::Reject && prev.as_deref() != Some("reject") {
            sqlx::query(
                "UPDATE samples SET open_slots = open_slots + 1 WHERE id = (SELECT sample_id FROM labels WHERE id = ?)",
            )
            .bind(label.to_string())
            .execute(&mut *tx)
            .await?;
        }
        let id = new_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO reviews (tenant_id, id, label_id, reviewer, verdict, comment, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(t.as_str())
        .bind(id.to_string())
        .bind(label.to_string())
        .bind(reviewer.as_str())
        .bind(verdict.as_str())
        .bind(comment)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        audit(&mut tx, t, reviewer, "label.review", label.to_string(), json!({"verdict": verdict.as_str()}))
            .await?;
        tx.commit().await?;
        Ok(Review {
            id,
            label_id: label,
            reviewer: reviewer.as_str().to_string(),
            verdict,
            comment: comment.to_string(),
            created_at: ts(now),
        })
    }

    async fn create_token(&self, t: &TenantId, actor: &Subject, tok: &NewToken) -> Result<TokenInfo> {
        let mut tx = self.write().await?;
        let now = now_ms();
        sqlx::query("INSERT INTO tenants (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING")
            .bind(t.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let id = new_id();
        let expires =
            i64::try_from(tok.expires_at.unix_timestamp_nanos() / 1_000_000).map_err(anyhow::Error::from)?;
        sqlx::query(
            "INSERT INTO api_tokens (tenant_id, id, name, role, subject, token_hash, created_by, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(t.as_str())
        .bind(id.to_string())
        .bind(&tok.name)
        .bind(tok.role.as_str())
        .bind(&tok.subject)
        .bind(&tok.hash)
        .bind(actor.as_str())
        .bind(now)
        .bind(expires)
        .execute(&mut *tx)
        .await?;
        audit(&mut tx, t, actor, "token.create", id.to_string(), json!({"role": tok.role.as_str()})).await?;
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE id = ?")))
                .bind(id.to_string())
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        rows::token(&row)
    }

    async fn list_tokens(&self, t: &TenantId) -> Result<Vec<TokenInfo>> {
        let mut tx = self.read().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLS} FROM api_tokens WHERE tenant_id = ? ORDER BY created_at DESC, id LIMIT 1000"
        )))
        .bind(t.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(rows::token).collect()
    }

    async fn revoke_token(&self, t: &TenantId, actor: &Subject, id: Uuid) -> Result<TokenInfo> {
        let mut tx = self.write().await?;
        let changed = sqlx::query(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND tenant_id = ?",
        )
        .bind(now_ms())
        .bind(id.to_string())
        .bind(t.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(Error::NotFound("token"));
        }
        audit(&mut tx, t, actor, "token.revoke", id.to_string(), json!({})).await?;
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE id = ?")))
                .bind(id.to_string())
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        rows::token(&row)
    }

    async fn find_token(&self, hash: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query(
            "SELECT tenant_id, id, role, subject, expires_at, revoked_at FROM api_tokens WHERE token_hash = ?",
        )
        .bind(hash)
        .fetch_optional(&self.readers)
        .await?;
        // A stored tenant, subject or role this version does not know is an error, not a missing token.
        row.as_ref().map(rows::token_record).transpose()
    }
}

fn is_sqlite_unique(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}
