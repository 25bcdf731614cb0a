//! Route group `queues` (admin): queues, schema versions, samples, stats, quality, personal access tokens,
//! `/v1/me`.

use anvil_types::{
    AddGold, AddGoldResult, AddSamples, AddSamplesResult, CreateImport, CreateQueue, CreateToken,
    CreatedToken, ErrorEnvelope, GoldList, GoldSettings, Import, Me, OpsSummary, PatchQueue, QualityReport,
    Queue, QueueList, QueueStats, TokenInfo, TokenList,
};
use anvil_types::{Decide, FinalLabel, FinalList, FinalQuery, FinalSettings};
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
        .routes(routes!(create_queue, list_queues))
        .routes(routes!(get_queue, patch_queue))
        .routes(routes!(queue_stats))
        .routes(routes!(queue_quality))
        .routes(routes!(add_gold, list_gold))
        .routes(routes!(get_gold_settings, put_gold_settings))
        .routes(routes!(get_final_settings, put_final_settings))
        .routes(routes!(list_final))
        .routes(routes!(adjudicate))
        .routes(routes!(add_samples))
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
        .routes(routes!(me))
        .routes(routes!(create_import))
        .routes(routes!(get_import))
        .routes(routes!(start_import))
        .routes(routes!(ops_summary))
}

/// Start an import of a large JSONL or CSV file (admin): answers a signed URL to PUT the file to; then
/// `POST /v1/imports/{id}/start`.
#[utoipa::path(post, path = "/v1/queues/{id}/imports", tag = "imports", params(("id" = Uuid, Path)),
    request_body = CreateImport, responses((status = 201, body = Import), (status = 404, body = ErrorEnvelope),
    (status = 409, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn create_import(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<CreateImport>,
) -> ApiResult<(StatusCode, Json<Import>)> {
    record_queue(id);
    Ok((StatusCode::CREATED, Json(s.anvil.create_import(&p, id, &req).await?)))
}

/// An import's progress: rows created, already present, failed (with line numbers and reasons).
#[utoipa::path(get, path = "/v1/imports/{id}", tag = "imports", params(("id" = Uuid, Path)),
    responses((status = 200, body = Import), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn get_import(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Import>> {
    Ok(Json(s.anvil.get_import(&p, id).await?))
}

/// Process the uploaded file (admin): 202; starting twice answers the same import.
#[utoipa::path(post, path = "/v1/imports/{id}/start", tag = "imports", params(("id" = Uuid, Path)),
    responses((status = 202, body = Import), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn start_import(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<(StatusCode, Json<Import>)> {
    Ok((StatusCode::ACCEPTED, Json(s.anvil.start_import(&p, id).await?)))
}

/// Background work of the tenant: pending and available jobs, oldest pending age, failed and dead jobs,
/// expired leases, exports running (admin).
#[utoipa::path(get, path = "/v1/admin/ops/summary", tag = "operations", responses((status = 200, body = OpsSummary)),
    security(("bearer" = [])))]
async fn ops_summary(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<OpsSummary>> {
    Ok(Json(s.anvil.ops_summary(&p).await?))
}

fn record_queue(id: Uuid) {
    tracing::Span::current().record("queue_id", tracing::field::display(id));
}

/// Create a queue with its first schema version (admin).
#[utoipa::path(post, path = "/v1/queues", tag = "queues", request_body = CreateQueue, responses(
    (status = 201, body = Queue), (status = 409, body = ErrorEnvelope, description = "name taken"),
    (status = 422, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn create_queue(
    State(s): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<CreateQueue>,
) -> ApiResult<(StatusCode, Json<Queue>)> {
    let q = s.anvil.create_queue(&p, &req).await?;
    record_queue(q.id);
    tracing::info!(queue_id = %q.id, "queue created");
    Ok((StatusCode::CREATED, Json(q)))
}

/// List the tenant's queues (labelers see the ones that are not archived).
#[utoipa::path(get, path = "/v1/queues", tag = "queues", responses((status = 200, body = QueueList)),
    security(("bearer" = [])))]
async fn list_queues(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<QueueList>> {
    Ok(Json(QueueList { items: s.anvil.list_queues(&p).await? }))
}

/// One queue with its current schema.
#[utoipa::path(get, path = "/v1/queues/{id}", tag = "queues", params(("id" = Uuid, Path)),
    responses((status = 200, body = Queue), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn get_queue(State(s): State<AppState>, Auth(p): Auth, Path(id): Path<Uuid>) -> ApiResult<Json<Queue>> {
    record_queue(id);
    Ok(Json(s.anvil.get_queue(&p, id).await?))
}

/// Rename, pause/resume/archive, change the lease, or set a new schema (a new version) (admin).
#[utoipa::path(patch, path = "/v1/queues/{id}", tag = "queues", params(("id" = Uuid, Path)),
    request_body = PatchQueue, responses((status = 200, body = Queue), (status = 404, body = ErrorEnvelope),
    (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn patch_queue(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<PatchQueue>,
) -> ApiResult<Json<Queue>> {
    record_queue(id);
    Ok(Json(s.anvil.patch_queue(&p, id, &req).await?))
}

/// Progress of a queue: samples, labels, leases, per-labeler counts (auditor, admin).
#[utoipa::path(get, path = "/v1/queues/{id}/stats", tag = "queues", params(("id" = Uuid, Path)),
    responses((status = 200, body = QueueStats), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn queue_stats(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<QueueStats>> {
    record_queue(id);
    Ok(Json(s.anvil.queue_stats(&p, id).await?))
}

/// How far the labels of a queue agree (auditor, admin): per field of the current schema its headline
/// measure with a plain-language reading (or `measure: null` and why), every measure computed for its kind,
/// Cohen's κ per labeler pair and the coincidence matrix for choice fields, per-option agreement for multi
/// choice; per labeler, agreement with the others and with the majority. Labels whose latest review rejects
/// them are left out.
#[utoipa::path(get, path = "/v1/queues/{id}/quality", tag = "quality", params(("id" = Uuid, Path)),
    responses((status = 200, body = QualityReport), (status = 403, body = ErrorEnvelope),
    (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn queue_quality(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<QualityReport>> {
    record_queue(id);
    Ok(Json(s.anvil.queue_quality(&p, id).await?))
}

/// Add up to 1000 gold (check) samples with their known answers (admin). Each answer names the fields it
/// knows and is checked against the queue's current schema (422 with a pointer per field); an external id
/// that is already a gold sample of the queue gets the new answer; one that names an ordinary sample is a
/// 409. Gold samples are served to each labeler at the queue's rate, at most once each, and never look
/// different from other samples; their labels are scored, not exported.
#[utoipa::path(post, path = "/v1/queues/{id}/gold", tag = "quality", params(("id" = Uuid, Path)),
    request_body = AddGold, responses((status = 200, body = AddGoldResult), (status = 403, body = ErrorEnvelope),
    (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
    (status = 422, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn add_gold(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<AddGold>,
) -> ApiResult<Json<AddGoldResult>> {
    record_queue(id);
    Ok(Json(s.anvil.add_gold(&p, id, &req).await?))
}

/// The queue's gold samples with their known answers and how many labels each has (auditor, admin).
#[utoipa::path(get, path = "/v1/queues/{id}/gold", tag = "quality", params(("id" = Uuid, Path)),
    responses((status = 200, body = GoldList), (status = 403, body = ErrorEnvelope),
    (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn list_gold(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<GoldList>> {
    record_queue(id);
    Ok(Json(s.anvil.list_gold(&p, id).await?))
}

/// How the queue uses its gold samples: rate, accuracy floor, exempt labelers (auditor, admin).
#[utoipa::path(get, path = "/v1/queues/{id}/gold/settings", tag = "quality", params(("id" = Uuid, Path)),
    responses((status = 200, body = GoldSettings), (status = 403, body = ErrorEnvelope),
    (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn get_gold_settings(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<GoldSettings>> {
    record_queue(id);
    Ok(Json(s.anvil.gold_settings(&p, id).await?))
}

/// Set the gold rate (0..=0.5 of claims), the accuracy floor (a labeler under `min_accuracy` after `after`
/// gold samples gets a 403 `below_gold_floor` on claims) and the labelers exempt from it (admin).
#[utoipa::path(put, path = "/v1/queues/{id}/gold/settings", tag = "quality", params(("id" = Uuid, Path)),
    request_body = GoldSettings, responses((status = 200, body = GoldSettings),
    (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    (status = 422, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn put_gold_settings(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<GoldSettings>,
) -> ApiResult<Json<GoldSettings>> {
    record_queue(id);
    Ok(Json(s.anvil.put_gold_settings(&p, id, &req).await?))
}

/// How the queue decides each sample's final answer and which samples go to adjudication (auditor,
/// admin).
#[utoipa::path(get, path = "/v1/queues/{id}/final/settings", tag = "quality", params(("id" = Uuid, Path)),
    responses((status = 200, body = FinalSettings), (status = 403, body = ErrorEnvelope),
    (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn get_final_settings(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<FinalSettings>> {
    record_queue(id);
    Ok(Json(s.anvil.final_settings(&p, id).await?))
}

/// Set the final method (`majority`: ties go to adjudication; `unanimous`; `dawid_skene` for nominal
/// fields, anchored by gold) and the adjudication rules per field (`disagreement`, or `agreement_below` a
/// threshold) (admin).
#[utoipa::path(put, path = "/v1/queues/{id}/final/settings", tag = "quality", params(("id" = Uuid, Path)),
    request_body = FinalSettings, responses((status = 200, body = FinalSettings),
    (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    (status = 422, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn put_final_settings(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<FinalSettings>,
) -> ApiResult<Json<FinalSettings>> {
    record_queue(id);
    Ok(Json(s.anvil.put_final_settings(&p, id, &req).await?))
}

/// The final answer of each sample with its method, the agreement per field and the labels behind it, in
/// sample order (auditor, admin). `status=adjudication` is the adjudication list: samples whose labels are
/// all in and that tie, differ under `unanimous`, or break a rule, with why.
#[utoipa::path(get, path = "/v1/queues/{id}/final", tag = "quality", params(("id" = Uuid, Path), FinalQuery),
    responses((status = 200, body = FinalList), (status = 400, body = ErrorEnvelope),
    (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn list_final(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<FinalQuery>,
) -> ApiResult<Json<FinalList>> {
    record_queue(id);
    Ok(Json(s.anvil.list_final(&p, id, &q).await?))
}

/// Decide a sample waiting for adjudication (auditor, admin): pick one of its labels (`label_id`) or write
/// the answer (`answer`, validated against the schema: 422 per field). 409 `not_waiting` when the sample
/// does not wait (already decided, final, or not all its labels in).
#[utoipa::path(post, path = "/v1/queues/{id}/adjudications/{sample_id}", tag = "quality",
    params(("id" = Uuid, Path), ("sample_id" = Uuid, Path)), request_body = Decide,
    responses((status = 200, body = FinalLabel), (status = 403, body = ErrorEnvelope),
    (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
    (status = 422, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn adjudicate(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, sample)): Path<(Uuid, Uuid)>,
    Json(req): Json<Decide>,
) -> ApiResult<Json<FinalLabel>> {
    record_queue(id);
    Ok(Json(s.anvil.adjudicate(&p, id, sample, &req).await?))
}

/// Add up to 1000 samples; idempotent by `external_id` (admin).
#[utoipa::path(post, path = "/v1/queues/{id}/samples", tag = "queues", params(("id" = Uuid, Path)),
    request_body = AddSamples, responses((status = 200, body = AddSamplesResult),
    (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn add_samples(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<AddSamples>,
) -> ApiResult<Json<AddSamplesResult>> {
    record_queue(id);
    Ok(Json(s.anvil.add_samples(&p, id, &req).await?))
}

/// Issue a personal access token; the secret is in this answer only (admin).
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 422, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn create_token(
    State(s): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    Ok((StatusCode::CREATED, Json(s.anvil.create_token(&p, &req).await?)))
}

/// The tenant's personal access tokens, without their secrets (admin).
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", responses((status = 200, body = TokenList)),
    security(("bearer" = [])))]
async fn list_tokens(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<TokenList>> {
    Ok(Json(TokenList { items: s.anvil.list_tokens(&p).await? }))
}

/// Revoke a personal access token (admin); revoking twice answers the same.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", params(("id" = Uuid, Path)),
    responses((status = 200, body = TokenInfo), (status = 404, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn revoke_token(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<TokenInfo>> {
    Ok(Json(s.anvil.revoke_token(&p, id).await?))
}

/// Who the presented token says you are.
#[utoipa::path(get, path = "/v1/me", tag = "tokens", responses((status = 200, body = Me),
    (status = 401, body = ErrorEnvelope)), security(("bearer" = [])))]
async fn me(Auth(p): Auth) -> Json<Me> {
    Json(Me {
        tenant_id: p.tenant.to_string(),
        subject: p.subject.to_string(),
        role: p.role,
        auth: match p.method {
            anvil_core::auth::AuthMethod::Jwt => "jwt".into(),
            anvil_core::auth::AuthMethod::Pat => "pat".into(),
        },
    })
}
