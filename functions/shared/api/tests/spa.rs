//! The labeling app's files: deep links answer index.html with 200, every answer carries the browser
//! security headers, and API paths keep their JSON errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

#[tokio::test]
async fn deep_links_get_the_app_with_security_headers_and_api_paths_stay_json() {
    let base = common::TestApp::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<!doctype html><title>Anvil</title>").unwrap();
    std::fs::write(dir.path().join("anvil_spa.js"), "export default 1;").unwrap();
    let state = anvil_api::AppState {
        anvil: base.anvil.clone(),
        probes: Arc::new(Vec::new()),
        limits: common::limits(),
    };
    let app = anvil_api::app_with_spa(state, dir.path());
    let get = |p: &str| Request::get(p).body(Body::empty()).unwrap();

    for path in ["/", "/queues/123/label", "/review"] {
        let res = app.clone().oneshot(get(path)).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("'wasm-unsafe-eval'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(res.headers()["x-frame-options"], "DENY");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("<title>Anvil</title>"), "{path}");
    }
    let js = app.clone().oneshot(get("/anvil_spa.js")).await.unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    let api = app.clone().oneshot(get("/v1/nope")).await.unwrap();
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value =
        serde_json::from_slice(&api.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let live = app.oneshot(get("/health/live")).await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
}
