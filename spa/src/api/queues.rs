//! Route group `queues`: queues, their stats and quality report, and adding samples.

use anvil_types::{
    AddSamples, AddSamplesResult, CreateQueue, PatchQueue, QualityReport, Queue, QueueList, QueueStats,
};
use gloo_net::http::Method;
use uuid::Uuid;

use super::{Api, ApiError};

pub async fn list(api: &Api) -> Result<Vec<Queue>, ApiError> {
    Ok(api.get::<QueueList>("/v1/queues").await?.items)
}

pub async fn get(api: &Api, id: Uuid) -> Result<Queue, ApiError> {
    api.get(&format!("/v1/queues/{id}")).await
}

pub async fn create(api: &Api, req: &CreateQueue) -> Result<Queue, ApiError> {
    api.post("/v1/queues", req).await
}

pub async fn patch(api: &Api, id: Uuid, req: &PatchQueue) -> Result<Queue, ApiError> {
    api.request(Method::PATCH, &format!("/v1/queues/{id}"), Some(req)).await?.into_body()
}

/// Progress of a queue (auditor and admin only).
pub async fn stats(api: &Api, id: Uuid) -> Result<QueueStats, ApiError> {
    api.get(&format!("/v1/queues/{id}/stats")).await
}

/// How far the labels of a queue agree, per field and per labeler (auditor and admin only; 403 otherwise).
pub async fn quality(api: &Api, id: Uuid) -> Result<QualityReport, ApiError> {
    api.get(&format!("/v1/queues/{id}/quality")).await
}

/// Adds at most [`anvil_types::MAX_SAMPLES_PER_BATCH`] samples; idempotent by external_id.
pub async fn add_samples(api: &Api, id: Uuid, req: &AddSamples) -> Result<AddSamplesResult, ApiError> {
    api.post(&format!("/v1/queues/{id}/samples"), req).await
}
