//! The store port: everything Anvil persists, as coarse operations that each run in one transaction of the
//! adapter. Adapters: `postgres` (production) — and the embedded SQLite one for `anvil serve` with no
//! configuration. Rules that do not depend on the database (validation, roles) live in the services
//! (`crate::service`); rules that must hold under concurrency (leases, overlap, idempotency) live here, in SQL.

#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod handed;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "postgres")]
mod postgres_quality;
#[cfg(feature = "postgres")]
mod postgres_tasks;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod rows;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "sqlite")]
mod sqlite_group;
#[cfg(feature = "sqlite")]
mod sqlite_quality;
#[cfg(feature = "sqlite")]
mod sqlite_tasks;

use anvil_types::{
    AddSamplesResult, Assignment, Claim, CreateQueue, FieldError, Label, LabelSchema, NewSample, PatchQueue,
    Queue, QueueStats, Review, Role, TokenInfo, Verdict,
};
use async_trait::async_trait;
use serde_json::Value;
use time::OffsetDateTime;

use uuid::Uuid;

use crate::domain::{Subject, TenantId};
use crate::error::Result;

/// Validates a label payload against the assignment's schema and the sample's payload.
pub type LabelValidator<'a> = &'a (dyn Fn(&LabelSchema, &Value, &Value) -> Vec<FieldError> + Sync);

/// The outcome of a submit.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// The label was written by this call.
    Created(Label),
    /// The same payload had already been submitted for this assignment: the existing label.
    Existing(Label),
}

/// Filter and page of a label listing.
#[derive(Debug, Clone, Default)]
pub struct LabelFilter {
    pub sample_id: Option<Uuid>,
    pub labeler: Option<String>,
    /// Labels with an id greater than this (the previous page's last id).
    pub after: Option<Uuid>,
    pub limit: u32,
}

/// A personal access token as found by its hash.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub tenant: TenantId,
    pub id: Uuid,
    pub role: Role,
    pub subject: Subject,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
    pub subject: String,
    pub hash: String,
    pub expires_at: OffsetDateTime,
}

#[async_trait]
pub trait Store: QualityStore + Send + Sync + 'static {
    /// `postgres` or `sqlite`.
    fn backend(&self) -> &'static str;
    /// Answers when the database answers.
    async fn ping(&self) -> Result<()>;

    // ---- queues and samples (admin)
    async fn create_queue(&self, t: &TenantId, actor: &Subject, q: &CreateQueue) -> Result<Queue>;
    async fn list_queues(&self, t: &TenantId) -> Result<Vec<Queue>>;
    async fn get_queue(&self, t: &TenantId, id: Uuid) -> Result<Queue>;
    async fn patch_queue(&self, t: &TenantId, actor: &Subject, id: Uuid, p: &PatchQueue) -> Result<Queue>;
    async fn queue_stats(&self, t: &TenantId, id: Uuid) -> Result<QueueStats>;
    /// Adds samples; an `external_id` already in the queue is left as it is (idempotent).
    async fn add_samples(
        &self,
        t: &TenantId,
        actor: &Subject,
        queue: Uuid,
        samples: &[NewSample],
    ) -> Result<AddSamplesResult>;

    // ---- assignments (the hot path)
    /// The labeler's live lease in the queue if it has one, else a new lease on the next sample, or `None`
    /// when nothing is left for this labeler (or the queue is not active).
    async fn claim(&self, t: &TenantId, labeler: &Subject, queue: Uuid) -> Result<Option<Claim>>;
    /// An assignment with its sample and schema; `labeler` restricts to that labeler's own.
    async fn get_assignment(&self, t: &TenantId, id: Uuid, labeler: Option<&Subject>) -> Result<Claim>;
    async fn heartbeat(&self, t: &TenantId, labeler: &Subject, id: Uuid) -> Result<Assignment>;
    async fn release(&self, t: &TenantId, labeler: &Subject, id: Uuid, reason: &str) -> Result<Assignment>;
    /// Puts expired leases (of every tenant) back in the pool; returns how many.
    async fn reclaim_expired(&self, limit: i32) -> Result<u64>;

    // ---- labels and reviews
    /// Validates with `validate` and writes the label + marks the assignment submitted, in one transaction.
    async fn submit(
        &self,
        t: &TenantId,
        labeler: &Subject,
        assignment: Uuid,
        payload: &Value,
        validate: LabelValidator<'_>,
    ) -> Result<Submitted>;
    async fn get_label(&self, t: &TenantId, id: Uuid) -> Result<Label>;
    async fn list_labels(&self, t: &TenantId, queue: Uuid, f: &LabelFilter) -> Result<Vec<Label>>;
    async fn review(
        &self,
        t: &TenantId,
        reviewer: &Subject,
        label: Uuid,
        verdict: Verdict,
        comment: &str,
    ) -> Result<Review>;

    // ---- personal access tokens
    async fn create_token(&self, t: &TenantId, actor: &Subject, tok: &NewToken) -> Result<TokenInfo>;
    async fn list_tokens(&self, t: &TenantId) -> Result<Vec<TokenInfo>>;
    async fn revoke_token(&self, t: &TenantId, actor: &Subject, id: Uuid) -> Result<TokenInfo>;
    async fn find_token(&self, hash: &str) -> Result<Option<TokenRecord>>;
}

/// A label on a gold sample, with the sample's known answer.
#[derive(Debug, Clone, PartialEq)]
pub struct GoldLabel {
    pub sample_id: Uuid,
    pub labeler: String,
    pub payload: Value,
    pub answer: Value,
}

/// Quality control: what the agreement report reads, and gold samples. Implemented by both adapters
/// (store/postgres_quality.rs, store/sqlite_quality.rs); part of every [`Store`].
#[async_trait]
pub trait QualityStore: Send + Sync + 'static {
    /// Hands every label of a queue's ordinary (not gold) samples to `each`, as the quality report reads
    /// them, in one read transaction streamed row by row (the database reads ahead while the caller works;
    /// memory stays one row deep). `with_samples` adds each label's sample payload (span fields measure
    /// tokens of its text). Answers the number of rows.
    async fn quality_scan(
        &self,
        t: &TenantId,
        queue: Uuid,
        with_samples: bool,
        each: &mut (dyn FnMut(crate::quality::QualityRow) + Send),
    ) -> Result<u64>;
    /// The queue's labels whose latest review rejects them (they do not count as answers). Reviews are few
    /// next to labels: one pass over the tenant's reviews, each joined to its label by primary key.
    async fn rejected_labels(&self, t: &TenantId, queue: Uuid) -> Result<Vec<Uuid>>;

    /// Adds gold samples (checked by the service) in one transaction; an external id that is already a gold
    /// sample of the queue gets the new answer; one that names an ordinary sample is a conflict.
    async fn add_gold(
        &self,
        t: &TenantId,
        actor: &Subject,
        queue: Uuid,
        items: &[anvil_types::NewGold],
    ) -> Result<anvil_types::AddGoldResult>;
    /// The queue's gold samples with their answers, by external id (at most `limit`).
    async fn list_gold(&self, t: &TenantId, queue: Uuid, limit: u32) -> Result<Vec<anvil_types::GoldItem>>;
    /// The queue's gold settings (rate 0 and no floor when never set).
    async fn gold_settings(&self, t: &TenantId, queue: Uuid) -> Result<anvil_types::GoldSettings>;
    async fn put_gold_settings(
        &self,
        t: &TenantId,
        actor: &Subject,
        queue: Uuid,
        s: &anvil_types::GoldSettings,
    ) -> Result<anvil_types::GoldSettings>;
    /// A new lease on a gold sample of an active queue that the labeler has never been given, at random;
    /// `None` when there is none left for them, or when they hold a lease in the queue (the ordinary claim
    /// answers that one).
    async fn claim_gold(&self, t: &TenantId, labeler: &Subject, queue: Uuid) -> Result<Option<Claim>>;
    /// Submitted labels on the queue's gold samples, with their answers; `labeler` restricts to one.
    async fn gold_labels(
        &self,
        t: &TenantId,
        queue: Uuid,
        labeler: Option<&Subject>,
    ) -> Result<Vec<GoldLabel>>;

    /// The queue's final settings (majority, no rules, when never set).
    async fn final_settings(&self, t: &TenantId, queue: Uuid) -> Result<anvil_types::FinalSettings>;
    async fn put_final_settings(
        &self,
        t: &TenantId,
        actor: &Subject,
        queue: Uuid,
        s: &anvil_types::FinalSettings,
    ) -> Result<anvil_types::FinalSettings>;
    /// The queue's ordinary samples in id order after `after` (or only sample `only`), each with its labels
    /// (but those in `rejected`: see [`QualityStore::rejected_labels`]) and its auditor's decision.
    async fn final_samples(
        &self,
        t: &TenantId,
        queue: Uuid,
        after: Option<Uuid>,
        only: Option<Uuid>,
        limit: u32,
        rejected: &std::collections::HashSet<Uuid>,
    ) -> Result<Vec<crate::quality::final_label::SampleLabels>>;
    /// Records an auditor's decision; false when the sample already has one.
    async fn record_decision(
        &self,
        t: &TenantId,
        actor: &Subject,
        queue: Uuid,
        sample: Uuid,
        answer: &Value,
        label: Option<Uuid>,
    ) -> Result<bool>;
}

/// A new time-ordered id.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// A submit for an assignment that already has its label: the same payload answers that label (idempotent),
/// a different one is a conflict. Both adapters decide it here.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn resubmitted(existing: Label, payload: &Value) -> Result<Submitted> {
    if existing.payload == *payload {
        Ok(Submitted::Existing(existing))
    } else {
        Err(crate::Error::conflict(
            "label_conflict",
            "a different label was already submitted for this assignment",
        ))
    }
}

/// The conflict answered when a lease is no longer the caller's to use.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn lease_gone(state: anvil_types::AssignmentState) -> crate::Error {
    match state {
        anvil_types::AssignmentState::Expired => {
            crate::Error::conflict("lease_expired", "the lease expired and the sample went back to the pool")
        }
        anvil_types::AssignmentState::Released => {
            crate::Error::conflict("lease_released", "the assignment was released")
        }
        anvil_types::AssignmentState::Submitted => {
            crate::Error::conflict("already_submitted", "the assignment was already submitted")
        }
        anvil_types::AssignmentState::Leased => {
            crate::Error::conflict("lease_changed", "the lease changed; try again")
        }
    }
}

// ------------------------------------------------------------------------------------------------------------
// Background work: exports, imports and the jobs that run them
// ------------------------------------------------------------------------------------------------------------

/// An export as stored, with the object keys the API never shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRecord {
    pub export: anvil_types::Export,
    pub tenant: TenantId,
    pub object_key: String,
    pub manifest_key: String,
}

/// What a finished export produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportOutcome {
    pub rows: i64,
    pub bytes: i64,
    pub sha256: String,
    pub manifest: Value,
}

/// One label as exported, with its sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    pub label_id: Uuid,
    pub sample_id: Uuid,
    pub external_id: String,
    pub sample: Value,
    pub labeler: String,
    pub schema_version: i32,
    pub payload: Value,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImportRecord {
    pub import: anvil_types::Import,
    pub tenant: TenantId,
    pub object_key: String,
}

/// Progress of an import job.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImportProgress {
    pub created: i64,
    pub existing: i64,
    pub failed: i64,
    pub errors: Vec<anvil_types::ImportRowError>,
}

/// A job taken by a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: Uuid,
    pub tenant: String,
    pub kind: String,
    pub payload: Value,
    pub attempts: i32,
    pub max_attempts: i32,
    /// `running`, or `succeeded`/`dead` when a redelivered message names a finished job.
    pub state: String,
}

/// The port of background work; implemented by the same adapters as [`Store`].
#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
    /// Writes the export and its job in one transaction.
    async fn create_export(
        &self,
        t: &TenantId,
        actor: &Subject,
        queue: Uuid,
        req: &anvil_types::CreateExport,
    ) -> Result<ExportRecord>;
    async fn get_export(&self, t: &TenantId, id: Uuid) -> Result<ExportRecord>;
    async fn list_exports(&self, t: &TenantId, queue: Uuid) -> Result<Vec<ExportRecord>>;
    /// Marks an export running (from pending, running or failed); a succeeded export is left as it is.
    async fn export_started(&self, t: &TenantId, id: Uuid) -> Result<ExportRecord>;
    /// Marks a running export succeeded; false when it was already succeeded (a redelivery).
    async fn export_succeeded(&self, t: &TenantId, id: Uuid, out: &ExportOutcome) -> Result<bool>;
    async fn export_failed(&self, t: &TenantId, id: Uuid, error: &str) -> Result<()>;
    /// Labels of a queue created up to `snapshot`, in label id order after `after`.
    async fn export_rows(
        &self,
        t: &TenantId,
        queue: Uuid,
        filter: &anvil_types::ExportFilter,
        snapshot: OffsetDateTime,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ExportRow>>;

    async fn create_import(
        &self,
        t: &TenantId,
        actor: &Subject,
        queue: Uuid,
        format: anvil_types::FileFormat,
    ) -> Result<ImportRecord>;
    async fn get_import(&self, t: &TenantId, id: Uuid) -> Result<ImportRecord>;
    /// Enqueues the import's job (once: starting twice answers the same import).
    async fn start_import(&self, t: &TenantId, actor: &Subject, id: Uuid) -> Result<ImportRecord>;
    async fn import_state(
        &self,
        t: &TenantId,
        id: Uuid,
        state: anvil_types::TaskState,
        progress: &ImportProgress,
        error: Option<&str>,
    ) -> Result<()>;

    /// Takes the next due job (pollers: Postgres/SQLite job tables), locking it for `visibility`.
    async fn reserve_job(&self, visibility: std::time::Duration) -> Result<Option<Job>>;
    /// Loads a job named by a queue message and counts the attempt (SQS worker).
    async fn begin_job(&self, id: Uuid) -> Result<Option<Job>>;
    /// Records the outcome; a failure backs off, or ends the job (`dead`) after its last attempt or when
    /// `give_up` (a permanent failure).
    async fn finish_job(
        &self,
        id: Uuid,
        error: Option<&str>,
        backoff: std::time::Duration,
        give_up: bool,
    ) -> Result<String>;
    async fn undispatched_jobs(&self, limit: i32) -> Result<Vec<Job>>;
    async fn mark_dispatched(&self, ids: &[Uuid]) -> Result<u64>;
    async fn ops_summary(&self, t: &TenantId) -> Result<anvil_types::OpsSummary>;
}

/// The object keys of an export.
pub fn export_keys(t: &TenantId, id: Uuid, format: anvil_types::FileFormat) -> (String, String) {
    let dir = format!("exports/{}/{}", t.as_str(), id.simple());
    (format!("{dir}/labels.{}", format.as_str()), format!("{dir}/manifest.json"))
}

/// The object key of an import's upload.
pub fn import_key(t: &TenantId, id: Uuid, format: anvil_types::FileFormat) -> String {
    format!("imports/{}/{}.{}", t.as_str(), id.simple(), format.as_str())
}
