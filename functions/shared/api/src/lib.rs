//! anvil-api: Anvil's HTTP API as axum routers.
//!
//! Each route group (`assignments`, `labels`, `queues`, `health`, later `exports`) is one module with
//! `routes()`; [`app`] merges them all (the `anvil serve` shape), [`group_app`] builds one group (the shape of
//! one Lambda function). Both get the same layers: panic catcher, request span, timeout, body limit, and the
//! JSON error envelope for every failure, including unknown routes and wrong methods.

pub mod error;
pub mod extract;
pub mod routes;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anvil_core::health::Probe;
use anvil_core::service::Anvil;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi};
use utoipa_axum::router::OpenApiRouter;

pub use error::{ApiError, ApiResult};

/// Shared state of every handler: built once per process (pool, keys, clients), cloned per request.
#[derive(Clone)]
pub struct AppState {
    pub anvil: Anvil,
    pub probes: Arc<Vec<Arc<dyn Probe>>>,
    pub limits: Limits,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_body_bytes: 4 * 1024 * 1024, request_timeout: Duration::from_secs(30) }
    }
}

/// The route groups; on AWS each is one Lambda function behind API Gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteGroup {
    Assignments,
    Exports,
    Labels,
    Queues,
    Health,
}

impl RouteGroup {
    pub const ALL: [RouteGroup; 5] = [
        RouteGroup::Assignments,
        RouteGroup::Exports,
        RouteGroup::Labels,
        RouteGroup::Queues,
        RouteGroup::Health,
    ];

    fn routes(self) -> OpenApiRouter<AppState> {
        match self {
            RouteGroup::Assignments => routes::assignments::routes(),
            RouteGroup::Exports => routes::exports::routes(),
            RouteGroup::Labels => routes::labels::routes(),
            RouteGroup::Queues => routes::queues::routes(),
            // the API description travels with the unauthenticated health group
            RouteGroup::Health => {
                routes::health::routes().route("/v1/openapi.json", axum::routing::get(openapi_json))
            }
        }
    }
}

fn all_routes() -> OpenApiRouter<AppState> {
    RouteGroup::ALL.iter().fold(OpenApiRouter::new(), |r, g| r.merge(g.routes()))
}

/// The OpenAPI document of the whole API (every group), built once.
pub fn openapi() -> &'static OpenApi {
    static DOC: OnceLock<OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = all_routes().into_openapi();
        doc.info = InfoBuilder::new()
            .title("Anvil")
            .version(env!("CARGO_PKG_VERSION"))
            .description(Some(
                "Multi-tenant human data labeling. Every error is {\"error\": {\"code\", \"message\", \"details\"}}.",
            ))
            .build();
        let comps = doc.components.get_or_insert_with(Default::default);
        comps.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        // the document itself
        let op = utoipa::openapi::path::OperationBuilder::new()
            .summary(Some("This OpenAPI document"))
            .tag("health")
            .response("200", utoipa::openapi::Response::new("OpenAPI 3.1 document"))
            .build();
        doc.paths.add_path_operation("/v1/openapi.json", vec![utoipa::openapi::HttpMethod::Get], op);
        doc
    })
}

async fn openapi_json() -> Response {
    axum::Json(openapi()).into_response()
}

/// Every route of every group: the `anvil serve` app.
pub fn app(state: AppState) -> Router {
    let (router, _) = all_routes().split_for_parts();
    finish(router, state)
}

/// Every route plus the labeling app's static files from `spa_dir` (unknown paths outside `/v1` and
/// `/health` get `index.html`, so the SPA's own routes survive a reload), with the browser security headers.
pub fn app_with_spa(state: AppState, spa_dir: &std::path::Path) -> Router {
    app_with_spa_connecting(state, spa_dir, &[])
}

/// [`app_with_spa`] whose CSP also lets the app fetch from `connect_origins` (an OpenID provider's discovery
/// document and token endpoint, e.g. `https://idp.example.com`).
pub fn app_with_spa_connecting(
    state: AppState,
    spa_dir: &std::path::Path,
    connect_origins: &[String],
) -> Router {
    use tower_http::services::{ServeDir, ServeFile};
    let index = spa_dir.join("index.html");
    // unknown paths get index.html with 200 (the SPA routes them), not a 404
    let files = ServeDir::new(spa_dir).fallback(ServeFile::new(index));
    // origins are serialized URLs; anything that could end the directive or the header is left out
    let plain = |o: &&String| o.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'\''));
    let connect: String = connect_origins.iter().filter(plain).map(|o| format!(" {o}")).collect();
    let csp = HeaderValue::try_from(format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data: https:; connect-src 'self'{connect}; frame-ancestors 'none'; base-uri 'self'; \
         form-action 'self'; object-src 'none'"
    ))
    // unreachable (visible ASCII only); the strictest policy if it ever were
    .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    let spa = Router::new()
        .fallback_service(files)
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, csp))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ));
    let (router, _) = all_routes().split_for_parts();
    let api = finish(router, state);
    Router::new().fallback(move |req: Request| {
        let api = api.clone();
        let spa = spa.clone();
        async move {
            let path = req.uri().path();
            let is_api = path.starts_with("/v1/") || path == "/v1" || path.starts_with("/health");
            let res = if is_api { api.oneshot(req).await } else { spa.oneshot(req).await };
            match res {
                Ok(r) => r,
                Err(never) => match never {},
            }
        }
    })
}

/// One route group only: the app of one Lambda function.
pub fn group_app(group: RouteGroup, state: AppState) -> Router {
    let (router, _) = group.routes().split_for_parts();
    finish(router, state)
}

fn finish(router: Router<AppState>, state: AppState) -> Router {
    let limits = state.limits;
    router
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(limits, timeout))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            tracing::info_span!(
                "request",
                method = %req.method(),
                path = %req.uri().path(),
                tenant_id = tracing::field::Empty,
                subject = tracing::field::Empty,
                queue_id = tracing::field::Empty,
                assignment_id = tracing::field::Empty,
            )
        }))
        .layer(CatchPanicLayer::custom(|_panic: Box<dyn std::any::Any + Send>| {
            tracing::error!("handler panicked");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error").into_response()
        }))
        .with_state(state)
}

/// Answers 503 (with the envelope) when a request takes longer than the configured timeout.
async fn timeout(State(limits): State<Limits>, req: Request, next: Next) -> Response {
    // file transfers through signed links of the local blob directory may take long
    let limit = if req.uri().path().starts_with("/v1/blobs/") {
        Duration::from_secs(3600)
    } else {
        limits.request_timeout
    };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            tracing::warn!("request timed out");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", "the request took too long; retry")
                .into_response()
        }
    }
}
