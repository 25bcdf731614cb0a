//! Postgres: exports, imports and the job table (see migrations/0002_exports_imports_jobs.sql).

use std::time::Duration;

use anvil_types::{CreateExport, ExportFilter, FileFormat, OpsSummary, TaskState};
use async_trait::async_trait;
use serde_json::{Value, json};
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use super::postgres::{PgStore, audit, load_queue};
use super::rows::{self, EXPORT_COLS, IMPORT_COLS};
use super::{
    ExportOutcome, ExportRecord, ExportRow, ImportProgress, ImportRecord, Job, TaskStore, export_keys,
    import_key, new_id,
};
use crate::domain::{Subject, TenantId};
use crate::error::{Error, Result};

fn secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

#[async_trait]
impl TaskStore for PgStore {
    async fn create_export(
        &self,
        t: &TenantId,
        actor: &Subject,
        queue: Uuid,
        req: &CreateExport,
    ) -> Result<ExportRecord> {
        let mut tx = self.tx(t).await?;
        load_queue(&mut tx, t, queue).await?;
        let id = new_id();
        let (object_key, manifest_key) = export_keys(t, id, req.format);
        let filter = serde_json::to_value(&req.filter).map_err(anyhow::Error::from)?;
        // The snapshot instant is taken by the database; it is stored truncated to microseconds, as every
        // timestamptz, so later comparisons against label.created_at are exact.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO exports (tenant_id, id, queue_id, format, filter, snapshot_at, object_key, manifest_key,
                                  created_by, mode)
             VALUES ($1, $2, $3, $4, $5, now(), $6, $7, $8, $9) RETURNING {EXPORT_COLS}"
        )))
        .bind(t.as_str())
        .bind(id)
        .bind(queue)
        .bind(req.format.as_str())
        .bind(&filter)
        .bind(&object_key)
        .bind(&manifest_key)
        .bind(actor.as_str())
        .bind(req.mode.as_str())
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO jobs (tenant_id, id, kind, payload) VALUES ($1, $2, 'export', $3)")
            .bind(t.as_str())
            .bind(new_id())
            .bind(json!({"export_id": id}))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO lineage (tenant_id, id, entity_kind, entity_id, actor, inputs)
             SELECT $1, $2, 'export', $2, $3,
                    jsonb_build_object('queue_id', $4::uuid, 'schema_version', q.schema_version, 'filter', $5::jsonb)
             FROM queues q WHERE q.id = $4",
        )
        .bind(t.as_str())
        .bind(id)
        .bind(actor.as_str())
        .bind(queue)
        .bind(&filter)
        .execute(&mut *tx)
        .await?;
        audit(&mut tx, t, actor, "export.create", id.to_string(), json!({"queue_id": queue})).await?;
        tx.commit().await?;
        rows::export(&row)
    }

    async fn get_export(&self, t: &TenantId, id: Uuid) -> Result<ExportRecord> {
        let mut tx = self.tx(t).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EXPORT_COLS} FROM exports WHERE id = $1 AND tenant_id = $2"
        )))
        .bind(id)
        .bind(t.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("export"))?;
        tx.commit().await?;
        rows::export(&row)
    }

    async fn list_exports(&self, t: &TenantId, queue: Uuid) -> Result<Vec<ExportRecord>> {
        let mut tx = self.tx(t).await?;
        load_queue(&mut tx, t, queue).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EXPORT_COLS} FROM exports WHERE queue_id = $1 AND tenant_id = $2
             ORDER BY created_at DESC, id DESC LIMIT 200"
        )))
        .bind(queue)
        .bind(t.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(rows::export).collect()
    }

    async fn export_started(&self, t: &TenantId, id: Uuid) -> Result<ExportRecord> {
        let mut tx = self.tx(t).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE exports SET state = CASE WHEN state = 'succeeded' THEN state ELSE 'running' END, error = NULL
             WHERE id = $1 AND tenant_id = $2 RETURNING {EXPORT_COLS}"
        )))
        .bind(id)
        .bind(t.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("export"))?;
        tx.commit().await?;
        rows::export(&row)
    }

    async fn export_succeeded(&self, t: &TenantId, id: Uuid, out: &ExportOutcome) -> Result<bool> {
        let mut tx = self.tx(t).await?;
        let n = sqlx::query(
            "UPDATE exports SET state = 'succeeded', rows = $3, bytes = $4, sha256 = $5, manifest = $6,
                    finished_at = now(), error = NULL
             WHERE id = $1 AND tenant_id = $2 AND state <> 'succeeded'",
        )
        .bind(id)
        .bind(t.as_str())
        .bind(out.rows)
        .bind(out.bytes)
        .bind(&out.sha256)
        .bind(&out.manifest)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn export_failed(&self, t: &TenantId, id: Uuid, error: &str) -> Result<()> {
        let mut tx = self.tx(t).await?;
        sqlx::query(
            "UPDATE exports SET state = 'failed', error = $3, finished_at = now()
             WHERE id = $1 AND tenant_id = $2 AND state <> 'succeeded'",
        )
        .bind(id)
        .bind(t.as_str())
        .bind(error)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn export_rows(
        &self,
        t: &TenantId,
        queue: Uuid,
        filter: &ExportFilter,
        snapshot: OffsetDateTime,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ExportRow>> {
        let mut tx = self.tx(t).await?;
        // Keyset pagination on the label id: each page is one short range scan of labels_queue_id_idx (the
        // first page starts after the nil UUID, so the statement has no `IS NULL OR` that would keep the
        // planner's generic plan off the index), a worker never holds a transaction open for the whole
        // export, and memory stays bounded by the page size.
        let rows = sqlx::query(
            // The page of labels first, then each label's sample by primary key (LATERAL): a plain join lets
            // the planner hash-join the whole samples table for every page.
            "SELECT l.id, l.sample_id, s.external_id, s.payload AS sample, l.labeler, l.schema_version, l.payload,
                    l.created_at
             FROM (SELECT * FROM labels l
                   WHERE l.queue_id = $1 AND l.tenant_id = $2 AND l.created_at <= $3
                     AND l.id > $4
                     AND ($5::text IS NULL OR l.labeler = $5)
                     AND ($6::integer IS NULL OR l.schema_version = $6)
                     -- labels on gold samples are checks of the labelers, not data
                     AND NOT EXISTS (SELECT 1 FROM gold_answers g WHERE g.sample_id = l.sample_id)
                   ORDER BY l.id LIMIT $7) l
             CROSS JOIN LATERAL (SELECT x.external_id, x.payload FROM samples x WHERE x.id = l.sample_id) s
             ORDER BY l.id",
        )
        .bind(queue)
        .bind(t.as_str())
        .bind(snapshot)
        .bind(after.unwrap_or(Uuid::nil()))
        .bind(filter.labeler.as_deref())
        .bind(filter.schema_version)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(rows::export_row).collect()
    }

    async fn create_import(
        &self,
        t: &TenantId,
        actor: &Subject,
        queue: Uuid,
        format: FileFormat,
    ) -> Result<ImportRecord> {
        let mut tx = self.tx(t).await?;
        let q = load_queue(&mut tx, t, queue).await?;
        if q.state == anvil_types::QueueState::Archived {
            return Err(Error::conflict("queue_archived", "samples cannot be added to an archived queue"));
        }
        let id = new_id();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO imports (tenant_id, id, queue_id, format, object_key, created_by)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {IMPORT_COLS}"
        )))
        .bind(t.as_str())
        .bind(id)
        .bind(queue)
        .bind(format.as_str())
        .bind(import_key(t, id, format))
        .bind(actor.as_str())
        .fetch_one(&mut *tx)
        .await?;
        audit(&mut tx, t, actor, "import.create", id.to_string(), json!({"queue_id": queue})).await?;
        tx.commit().await?;
        rows::import(&row)
    }

    async fn get_import(&self, t: &TenantId, id: Uuid) -> Result<ImportRecord> {
        let mut tx = self.tx(t).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {IMPORT_COLS} FROM imports WHERE id = $1 AND tenant_id = $2"
        )))
        .bind(id)
        .bind(t.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("import"))?;
        tx.commit().await?;
        rows::import(&row)
    }

    async fn start_import(&self, t: &TenantId, actor: &Subject, id: Uuid) -> Result<ImportRecord> {
        let mut tx = self.tx(t).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE imports SET state = 'running' WHERE id = $1 AND tenant_id = $2 AND state = 'pending'
             RETURNING {IMPORT_COLS}"
        )))
        .bind(id)
        .bind(t.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.commit().await?;
            // already started (or unknown: 404)
            return self.get_import(t, id).await;
        };
        sqlx::query("INSERT INTO jobs (tenant_id, id, kind, payload) VALUES ($1, $2, 'import', $3)")
            .bind(t.as_str())
            .bind(new_id())
            .bind(json!({"import_id": id}))
            .execute(&mut *tx)
            .await?;
        audit(&mut tx, t, actor, "import.start", id.to_string(), json!({})).await?;
        tx.commit().await?;
        rows::import(&row)
    }

    async fn import_state(
        &self,
        t: &TenantId,
        id: Uuid,
        state: TaskState,
        p: &ImportProgress,
        error: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.tx(t).await?;
        sqlx::query(
            "UPDATE imports SET state = $3, rows_created = $4, rows_existing = $5, rows_failed = $6, errors = $7,
                    error = $8, finished_at = CASE WHEN $3 IN ('succeeded', 'failed') THEN now() END
             WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id)
        .bind(t.as_str())
        .bind(state.as_str())
        .bind(p.created)
        .bind(p.existing)
        .bind(p.failed)
        .bind(serde_json::to_value(&p.errors).map_err(anyhow::Error::from)?)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn reserve_job(&self, visibility: Duration) -> Result<Option<Job>> {
        let row = sqlx::query("SELECT * FROM anvil_reserve_job($1)")
            .bind(secs(visibility))
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(rows::reserved_job).transpose()
    }

    async fn begin_job(&self, id: Uuid) -> Result<Option<Job>> {
        let row =
            sqlx::query("SELECT * FROM anvil_begin_job($1)").bind(id).fetch_optional(self.pool()).await?;
        row.as_ref().map(rows::job).transpose()
    }

    async fn finish_job(
        &self,
        id: Uuid,
        error: Option<&str>,
        backoff: Duration,
        give_up: bool,
    ) -> Result<String> {
        let state: Option<String> = sqlx::query_scalar("SELECT anvil_finish_job($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(error.is_none())
            .bind(error)
            .bind(secs(backoff))
            .bind(give_up)
            .fetch_one(self.pool())
            .await?;
        Ok(state.unwrap_or_default())
    }

    async fn undispatched_jobs(&self, limit: i32) -> Result<Vec<Job>> {
        let rows = sqlx::query("SELECT id, tenant_id, kind FROM anvil_undispatched_jobs($1)")
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Job {
                    id: r.try_get("id")?,
                    tenant: r.try_get("tenant_id")?,
                    kind: r.try_get("kind")?,
                    payload: Value::Null,
                    attempts: 0,
                    max_attempts: 0,
                    state: "pending".into(),
                })
            })
            .collect()
    }

    async fn mark_dispatched(&self, ids: &[Uuid]) -> Result<u64> {
        let n: i32 =
            sqlx::query_scalar("SELECT anvil_mark_dispatched($1)").bind(ids).fetch_one(self.pool()).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn ops_summary(&self, t: &TenantId) -> Result<OpsSummary> {
        let mut tx = self.tx(t).await?;
        let r = sqlx::query(
            "SELECT
               count(*) FILTER (WHERE state = 'pending') AS pending,
               count(*) FILTER (WHERE state = 'pending' AND available_at <= now()) AS available,
               count(*) FILTER (WHERE state = 'running') AS running,
               COALESCE(EXTRACT(EPOCH FROM now() - min(created_at) FILTER (WHERE state = 'pending')), 0)::bigint
                 AS oldest,
               count(*) FILTER (WHERE state = 'pending' AND attempts > 0) AS failed,
               count(*) FILTER (WHERE state = 'dead') AS dead,
               (SELECT count(*) FROM assignments WHERE tenant_id = $1 AND state = 'leased' AND expires_at < now())
                 AS expired,
               (SELECT count(*) FROM exports WHERE tenant_id = $1 AND state = 'running') AS exports_running
             FROM jobs WHERE tenant_id = $1",
        )
        .bind(t.as_str())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(OpsSummary {
            pending_jobs: r.try_get("pending")?,
            available_jobs: r.try_get("available")?,
            running_jobs: r.try_get("running")?,
            oldest_pending_age_secs: r.try_get("oldest")?,
            failed_jobs: r.try_get("failed")?,
            dead_jobs: r.try_get("dead")?,
            expired_leases: r.try_get("expired")?,
            exports_running: r.try_get("exports_running")?,
        })
    }
}
