//! Route group `assignments`: claim the next sample (a lease), read, heartbeat and release a lease.

use anvil_types::{Assignment, Claim, ErrorEnvelope, ReleaseAssignment};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(next))
        .routes(routes!(get_assignment))
        .routes(routes!(heartbeat))
        .routes(routes!(release))
}

fn record(queue: Option<Uuid>, assignment: Option<Uuid>) {
    let span = tracing::Span::current();
    if let Some(q) = queue {
        span.record("queue_id", tracing::field::display(q));
    }
    if let Some(a) = assignment {
        span.record("assignment_id", tracing::field::display(a));
    }
}

/// Claim the next sample of the queue for the caller: 200 with the lease, the sample and its schema; the
/// same lease again while it is live; 204 when nothing is left for the caller (or the queue is paused).
#[utoipa::path(post, path = "/v1/queues/{id}/assignments/next", tag = "assignments", params(("id" = Uuid, Path)),
    responses((status = 200, body = Claim), (status = 204, description = "nothing left for this labeler"),
    (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn next(State(s): State<AppState>, Auth(p): Auth, Path(queue): Path<Uuid>) -> ApiResult<Response> {
    record(Some(queue), None);
    Ok(match s.anvil.claim(&p, queue).await? {
        Some(c) => {
            record(None, Some(c.assignment.id));
            Json(c).into_response()
        }
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// One assignment with its sample and schema (labelers: their own only).
#[utoipa::path(get, path = "/v1/assignments/{id}", tag = "assignments", params(("id" = Uuid, Path)),
    responses((status = 200, body = Claim), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn get_assignment(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Claim>> {
    record(None, Some(id));
    Ok(Json(s.anvil.get_assignment(&p, id).await?))
}

/// Extend the caller's lease by the queue's lease time; 409 when the lease is gone.
#[utoipa::path(post, path = "/v1/assignments/{id}/heartbeat", tag = "assignments", params(("id" = Uuid, Path)),
    responses((status = 200, body = Assignment), (status = 404, body = ErrorEnvelope),
    (status = 409, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn heartbeat(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Assignment>> {
    record(None, Some(id));
    Ok(Json(s.anvil.heartbeat(&p, id).await?))
}

/// Skip: give the sample back with a reason; the caller never gets it again.
#[utoipa::path(post, path = "/v1/assignments/{id}/release", tag = "assignments", params(("id" = Uuid, Path)),
    request_body = ReleaseAssignment, responses((status = 200, body = Assignment),
    (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)),
    security(("bearer" = [])))]
async fn release(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<ReleaseAssignment>,
) -> ApiResult<Json<Assignment>> {
    record(None, Some(id));
    Ok(Json(s.anvil.release(&p, id, &req).await?))
}
