//! Route group `labels`: submit a label, read labels, list a queue's labels, review (auditor).

use anvil_core::store::Submitted;
use anvil_types::{ErrorEnvelope, Label, LabelListQuery, LabelPage, Review, ReviewLabel, SubmitLabel};
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path, Query};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit))
        .routes(routes!(get_label))
        .routes(routes!(list_labels))
        .routes(routes!(review))
}

/// Submit the label of an assignment: validated against the assignment's schema version; written together
/// with the assignment's state. 201 when written, 200 with the same label when this exact payload was
/// already submitted, 409 when a different one was or the lease is gone, 422 with field pointers when invalid.
#[utoipa::path(post, path = "/v1/labels", tag = "labels", request_body = SubmitLabel, responses(
    (status = 201, body = Label), (status = 200, body = Label, description = "already submitted (idempotent)"),
    (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn submit(
    State(s): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<SubmitLabel>,
) -> ApiResult<(StatusCode, Json<Label>)> {
    tracing::Span::current().record("assignment_id", tracing::field::display(req.assignment_id));
    Ok(match s.anvil.submit(&p, &req).await? {
        Submitted::Created(l) => (StatusCode::CREATED, Json(l)),
        Submitted::Existing(l) => (StatusCode::OK, Json(l)),
    })
}

/// One label with its reviews (labelers: their own only).
#[utoipa::path(get, path = "/v1/labels/{id}", tag = "labels", params(("id" = Uuid, Path)),
    responses((status = 200, body = Label), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn get_label(State(s): State<AppState>, Auth(p): Auth, Path(id): Path<Uuid>) -> ApiResult<Json<Label>> {
    Ok(Json(s.anvil.get_label(&p, id).await?))
}

/// A queue's labels in a stable order, a page at a time (labelers: their own only).
#[utoipa::path(get, path = "/v1/queues/{id}/labels", tag = "labels", params(("id" = Uuid, Path), LabelListQuery),
    responses((status = 200, body = LabelPage), (status = 400, body = ErrorEnvelope),
    (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn list_labels(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<LabelListQuery>,
) -> ApiResult<Json<LabelPage>> {
    tracing::Span::current().record("queue_id", tracing::field::display(id));
    let (items, next_cursor) = s.anvil.list_labels(&p, id, &q).await?;
    Ok(Json(LabelPage { items, next_cursor }))
}

/// Accept or reject a label with a comment (auditor, admin); a rejection needs a comment.
#[utoipa::path(post, path = "/v1/labels/{id}/review", tag = "labels", params(("id" = Uuid, Path)),
    request_body = ReviewLabel, responses((status = 201, body = Review), (status = 404, body = ErrorEnvelope),
    (status = 422, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn review(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<ReviewLabel>,
) -> ApiResult<(StatusCode, Json<Review>)> {
    Ok((StatusCode::CREATED, Json(s.anvil.review(&p, id, &req).await?)))
}
