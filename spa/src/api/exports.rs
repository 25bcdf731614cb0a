//! Route group `exports`: a queue's label exports (JSON Lines or CSV, written by a background job) and the
//! signed download link of a finished one.

use anvil_types::{CreateExport, Export, ExportList};
use uuid::Uuid;

use super::{Api, ApiError};

/// Requests an export (admin): answers at once with the export in state `pending`.
pub async fn create(api: &Api, queue: Uuid, req: &CreateExport) -> Result<Export, ApiError> {
    api.post(&format!("/v1/queues/{queue}/exports"), req).await
}

/// The queue's exports, newest first (without download links).
pub async fn list(api: &Api, queue: Uuid) -> Result<Vec<Export>, ApiError> {
    Ok(api.get::<ExportList>(&format!("/v1/queues/{queue}/exports")).await?.items)
}

/// One export; when it succeeded, with a freshly signed `download_url`.
pub async fn get(api: &Api, id: Uuid) -> Result<Export, ApiError> {
    api.get(&format!("/v1/exports/{id}")).await
}
