//! Route group `gold`: a queue's gold (check) samples with their known answers, and how the queue uses them.

use anvil_types::{AddGold, AddGoldResult, GoldList, GoldSettings};
use gloo_net::http::Method;
use uuid::Uuid;

use super::{Api, ApiError};

/// Adds at most [`crate::gold::MAX_GOLD_PER_BATCH`] gold items (admin); an external id that is already gold
/// gets the new answer. 422 with `/items/N/...` pointers; 409 `not_gold` for an ordinary sample's id.
pub async fn add_gold(api: &Api, queue: Uuid, req: &AddGold) -> Result<AddGoldResult, ApiError> {
    api.post(&format!("/v1/queues/{queue}/gold"), req).await
}

/// The queue's gold items with their answers and labels so far (auditor, admin).
pub async fn list_gold(api: &Api, queue: Uuid) -> Result<GoldList, ApiError> {
    api.get(&format!("/v1/queues/{queue}/gold")).await
}

/// Rate, accuracy floor and exempt labelers (auditor, admin).
pub async fn gold_settings(api: &Api, queue: Uuid) -> Result<GoldSettings, ApiError> {
    api.get(&format!("/v1/queues/{queue}/gold/settings")).await
}

/// Replaces the queue's gold settings (admin); 422 with `/rate`, `/floor/...`, `/exempt/N` pointers.
pub async fn put_gold_settings(api: &Api, queue: Uuid, req: &GoldSettings) -> Result<GoldSettings, ApiError> {
    api.request(Method::PUT, &format!("/v1/queues/{queue}/gold/settings"), Some(req)).await?.into_body()
}
