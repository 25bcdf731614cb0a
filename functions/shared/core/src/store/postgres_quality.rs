//! Postgres: what the quality report reads, and gold samples (migrations/0009_gold.sql).

use anvil_types::{AddGoldResult, Claim, FinalSettings, GoldItem, GoldSettings, NewGold, QueueState};
use std::collections::HashSet;

use async_trait::async_trait;
use futures::TryStreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

use super::postgres::{PgStore, audit, claim_from, load_queue};
use super::rows::{self, ASSIGNMENT_COLS, StoredRow};
use super::{GoldLabel, QualityStore, new_id};
use crate::domain::{Subject, TenantId};
use crate::error::{Error, Result};
use crate::quality::QualityRow;
use crate::quality::final_label::SampleLabels;

#[async_trait]
impl QualityStore for PgStore {
    async fn quality_scan(
        &self,
        t: &TenantId,
        queue: Uuid,
        with_samples: bool,
        each: &mut (dyn FnMut(QualityRow) + Send),
    ) -> Result<u64> {
        let mut tx = self.tx(t).await?;
        // The queue's labels by labels_queue_id_idx (no order: the report does not need one), gold samples
        // left out by an anti-join on the (small) gold_answers, the sample by primary key only when asked
        // for. Streamed: the database sends rows as it reads them.
        let mut n = 0;
        {
            let mut rows = sqlx::query(
                "SELECT l.id, l.sample_id, l.labeler, l.payload,
                        CASE WHEN $3 THEN (SELECT x.payload FROM samples x WHERE x.id = l.sample_id) END AS sample
                 FROM labels l
                 WHERE l.queue_id = $1 AND l.tenant_id = $2
                   AND NOT EXISTS (SELECT 1 FROM gold_answers g WHERE g.sample_id = l.sample_id)",
            )
            .bind(queue)
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
        let mut tx = self.tx(t).await?;
        let rows = sqlx::query(
            "SELECT r.label_id FROM reviews r JOIN labels l ON l.id = r.label_id
             WHERE l.queue_id = $1 AND r.tenant_id = $2 AND r.verdict = 'reject'
               AND NOT EXISTS (SELECT 1 FROM reviews n WHERE n.label_id = r.label_id
                               AND (n.created_at, n.id) > (r.created_at, r.id))",
        )
        .bind(queue)
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
        let mut tx = self.tx(t).await?;
        let q = load_queue(&mut tx, t, queue).await?;
        if q.state == QueueState::Archived {
            return Err(Error::conflict(
                "queue_archived",
                "gold samples cannot be added to an archived queue",
            ));
        }
        let ext: Vec<&str> = items.iter().map(|g| g.external_id.as_str()).collect();
        // Lock the queue's samples of these external ids: a concurrent add of the same ids waits here.
        let existing = sqlx::query(
            "SELECT s.external_id, s.id, s.gold FROM samples s
             WHERE s.queue_id = $1 AND s.external_id = ANY($2) FOR UPDATE",
        )
        .bind(queue)
        .bind(&ext)
        .fetch_all(&mut *tx)
        .await?;
        let mut known = std::collections::HashMap::new();
        for r in &existing {
            let e: String = r.text("external_id")?;
            if !r.flag("gold")? {
                return Err(Error::conflict(
                    "not_gold",
                    format!(
                        "`{e}` is an ordinary sample of this queue; a gold sample needs its own external id"
                    ),
                ));
            }
            known.insert(e, r.uuid("id")?);
        }
        let (mut ids, mut answers, mut new_ids, mut new_ext, mut new_payloads) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for g in items {
            let id = match known.get(&g.external_id) {
                Some(id) => *id,
                None => {
                    let id = new_id();
                    new_ids.push(id);
                    new_ext.push(g.external_id.as_str());
                    new_payloads.push(g.payload.clone());
                    id
                }
            };
            ids.push(id);
            answers.push(g.answer.clone());
        }
        // No open slot: only the gold claim hands a gold sample out (and the trigger keeps it so).
        sqlx::query(
            "INSERT INTO samples (tenant_id, id, queue_id, external_id, payload, priority, rank, order_key,
                                  open_slots, gold)
             SELECT $1, u.id, $2, u.ext, u.payload, 0, 0, 0, 0, true
             FROM unnest($3::uuid[], $4::text[], $5::jsonb[]) AS u(id, ext, payload)",
        )
        .bind(t.as_str())
        .bind(queue)
        .bind(&new_ids)
        .bind(&new_ext)
        .bind(&new_payloads)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO gold_answers (tenant_id, sample_id, queue_id, answer, created_by)
             SELECT $1, u.id, $2, u.answer, $3 FROM unnest($4::uuid[], $5::jsonb[]) AS u(id, answer)
             ON CONFLICT (sample_id) DO UPDATE SET answer = EXCLUDED.answer, updated_at = now()",
        )
        .bind(t.as_str())
        .bind(queue)
        .bind(actor.as_str())
        .bind(&ids)
        .bind(&answers)
        .execute(&mut *tx)
        .await?;
        let created = i64::try_from(new_ids.len()).unwrap_or(i64::MAX);
        let updated = i64::try_from(items.len()).unwrap_or(i64::MAX) - created;
        audit(
            &mut tx,
            t,
            actor,
            "gold.add",
            queue.to_string(),
            json!({"created": created, "updated": updated}),
        )
        .await?;
        tx.commit().await?;
        Ok(AddGoldResult { created, updated })
    }

    async fn list_gold(&self, t: &TenantId, queue: Uuid, limit: u32) -> Result<Vec<GoldItem>> {
        let mut tx = self.tx(t).await?;
        load_queue(&mut tx, t, queue).await?;
        let rows = sqlx::query(
            "SELECT s.id, s.external_id, s.payload, g.answer,
                    (SELECT count(*) FROM labels l WHERE l.sample_id = s.id) AS labels
             FROM gold_answers g JOIN samples s ON s.id = g.sample_id
             WHERE g.queue_id = $1 AND g.tenant_id = $2
             ORDER BY s.external_id LIMIT $3",
        )
        .bind(queue)
        .bind(t.as_str())
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(rows::gold_item).collect()
    }

    async fn gold_settings(&self, t: &TenantId, queue: Uuid) -> Result<GoldSettings> {
        let mut tx = self.tx(t).await?;
        load_queue(&mut tx, t, queue).await?;
        let row = sqlx::query(
            "SELECT rate, min_accuracy, min_items, exempt FROM gold_settings WHERE queue_id = $1 AND tenant_id = $2",
        )
        .bind(queue)
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
        let mut tx = self.tx(t).await?;
        load_queue(&mut tx, t, queue).await?;
        let row = sqlx::query(
            "INSERT INTO gold_settings AS g (tenant_id, queue_id, rate, min_accuracy, min_items, exempt, updated_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (queue_id) DO UPDATE SET rate = EXCLUDED.rate, min_accuracy = EXCLUDED.min_accuracy,
                 min_items = EXCLUDED.min_items, exempt = EXCLUDED.exempt, updated_by = EXCLUDED.updated_by,
                 updated_at = now()
             RETURNING rate, min_accuracy, min_items, exempt",
        )
        .bind(t.as_str())
        .bind(queue)
        .bind(s.rate)
        .bind(s.floor.as_ref().map(|f| f.min_accuracy))
        .bind(s.floor.as_ref().map(|f| f.after))
        .bind(json!(s.exempt))
        .bind(actor.as_str())
        .fetch_one(&mut *tx)
        .await?;
        audit(&mut tx, t, actor, "gold.settings", queue.to_string(), json!(s)).await?;
        tx.commit().await?;
        rows::gold_settings(&row)
    }

    async fn claim_gold(&self, t: &TenantId, labeler: &Subject, queue: Uuid) -> Result<Option<Claim>> {
        let mut tx = self.tx(t).await?;
        // One statement: one of the labeler's unseen gold samples at random (gold sets are small: hundreds),
        // its new lease, and the claim's answer. ON CONFLICT DO NOTHING: a lease the labeler already holds in
        // the queue (assignments_one_live_lease_idx) wins, and the ordinary claim answers it.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH q AS (
                SELECT schema_version, lease_seconds FROM queues
                WHERE id = $1 AND tenant_id = $2 AND state = 'active'
            ), pick AS (
                SELECT g.sample_id FROM gold_answers g
                WHERE g.queue_id = $1 AND g.tenant_id = $2
                  AND NOT EXISTS (SELECT 1 FROM assignments x WHERE x.sample_id = g.sample_id AND x.labeler = $3)
                ORDER BY random() LIMIT 1
            ), a AS (
                INSERT INTO assignments (tenant_id, id, queue_id, sample_id, labeler, state, schema_version,
                                         expires_at)
                SELECT $2, $4, $1, pick.sample_id, $3, 'leased', q.schema_version,
                       now() + make_interval(secs => q.lease_seconds)
                FROM q, pick
                ON CONFLICT DO NOTHING
                RETURNING *
            )
            SELECT {ASSIGNMENT_COLS}, s.external_id, s.payload, s.priority, sv.schema, now() AS server_time
            FROM a JOIN samples s ON s.id = a.sample_id
            JOIN schema_versions sv ON sv.queue_id = a.queue_id AND sv.version = a.schema_version"
        )))
        .bind(queue)
        .bind(t.as_str())
        .bind(labeler.as_str())
        .bind(new_id())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let claim = claim_from(&row)?;
        self.handed.remember(t, &claim);
        Ok(Some(claim))
    }

    async fn gold_labels(
        &self,
        t: &TenantId,
        queue: Uuid,
        labeler: Option<&Subject>,
    ) -> Result<Vec<GoldLabel>> {
        let mut tx = self.tx(t).await?;
        // Per gold sample, its submitted assignments (by assignments_sample_labeler_key) and their labels.
        let rows = sqlx::query(
            "SELECT g.sample_id, l.labeler, l.payload, g.answer
             FROM gold_answers g
             JOIN assignments a ON a.sample_id = g.sample_id AND a.state = 'submitted'
                               AND ($3::text IS NULL OR a.labeler = $3)
             JOIN labels l ON l.assignment_id = a.id
             WHERE g.queue_id = $1 AND g.tenant_id = $2",
        )
        .bind(queue)
        .bind(t.as_str())
        .bind(labeler.map(Subject::as_str))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(rows::gold_label).collect()
    }

    async fn final_settings(&self, t: &TenantId, queue: Uuid) -> Result<FinalSettings> {
        let mut tx = self.tx(t).await?;
        load_queue(&mut tx, t, queue).await?;
        let row = sqlx::query(
            "SELECT method, adjudicate FROM final_settings WHERE queue_id = $1 AND tenant_id = $2",
        )
        .bind(queue)
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
        let mut tx = self.tx(t).await?;
        load_queue(&mut tx, t, queue).await?;
        let row = sqlx::query(
            "INSERT INTO final_settings (tenant_id, queue_id, method, adjudicate, updated_by)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (queue_id) DO UPDATE SET method = EXCLUDED.method, adjudicate = EXCLUDED.adjudicate,
                 updated_by = EXCLUDED.updated_by, updated_at = now()
             RETURNING method, adjudicate",
        )
        .bind(t.as_str())
        .bind(queue)
        .bind(s.method.as_str())
        .bind(json!(s.adjudicate))
        .bind(actor.as_str())
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
        let mut tx = self.tx(t).await?;
        // The page of samples by samples_queue_idx, its index condition `queue_id = ANY(..) AND id > cursor`
        // in both custom and generic plans: with `queue_id = $1` the planner may walk samples_pkey from the
        // first sample of every queue (a queue's ids are contiguous; its statistics say they are spread), and
        // a row comparison it applies as a filter, rescanning the queue up to the cursor each page. Then one
        // row per label (labels_sample_idx), grouped by sample in rows::sample_labels. One sample (`only`) by
        // primary key. Labels travel as text: `label_id` is read as text for the null of a sample without.
        let page = if only.is_some() {
            "SELECT * FROM samples s WHERE s.id = $5 AND s.queue_id = $1 AND s.tenant_id = $2 AND NOT s.gold"
        } else {
            "SELECT * FROM samples s
             WHERE s.queue_id = ANY(ARRAY[$1::uuid]) AND s.id > $3 AND s.tenant_id = $2
               AND NOT s.gold
             ORDER BY s.queue_id, s.id LIMIT $4"
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT s.id, s.external_id, s.payload, l.id::text AS label_id, l.labeler, l.payload AS label_payload,
                    d.answer AS decision, d.decided_by
             FROM ({page}) s
             LEFT JOIN labels l ON l.sample_id = s.id
             LEFT JOIN adjudications d ON d.sample_id = s.id
             ORDER BY s.id, l.id"
        )))
        .bind(queue)
        .bind(t.as_str())
        .bind(after.unwrap_or(Uuid::nil()))
        .bind(i64::from(limit))
        .bind(only)
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
        let mut tx = self.tx(t).await?;
        let n = sqlx::query(
            "INSERT INTO adjudications (tenant_id, sample_id, queue_id, answer, label_id, decided_by)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sample_id) DO NOTHING",
        )
        .bind(t.as_str())
        .bind(sample)
        .bind(queue)
        .bind(answer)
        .bind(label)
        .bind(actor.as_str())
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
