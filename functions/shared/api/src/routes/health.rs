//! Health: `/health/live` (the process answers) and `/health/ready` (every dependency answers in time).
//! Unauthenticated, so load balancers and orchestrators can call them.

use std::time::{Duration, Instant};

use anvil_types::{DependencyHealth, Health};
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::extract::Json;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(live)).routes(routes!(ready))
}

fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The process is up.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, body = Health)))]
async fn live() -> Json<Health> {
    Json(Health { status: "ok".into(), version: version(), dependencies: Vec::new() })
}

/// Every dependency (database, blob store) answered within 2 s: 200; otherwise 503 with per-dependency detail.
#[utoipa::path(get, path = "/health/ready", tag = "health", responses(
    (status = 200, body = Health), (status = 503, body = Health)))]
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let checks = state.probes.iter().map(|p| async move {
        let start = Instant::now();
        let res = match tokio::time::timeout(PROBE_TIMEOUT, p.check()).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} ms", PROBE_TIMEOUT.as_millis())),
        };
        DependencyHealth {
            name: p.name().to_string(),
            ok: res.is_ok(),
            latency_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
            error: res.err(),
        }
    });
    let dependencies = futures::future::join_all(checks).await;
    let ok = dependencies.iter().all(|d| d.ok);
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let health =
        Health { status: if ok { "ok" } else { "unavailable" }.into(), version: version(), dependencies };
    (status, Json(health))
}
