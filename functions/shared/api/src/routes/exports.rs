//! Route group `exports`: request an export (202; a worker writes it), watch it, download it through a
//! signed URL; and the signed-URL endpoints of the local blob directory (embedded default).

use std::time::Duration;

use anvil_types::{CreateExport, ErrorEnvelope, Export, ExportList, ExportQuery};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Json, Path, Query};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_export, list_exports))
        .routes(routes!(get_export))
        .routes(routes!(download_blob, upload_blob))
}

/// Largest file accepted by a signed upload URL of the local blob directory.
pub const MAX_UPLOAD_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Request an export of the queue's labels (admin): 202 with the export; a worker writes the file.
#[utoipa::path(post, path = "/v1/queues/{id}/exports", tag = "exports", params(("id" = Uuid, Path)),
    request_body = CreateExport, responses((status = 202, body = Export), (status = 404, body = ErrorEnvelope),
    (status = 422, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn create_export(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(queue): Path<Uuid>,
    Json(req): Json<CreateExport>,
) -> ApiResult<(StatusCode, Json<Export>)> {
    tracing::Span::current().record("queue_id", tracing::field::display(queue));
    let e = s.anvil.create_export(&p, queue, &req).await?;
    tracing::info!(export_id = %e.id, "export requested");
    Ok((StatusCode::ACCEPTED, Json(e)))
}

/// The queue's exports, newest first (admin).
#[utoipa::path(get, path = "/v1/queues/{id}/exports", tag = "exports", params(("id" = Uuid, Path)),
    responses((status = 200, body = ExportList), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn list_exports(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(queue): Path<Uuid>,
) -> ApiResult<Json<ExportList>> {
    Ok(Json(ExportList { items: s.anvil.list_exports(&p, queue).await? }))
}

/// An export's state, row count, bytes, sha256 and manifest; when it succeeded, a signed download URL.
#[utoipa::path(get, path = "/v1/exports/{id}", tag = "exports", params(("id" = Uuid, Path), ExportQuery),
    responses((status = 200, body = Export), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn get_export(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Json<Export>> {
    Ok(Json(s.anvil.get_export(&p, id, q.ttl_secs.map(Duration::from_secs)).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct Signed {
    /// Unix time after which the link stops working.
    expires: i64,
    /// HMAC-SHA256 of method, key and expiry.
    sig: String,
}

fn local(s: &AppState) -> ApiResult<&anvil_core::blob::FsBlobStore> {
    s.anvil.background.as_ref().and_then(|b| b.local.as_ref()).ok_or_else(|| ApiError::not_found("object"))
}

/// Download through a signed link of the local blob directory (no bearer token: the signature is the grant).
#[utoipa::path(get, path = "/v1/blobs/{key}", tag = "exports", params(("key" = String, Path), Signed),
    responses((status = 200, description = "the file"), (status = 403, body = ErrorEnvelope),
    (status = 404, body = ErrorEnvelope)))]
async fn download_blob(
    State(s): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<Signed>,
) -> ApiResult<Response> {
    let fs = local(&s)?;
    let key = anvil_core::blob::key_from_url(&key);
    fs.signer().verify("GET", &key, q.expires, &q.sig).map_err(ApiError::from)?;
    use anvil_core::blob::BlobStore;
    let reader = fs.open(&key).await?.ok_or_else(|| ApiError::not_found("object"))?;
    let stream = tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024);
    let name = key.rsplit('/').next().unwrap_or("download");
    let mut res = Body::from_stream(stream).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// Upload a file through a signed link of the local blob directory (imports). The object appears only
/// when the whole body arrived.
#[utoipa::path(put, path = "/v1/blobs/{key}", tag = "exports", params(("key" = String, Path), Signed),
    request_body(content = String, content_type = "application/octet-stream"),
    responses((status = 201, description = "stored"), (status = 403, body = ErrorEnvelope),
    (status = 404, body = ErrorEnvelope), (status = 413, body = ErrorEnvelope)))]
async fn upload_blob(
    State(s): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<Signed>,
    req: Request,
) -> ApiResult<StatusCode> {
    let fs = local(&s)?;
    let key = anvil_core::blob::key_from_url(&key);
    fs.signer().verify("PUT", &key, q.expires, &q.sig).map_err(ApiError::from)?;
    use anvil_core::blob::BlobStore;
    let mut upload = fs.begin(&key, "application/octet-stream").await?;
    let mut stream = req.into_body().into_data_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(_) => {
                let _ = upload.abort().await;
                return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_body", "the upload was interrupted"));
            }
        };
        total += chunk.len() as u64;
        if total > MAX_UPLOAD_BYTES {
            let _ = upload.abort().await;
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the file is too large",
            ));
        }
        upload.write(chunk).await?;
    }
    upload.finish().await?;
    Ok(StatusCode::CREATED)
}
