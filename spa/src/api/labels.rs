//! Route group `labels`: submit a label, list a queue's labels, review one.

use anvil_types::{Label, LabelPage, Review, ReviewLabel, SubmitLabel, Verdict};
use serde_json::Value;
use uuid::Uuid;

use super::{Api, ApiError, encode};

/// `POST /v1/labels`: 201 when written, 200 when this exact payload was already submitted (idempotent).
pub async fn submit(api: &Api, assignment_id: Uuid, payload: Value) -> Result<Label, ApiError> {
    api.post("/v1/labels", &SubmitLabel { assignment_id, payload }).await
}

/// One page of a queue's labels, optionally only those of one sample.
pub async fn list(
    api: &Api,
    queue: Uuid,
    cursor: Option<&str>,
    limit: u32,
    sample_id: Option<Uuid>,
) -> Result<LabelPage, ApiError> {
    let mut path = format!("/v1/queues/{queue}/labels?limit={limit}");
    if let Some(c) = cursor {
        path.push_str("&cursor=");
        path.push_str(&encode(c));
    }
    if let Some(s) = sample_id {
        path.push_str(&format!("&sample_id={s}"));
    }
    api.get(&path).await
}

pub async fn review(api: &Api, label: Uuid, verdict: Verdict, comment: &str) -> Result<Review, ApiError> {
    api.post(&format!("/v1/labels/{label}/review"), &ReviewLabel { verdict, comment: comment.to_string() })
        .await
}
