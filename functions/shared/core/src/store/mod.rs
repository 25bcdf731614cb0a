//! The store port: everything Anvil persists, as coarse operations that each run in one transaction of the
//! adapter. Adapters: `postgres` (production) — and the embedded SQLite one for `anvil serve` with no
//! configuration. Rules that do not depend on the database (validation, roles) live in the services
//! (`crate::service`); rules that must hold under concurrency (leases, overlap, idempotency) live here, in SQL.

pub mod postgres;
pub mod sqlite;

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
pub trait Store: Send + Sync + 'static {
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

/// A new time-ordered id.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// The conflict answered when a lease is no longer the caller's to use.
pub(crate) fn lease_gone(state: anvil_types::AssignmentState) -> crate::Error {
    match state {
        anvil_types::AssignmentState::Expired => crate::Error::conflict(
            "lease_expired",
            "the lease expired and the sample went back to the pool",
        ),
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
