//! Route group `assignments`: claim the next sample, keep the lease alive, give it back.

use anvil_types::{Assignment, ReleaseAssignment, Sample};
use gloo_net::http::Method;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::{Api, ApiError};

/// A claim as the SPA reads it: [`anvil_types::Claim`] with the schema kept as raw JSON, so that a field
/// kind this build does not know yet still renders (with the generic JSON editor) instead of failing the
/// whole answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Claim {
    pub assignment: Assignment,
    pub sample: Sample,
    pub schema: Value,
}

/// `POST /v1/queues/{id}/assignments/next`: `None` when nothing is left for this labeler (204).
pub async fn next(api: &Api, queue: Uuid) -> Result<Option<Claim>, ApiError> {
    Ok(api
        .request::<(), Claim>(Method::POST, &format!("/v1/queues/{queue}/assignments/next"), None)
        .await?
        .body)
}

/// `GET /v1/assignments/{id}`: the assignment with its sample and schema (auditors: any of the tenant's).
pub async fn get(api: &Api, id: Uuid) -> Result<Claim, ApiError> {
    api.get(&format!("/v1/assignments/{id}")).await
}

pub async fn heartbeat(api: &Api, id: Uuid) -> Result<Assignment, ApiError> {
    api.request::<(), Assignment>(Method::POST, &format!("/v1/assignments/{id}/heartbeat"), None)
        .await?
        .into_body()
}

/// Skip: gives the sample back with a reason; this labeler will not get it again.
pub async fn release(api: &Api, id: Uuid, reason: &str) -> Result<Assignment, ApiError> {
    api.post(&format!("/v1/assignments/{id}/release"), &ReleaseAssignment { reason: reason.to_string() })
        .await
}
