//! Route group `imports`: large sample files (JSON Lines or CSV) uploaded through a signed URL and read by a
//! background job, with per-line errors.

use anvil_types::{CreateImport, Import};
use gloo_net::http::Method;
use uuid::Uuid;

use super::{Api, ApiError};

/// Creates an import (admin); its answer carries the `upload_url` to PUT the file to.
pub async fn create(api: &Api, queue: Uuid, req: &CreateImport) -> Result<Import, ApiError> {
    api.post(&format!("/v1/queues/{queue}/imports"), req).await
}

/// Starts reading the uploaded file (starting twice answers the same import).
pub async fn start(api: &Api, id: Uuid) -> Result<Import, ApiError> {
    api.request::<(), Import>(Method::POST, &format!("/v1/imports/{id}/start"), None).await?.into_body()
}

/// An import's state and counts, with the first 1000 invalid lines.
pub async fn get(api: &Api, id: Uuid) -> Result<Import, ApiError> {
    api.get(&format!("/v1/imports/{id}")).await
}
