//! SQLite: exports, imports and the job table of the embedded default (polled by the in-process worker).

use std::time::Duration;

use anvil_types::{CreateExport, ExportFilter, FileFormat, OpsSummary, TaskState};
use async_trait::async_trait;
use serde_json::json;
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use super::rows::{self, EXPORT_COLS, IMPORT_COLS};
use super::sqlite::{SqliteStore, audit, load_queue, now_ms};
use super::{
    ExportOutcome, ExportRecord, ExportRow, ImportProgress, ImportRecord, Job, TaskStore, export_keys,
    import_key, new_id,
};
use crate::domain::{Subject, TenantId};
use crate::error::{Error, Result};

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl TaskStore for SqliteStore {
    async fn create_export(
        &self,
        t: &TenantId,
        actor: &Subject,
        queue: Uuid,
        req: &CreateExport,
    ) -> Result<ExportRecord> {
        let mut tx = self.write().await?;
        let q = load_queue(&mut tx, t, queue).await?;
        let id = new_id();
        let now = now_ms();
        let (object_key, manifest_key) = export_keys(t, id, req.format);
        let filter = serde_json::to_string(&req.filter).map_err(anyhow::Error::from)?;
        sqlx::query(
            "INSERT INTO exports (tenant_id, id, queue_id, format, filter, snapshot_at, object_key, manifest_key,
                                  created_by, created_at, mode)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(t.as_str())
        .bind(id.to_string())
        .bind(queue.to_string())
        .bind(req.format.as_str())
        .bind(&filter)
        .bind(now)
        .bind(&object_key)
        .bind(&manifest_key)
        .bind(actor.as_str())
        .bind(now)
        .bind(req.mode.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO jobs (tenant_id, id, kind, payload, available_at, created_at) VALUES (?, ?, 'export', ?, ?, ?)",
        )
        .bind(t.as_str())
        .bind(new_id().to_string())
        .bind(json!({"export_id": id}).to_string())
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO lineage (tenant_id, id, entity_kind, entity_id, actor, inputs, created_at)
             VALUES (?, ?, 'export', ?, ?, ?, ?)",
        )
        .bind(t.as_str())
        .bind(id.to_string())
        .bind(id.to_string())
        .bind(actor.as_str())
        .bind(
            json!({"queue_id": queue, "schema_version": q.schema_version, "filter": req.filter}).to_string(),
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        audit(&mut tx, t, actor, "export.create", id.to_string(), json!({"queue_id": queue})).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {EXPORT_COLS} FROM exports WHERE id = ?")))
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        rows::export(&row)
    }

    async fn get_export(&self, t: &TenantId, id: Uuid) -> Result<ExportRecord> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EXPORT_COLS} FROM exports WHERE id = ? AND tenant_id = ?"
        )))
        .bind(id.to_string())
        .bind(t.as_str())
        .fetch_optional(self.readers())
        .await?
        .ok_or(Error::NotFound("export"))?;
        rows::export(&row)
    }

    async fn list_exports(&self, t: &TenantId, queue: Uuid) -> Result<Vec<ExportRecord>> {
        let mut tx = self.read().await?;
        load_queue(&mut tx, t, queue).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EXPORT_COLS} FROM exports WHERE queue_id = ? AND tenant_id = ?
             ORDER BY created_at DESC, id DESC LIMIT 200"
        )))
        .bind(queue.to_string())
        .bind(t.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(rows::export).collect()
    }

    async fn export_started(&self, t: &TenantId, id: Uuid) -> Result<ExportRecord> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE exports SET state = CASE WHEN state = 'succeeded' THEN state ELSE 'running' END, error = NULL
             WHERE id = ? AND tenant_id = ?",
        )
        .bind(id.to_string())
        .bind(t.as_str())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EXPORT_COLS} FROM exports WHERE id = ? AND tenant_id = ?"
        )))
        .bind(id.to_string())
        .bind(t.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("export"))?;
        tx.commit().await?;
        rows::export(&row)
    }

    async fn export_succeeded(&self, t: &TenantId, id: Uuid, out: &ExportOutcome) -> Result<bool> {
        let mut tx = self.write().await?;
        let n = sqlx::query(
            "UPDATE exports SET state = 'succeeded', rows = ?, bytes = ?, sha256 = ?, manifest = ?, finished_at = ?,
                    error = NULL
             WHERE id = ? AND tenant_id = ? AND state <> 'succeeded'",
        )
        .bind(out.rows)
        .bind(out.bytes)
        .bind(&out.sha256)
        .bind(out.manifest.to_string())
        .bind(now_ms())
        .bind(id.to_string())
        .bind(t.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn export_failed(&self, t: &TenantId, id: Uuid, error: &str) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE exports SET state = 'failed', error = ?, finished_at = ?
             WHERE id = ? AND tenant_id = ? AND state <> 'succeeded'",
        )
        .bind(error)
        .bind(now_ms())
        .bind(id.to_string())
        .bind(t.as_str())
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
        let rows = sqlx::query(
            "SELECT l.id, l.sample_id, s.external_id, s.payload AS sample, l.labeler, l.schema_version, l.payload,
                    l.created_at
             FROM labels l JOIN samples s ON s.id = l.sample_id
             WHERE l.queue_id = ?1 AND l.tenant_id = ?2 AND l.created_at <= ?3
               AND l.id > ?4 AND (?5 IS NULL OR l.labeler = ?5)
               AND (?6 IS NULL OR l.schema_version = ?6)
               AND NOT EXISTS (SELECT 1 FROM gold_answers g WHERE g.sample_id = l.sample_id)
             ORDER BY l.id LIMIT ?7",
        )
        .bind(queue.to_string())
        .bind(t.as_str())
        .bind(ms(snapshot))
        .bind(after.map(|a| a.to_string()).unwrap_or_default())
        .bind(filter.labeler.as_deref())
        .bind(filter.schema_version)
        .bind(i64::from(limit))
        .fetch_all(self.readers())
        .await?;
        rows.iter().map(rows::export_row).collect()
    }

    async fn create_import(
        &self,
        t: &TenantId,
        actor: &Subject,
        queue: Uuid,
        format: FileFormat,
    ) -> Result<ImportRecord> {
        let mut tx = self.write().await?;
        let q = load_queue(&mut tx, t, queue).await?;
        if q.state == anvil_types::QueueState::Archived {
            return Err(Error::conflict("queue_archived", "samples cannot be added to an archived queue"));
        }
        let id = new_id();
        sqlx::query(
            "INSERT INTO imports (tenant_id, id, queue_id, format, object_key, created_by, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(t.as_str())
        .bind(id.to_string())
        .bind(queue.to_string())
        .bind(format.as_str())
        .bind(import_key(t, id, format))
        .bind(actor.as_str())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        audit(&mut tx, t, actor, "import.create", id.to_string(), json!({"queue_id": queue})).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {IMPORT_COLS} FROM imports WHERE id = ?")))
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        rows::import(&row)
    }

    async fn get_import(&self, t: &TenantId, id: Uuid) -> Result<ImportRecord> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {IMPORT_COLS} FROM imports WHERE id = ? AND tenant_id = ?"
        )))
        .bind(id.to_string())
        .bind(t.as_str())
        .fetch_optional(self.readers())
        .await?
        .ok_or(Error::NotFound("import"))?;
        rows::import(&row)
    }

    async fn start_import(&self, t: &TenantId, actor: &Subject, id: Uuid) -> Result<ImportRecord> {
        let mut tx = self.write().await?;
        let n = sqlx::query(
            "UPDATE imports SET state = 'running' WHERE id = ? AND tenant_id = ? AND state = 'pending'",
        )
        .bind(id.to_string())
        .bind(t.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 1 {
            let now = now_ms();
            sqlx::query(
                "INSERT INTO jobs (tenant_id, id, kind, payload, available_at, created_at)
                 VALUES (?, ?, 'import', ?, ?, ?)",
            )
            .bind(t.as_str())
            .bind(new_id().to_string())
            .bind(json!({"import_id": id}).to_string())
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            audit(&mut tx, t, actor, "import.start", id.to_string(), json!({})).await?;
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {IMPORT_COLS} FROM imports WHERE id = ? AND tenant_id = ?"
        )))
        .bind(id.to_string())
        .bind(t.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("import"))?;
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
        let mut tx = self.write().await?;
        let done = matches!(state, TaskState::Succeeded | TaskState::Failed);
        sqlx::query(
            "UPDATE imports SET state = ?, rows_created = ?, rows_existing = ?, rows_failed = ?, errors = ?, error = ?,
                    finished_at = ? WHERE id = ? AND tenant_id = ?",
        )
        .bind(state.as_str())
        .bind(p.created)
        .bind(p.existing)
        .bind(p.failed)
        .bind(serde_json::to_string(&p.errors).map_err(anyhow::Error::from)?)
        .bind(error)
        .bind(done.then(now_ms))
        .bind(id.to_string())
        .bind(t.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn reserve_job(&self, visibility: Duration) -> Result<Option<Job>> {
        let mut tx = self.write().await?;
        let now = now_ms();
        sqlx::query(
            "UPDATE jobs SET state = 'dead', finished_at = ?,
                    last_error = COALESCE(last_error, 'the worker stopped during the last attempt')
             WHERE state = 'running' AND locked_until < ? AND attempts >= max_attempts",
        )
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let next: Option<String> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE dispatched_at IS NULL
               AND ((state = 'pending' AND available_at <= ?1) OR (state = 'running' AND locked_until < ?1))
             ORDER BY available_at LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = next else {
            tx.commit().await?;
            return Ok(None);
        };
        sqlx::query(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_until = ? WHERE id = ?",
        )
        .bind(now + millis(visibility))
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT * FROM jobs WHERE id = ?").bind(&id).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some(rows::job(&row)?))
    }

    async fn begin_job(&self, id: Uuid) -> Result<Option<Job>> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE jobs SET attempts = attempts + 1,
                    state = CASE WHEN state IN ('succeeded', 'dead') THEN state ELSE 'running' END
             WHERE id = ?",
        )
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT * FROM jobs WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(rows::job).transpose()
    }

    async fn finish_job(
        &self,
        id: Uuid,
        error: Option<&str>,
        backoff: Duration,
        give_up: bool,
    ) -> Result<String> {
        let mut tx = self.write().await?;
        let now = now_ms();
        let ok = error.is_none();
        sqlx::query(
            "UPDATE jobs SET
                state = CASE WHEN ?1 THEN 'succeeded' WHEN ?6 OR attempts >= max_attempts THEN 'dead'
                             ELSE 'pending' END,
                finished_at = CASE WHEN ?1 OR ?6 OR attempts >= max_attempts THEN ?2 ELSE NULL END,
                available_at = CASE WHEN ?1 THEN available_at ELSE ?2 + ?3 END,
                locked_until = NULL,
                last_error = CASE WHEN ?1 THEN last_error ELSE substr(?4, 1, 2000) END
             WHERE id = ?5",
        )
        .bind(ok)
        .bind(now)
        .bind(millis(backoff))
        .bind(error)
        .bind(id.to_string())
        .bind(give_up)
        .execute(&mut *tx)
        .await?;
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM jobs WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(state.unwrap_or_default())
    }

    async fn undispatched_jobs(&self, limit: i32) -> Result<Vec<Job>> {
        let rows = sqlx::query(
            "SELECT * FROM jobs WHERE dispatched_at IS NULL AND state = 'pending' ORDER BY created_at LIMIT ?",
        )
        .bind(limit)
        .fetch_all(self.readers())
        .await?;
        rows.iter().map(rows::job).collect()
    }

    async fn mark_dispatched(&self, ids: &[Uuid]) -> Result<u64> {
        let mut tx = self.write().await?;
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let n = sqlx::query(
            "UPDATE jobs SET dispatched_at = ? WHERE dispatched_at IS NULL AND id IN (SELECT value FROM json_each(?))",
        )
        .bind(now_ms())
        .bind(serde_json::to_string(&ids).map_err(anyhow::Error::from)?)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    async fn ops_summary(&self, t: &TenantId) -> Result<OpsSummary> {
        let now = now_ms();
        let r = sqlx::query(
            "SELECT
               COALESCE(sum(state = 'pending'), 0) AS pending,
               COALESCE(sum(state = 'pending' AND available_at <= ?2), 0) AS available,
               COALESCE(sum(state = 'running'), 0) AS running,
               COALESCE((?2 - min(CASE WHEN state = 'pending' THEN created_at END)) / 1000, 0) AS oldest,
               COALESCE(sum(state = 'pending' AND attempts > 0), 0) AS failed,
               COALESCE(sum(state = 'dead'), 0) AS dead,
               (SELECT count(*) FROM assignments WHERE tenant_id = ?1 AND state = 'leased' AND expires_at < ?2)
                 AS expired,
               (SELECT count(*) FROM exports WHERE tenant_id = ?1 AND state = 'running') AS exports_running
             FROM jobs WHERE tenant_id = ?1",
        )
        .bind(t.as_str())
        .bind(now)
        .fetch_one(self.readers())
        .await?;
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
