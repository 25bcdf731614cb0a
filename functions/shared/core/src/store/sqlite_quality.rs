//! SQLite: what the quality report reads, and gold samples (migrations/sqlite/0009_gold.sql). The same
//! statements as store/postgres_quality.rs in SQLite's dialect.

use anvil_types::{AddGoldResult, Claim, FinalSettings, GoldItem, GoldSettings, NewGold, QueueState};
use std::collections::HashSet;

use async_trait::async_trait;
use futures::TryStreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

use super::rows::{self, StoredRow};
use super::sqlite::{SqliteStore, audit, load_claim, load_queue, now_ms};
use super::{GoldLabel, QualityStore, new_id};
use crate::domain::{Subject, TenantId};
use crate::error::{Error, Result};
use crate::quality::QualityRow;
use crate::quality::final_label::SampleLabels;

#[async_trait]
impl QualityStore for SqliteStore {
    async fn quality_scan(
        &self,
        t: &TenantId,
        queue: Uuid,
        with_samples: bool,
        each: &mut (dyn FnMut(QualityRow) + Send),
    ) -> Result<u64> {
        let mut tx = self.read().await?;
        // The queue's labels by labels_queue_id_idx (no order: the report does not need one), gold samples
        // left out by an anti-join on the (small) gold_answers, the sample by primary key only when asked
        // for. Streamed: the database sends rows as it reads them.
        let mut n = 0;
        {
            let mut rows = sqlx::query(
                "SELECT l.id, l.sample_id, l.labeler, l.payload,
                        CASE WHEN ?3 THEN (SELECT x.payload FROM samples x WHERE x.id = l.sample_id) END AS sample
                 FROM labels l
                 WHERE l.queue_id = ?1 AND l.tenant_id = ?2
                   AND NOT EXISTS (SELECT 1 FROM gold_answers g WHERE g.sample_id = l.sample_id)",
            )
            .bind(queue.to_string())
            .bind(t.as_str())
            .bind(with_samples)
            .fetch(&mut *tx);
            while let Some(r) = rows.try_next().await? {
                each(rows::quality_row(&r, with_samples)?);
                n += 1;
            }
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn rejected_labels(&self, t: &TenantId, queue: Uuid) -> Result<Vec<Uuid>> {
        let mut tx = self.read().await?;
        let rows = sqlx::query(
            "SELECT r.label_id FROM reviews r JOIN labels l ON l.id = r.label_id
             WHERE l.queue_id = ?1 AND r.tenant_id = ?2 AND r.verdict = 'reject'
               AND NOT EXISTS (SELECT 1 FROM reviews n WHERE n.label_id = r.label_id
                               AND (n.created_at, n.id) > (r.created_at, r.id))",
        )
        .bind(queue.to_string())
        .bind(t.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(|r| r.uuid("label_id")).collect()
    }

    async fn add_gold(
        &self,
        t: &TenantId,
        actor: &Subject,
        queue: Uuid,
        items: &[NewGold],
    ) -> Result<AddGoldResult> {
        let mut tx = self.write().await?;
        let q = load_queue(&mut tx, t, queue).await?;
        if q.state == QueueState::Archived {
            return Err(Error::conflict(
                "queue_archived",
                "gold samples cannot be added to an archived queue",
            ));
        }
        let qid = queue.to_string();
        let now = now_ms();
        let (mut created, mut updated) = (0i64, 0i64);
        for g in items {
            let existing = sqlx::query("SELECT id, gold FROM samples WHERE queue_id = ? AND external_id = ?")
                .bind(&qid)
                .bind(&g.external_id)
                .fetch_optional(&mut *tx)
                .await?;
            let id = match existing {
                Some(r) if !r.flag("gold")? => {
                    return Err(Error::conflict(
                        "not_gold",
                        format!(
                            "`{}` is an ordinary sample of this queue; a gold sample needs its own external id",
                            g.external_id
                        ),
                    ));
                }
                Some(r) => {
                    updated += 1;
                    r.text("id")?
                }
                None => {
                    let id = new_id().to_string();
                    // No open slot: only the gold claim hands a gold sample out (and the trigger keeps it so).
                    sqlx::query(
                        "INSERT INTO samples (tenant_id, id, queue_id, external_id, payload, priority, rank,
                                              order_key, open_slots, gold, created_at)
                         VALUES (?, ?, ?, ?, ?, 0, 0, 0, 0, 1, ?)",
                    )
                    .bind(t.as_str())
                    .bind(&id)
                    .bind(&qid)
                    .bind(&g.external_id)
                    .bind(g.payload.to_string())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    created += 1;
                    id
                }
            };
            sqlx::query(
                "INSERT INTO gold_answers (tenant_id, sample_id, queue_id, answer, created_by, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT (sample_id) DO UPDATE SET answer = excluded.answer, updated_at = excluded.updated_at",
            )
            .bind(t.as_str())
            .bind(&id)
            .bind(&qid)
            .bind(g.answer.to_string())
            .bind(actor.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        audit(&mut tx, t, actor, "gold.add", qid, json!({"created": created, "updated": updated})).await?;
        tx.commit().await?;
        Ok(AddGoldResult { created, updated })
    }

    async fn list_gold(&self, t: &TenantId, queue: Uuid, limit: u32) -> Result<Vec<GoldItem>> {
        let mut tx = self.read().await?;
        load_queue(&mut tx, t, queue).await?;
        let rows = sqlx::query(
            "SELECT s.id, s.external_id, s.payload, g.answer,
                    (SELECT count(*) FROM labels l WHERE l.sample_id = s.id) AS labels
             FROM gold_answers g JOIN samples s ON s.id = g.sample_id
             WHERE g.queue_id = ? AND g.tenant_id = ?
             ORDER BY s.external_id LIMIT ?",
        )
        .bind(queue.to_string())
        .bind(t.as_str())
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(rows::gold_item).collect()
    }

    async fn gold_settings(&self, t: &TenantId, queue: Uuid) -> Result<GoldSettings> {
        let mut tx = self.read().await?;
        load_queue(&mut tx, t, queue).await?;
        let row = sqlx::query(
            "SELECT rate, min_accuracy, min_items, exempt FROM gold_settings WHERE queue_id = ? AND tenant_id = ?",
        )
        .bind(queue.to_string())
        .bind(t.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map_or(Ok(GoldSettings::default()), rows::gold_settings)
    }

    async fn put_gold_settings(
        &self,
        t: &TenantId,
        actor: &Subject,
        queue: Uuid,
        s: &GoldSettings,
    ) -> Result<GoldSettings> {
        let mut tx = self.write().await?;
        load_queue(&mut tx, t, queue).await?;
        let row = sqlx::query(
            "INSERT INTO gold_settings (tenant_id, queue_id, rate, min_accuracy, min_items, exempt, updated_by,
                                        updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (queue_id) DO UPDATE SET rate = excluded.rate, min_accuracy = excluded.min_accuracy,
                 min_items = excluded.min_items, exempt = excluded.exempt, updated_by = excluded.updated_by,
                 updated_at = excluded.updated_at
             RETURNING rate, min_accuracy, min_items, exempt",
        )
        .bind(t.as_str())
        .bind(queue.to_string())
        .bind(s.rate)
        .bind(s.floor.as_ref().map(|f| f.min_accuracy))
        .bind(s.floor.as_ref().map(|f| f.after))
        .bind(json!(s.exempt).to_string())
        .bind(actor.as_str())
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        audit(&mut tx, t, actor, "gold.settings", queue.to_string(), json!(s)).await?;
        let out = rows::gold_settings(&row)?;
        tx.commit().await?;
        Ok(out)
    }

    async fn claim_gold(&self, t: &TenantId, labeler: &Subject, queue: Uuid) -> Result<Option<Claim>> {
        let (tenant, who) = (t.clone(), labeler.clone());
        // On the group writer's turn, as the ordinary claim: it shares that claim's commit (and fsync).
        let out = self
            .group
            .write(move |conn| Box::pin(async move { claim_gold_in(conn, &tenant, &who, queue).await }))
            .await?;
        if let Some(c) = &out {
            self.handed.remember(t, c);
        }
        Ok(out)
    }

    async fn gold_labels(
        &self,
        t: &TenantId,
        queue: Uuid,
        labeler: Option<&Subject>,
    ) -> Result<Vec<GoldLabel>> {
        let rows = sqlx::query(
            "SELECT g.sample_id, l.labeler, l.payload, g.answer
             FROM gold_answers g
             JOIN assignments a ON a.sample_id = g.sample_id AND a.state = 'submitted'
                               AND (?3 IS NULL OR a.labeler = ?3)
             JOIN labels l ON l.assignment_id = a.id
             WHERE g.queue_id = ?1 AND g.tenant_id = ?2",
        )
        .bind(queue.to_string())
        .bind(t.as_str())
        .bind(labeler.map(Subject::as_str))
        .fetch_all(self.readers())
        .await?;
        rows.iter().map(rows::gold_label).collect()
    }

    async fn final_settings(&self, t: &TenantId, queue: Uuid) -> Result<FinalSettings> {
        let mut tx = self.read().await?;
        load_queue(&mut tx, t, queue).await?;
        let row = sqlx::query(
            "SELECT method, adjudicate FROM final_settings WHERE queue_id = ?1 AND tenant_id = ?2",
        )
        .bind(queue.to_string())
        .bind(t.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map_or(Ok(FinalSettings::default()), rows::final_settings)
    }

    async fn put_final_settings(
        &self,
        t: &TenantId,
        actor: &Subject,
        queue: Uuid,
        s: &FinalSettings,
    ) -> Result<FinalSettings> {
        let mut tx = self.write().await?;
        load_queue(&mut tx, t, queue).await?;
        let row = sqlx::query(
            "INSERT INTO final_settings (tenant_id, queue_id, method, adjudicate, updated_by, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (queue_id) DO UPDATE SET method = excluded.method, adjudicate = excluded.adjudicate,
                 updated_by = excluded.updated_by, updated_at = excluded.updated_at
             RETURNING method, adjudicate",
        )
        .bind(t.as_str())
        .bind(queue.to_string())
        .bind(s.method.as_str())
        .bind(json!(s.adjudicate).to_string())
        .bind(actor.as_str())
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        audit(&mut tx, t, actor, "final.settings", queue.to_string(), json!(s)).await?;
        let out = rows::final_settings(&row)?;
        tx.commit().await?;
        Ok(out)
    }

    async fn final_samples(
        &self,
        t: &TenantId,
        queue: Uuid,
        after: Option<Uuid>,
        only: Option<Uuid>,
        limit: u32,
        rejected: &HashSet<Uuid>,
    ) -> Result<Vec<SampleLabels>> {
        let mut tx = self.read().await?;
        // The page of samples by samples_queue_idx (or one by primary key), then one row per label.
        let page = if only.is_some() {
            "SELECT * FROM samples s WHERE s.id = ?5 AND s.queue_id = ?1 AND s.tenant_id = ?2 AND NOT s.gold"
        } else {
            "SELECT * FROM samples s
             WHERE s.queue_id = ?1 AND s.id > ?3 AND s.tenant_id = ?2 AND NOT s.gold
             ORDER BY s.id LIMIT ?4"
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT s.id, s.external_id, s.payload, l.id AS label_id, l.labeler, l.payload AS label_payload,
                    d.answer AS decision, d.decided_by
             FROM ({page}) s
             LEFT JOIN labels l ON l.sample_id = s.id
             LEFT JOIN adjudications d ON d.sample_id = s.id
             ORDER BY s.id, l.id"
        )))
        .bind(queue.to_string())
        .bind(t.as_str())
        .bind(after.map(|a| a.to_string()).unwrap_or_default())
        .bind(i64::from(limit))
        .bind(only.map(|o| o.to_string()))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows::sample_labels(&rows, rejected)
    }

    async fn record_decision(
        &self,
        t: &TenantId,
        actor: &Subject,
        queue: Uuid,
        sample: Uuid,
        answer: &Value,
        label: Option<Uuid>,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let n = sqlx::query(
            "INSERT INTO adjudications (tenant_id, sample_id, queue_id, answer, label_id, decided_by, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (sample_id) DO NOTHING",
        )
        .bind(t.as_str())
        .bind(sample.to_string())
        .bind(queue.to_string())
        .bind(answer.to_string())
        .bind(label.map(|l| l.to_string()))
        .bind(actor.as_str())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 1 {
            audit(&mut tx, t, actor, "sample.adjudicate", sample.to_string(), json!({"label_id": label}))
                .await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }
}

/// The gold claim inside the group writer's transaction. As on Postgres: an unseen gold sample at random; a
/// lease the labeler holds in the queue (assignments_one_live_lease_idx) wins. `WHERE true` keeps ON
/// CONFLICT from parsing as a join's ON.
async fn claim_gold_in(
    conn: &mut sqlx::SqliteConnection,
    t: &TenantId,
    labeler: &Subject,
    queue: Uuid,
) -> Result<Option<Claim>> {
    let id: Option<String> = sqlx::query_scalar(
        "INSERT INTO assignments (tenant_id, id, queue_id, sample_id, labeler, state, schema_version, leased_at,
                                  expires_at)
         SELECT ?2, ?4, ?1, pick.sample_id, ?3, 'leased', q.schema_version, ?5, ?5 + q.lease_seconds * 1000
         FROM (SELECT schema_version, lease_seconds FROM queues
               WHERE id = ?1 AND tenant_id = ?2 AND state = 'active') q,
              (SELECT g.sample_id FROM gold_answers g
               WHERE g.queue_id = ?1 AND g.tenant_id = ?2
                 AND NOT EXISTS (SELECT 1 FROM assignments x WHERE x.sample_id = g.sample_id AND x.labeler = ?3)
               ORDER BY random() LIMIT 1) pick
         WHERE true
         ON CONFLICT DO NOTHING
         RETURNING id",
    )
    .bind(queue.to_string())
    .bind(t.as_str())
    .bind(labeler.as_str())
    .bind(new_id().to_string())
    .bind(now_ms())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = id else { return Ok(None) };
    let id = Uuid::parse_str(&id).map_err(|e| Error::Internal(e.into()))?;
    Ok(Some(load_claim(conn, t, id, Some(labeler)).await?))
}
