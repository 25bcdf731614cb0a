//! Asymmetric JWT keys: RS256 and ES256 PEM public keys, and a JWKS document served over HTTP on loopback
//! that is fetched again when a token names an unknown key id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anvil_core::auth::{AuthSettings, JwtVerifier, KeyConfig};
use anvil_core::service::Anvil;
use axum::http::{Method, StatusCode};
use common::TestApp;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn claims() -> serde_json::Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    json!({"iss": "anvil", "aud": "anvil", "sub": "ada", "exp": now + 600, "tenant": "t1", "roles": "auditor"})
}

async fn app_with(keys: KeyConfig, settings: AuthSettings) -> TestApp {
    let base = TestApp::sqlite().await;
    let verifier = JwtVerifier::new(settings, keys).unwrap();
    verifier.prefetch().await;
    let anvil = Anvil::new(base.store.clone(), Arc::new(verifier));
    let state =
        anvil_api::AppState { anvil: anvil.clone(), probes: Arc::new(Vec::new()), limits: common::limits() };
    TestApp { router: anvil_api::app(state), anvil, ..base }
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&h, &claims(), key).unwrap()
}

#[tokio::test]
async fn rs256_and_es256_public_keys_verify_their_own_tokens_only() {
    let keys = KeyConfig {
        public_key_pems: vec![fixture("rsa-public.pem"), fixture("ec-public.pem")],
        ..Default::default()
    };
    let app = app_with(keys, AuthSettings::default()).await;
    let rsa = EncodingKey::from_rsa_pem(&fixture("rsa-private.pem")).unwrap();
    let ec = EncodingKey::from_ec_pem(&fixture("ec-private.pem")).unwrap();
    for tok in [sign(Algorithm::RS256, None, &rsa), sign(Algorithm::ES256, None, &ec)] {
        let me = app.call(Method::GET, "/v1/me", Some(&tok), None).await.expect(StatusCode::OK);
        assert_eq!(me["role"], "auditor");
    }
    // algorithm confusion: the RSA public key used as an HMAC secret
    let forged = sign(Algorithm::HS256, None, &EncodingKey::from_secret(&fixture("rsa-public.pem")));
    app.call(Method::GET, "/v1/me", Some(&forged), None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "unauthorized");
    // RS384 is not an accepted algorithm even with the right key
    let rs384 = sign(Algorithm::RS384, None, &rsa);
    app.call(Method::GET, "/v1/me", Some(&rs384), None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn a_jwks_url_is_fetched_again_for_an_unknown_kid() {
    let rsa = EncodingKey::from_rsa_pem(&fixture("rsa-private.pem")).unwrap();
    let ec = EncodingKey::from_ec_pem(&fixture("ec-private.pem")).unwrap();
    let mut k1 = Jwk::from_encoding_key(&rsa, Algorithm::RS256).unwrap();
    k1.common.key_id = Some("k1".into());
    let mut k2 = Jwk::from_encoding_key(&ec, Algorithm::ES256).unwrap();
    k2.common.key_id = Some("k2".into());
    let fetches = Arc::new(AtomicUsize::new(0));
    // the IdP publishes k1 first, then rotates in k2
    let router = {
        let fetches = fetches.clone();
        axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let n = fetches.fetch_add(1, Ordering::SeqCst);
                let set = if n == 0 {
                    JwkSet { keys: vec![k1.clone()] }
                } else {
                    JwkSet { keys: vec![k1.clone(), k2.clone()] }
                };
                async move { axum::Json(set) }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let keys = KeyConfig { jwks_url: Some(format!("http://{addr}/jwks.json")), ..Default::default() };
    let settings = AuthSettings { jwks_min_refresh: Duration::from_millis(0), ..AuthSettings::default() };
    let app = app_with(keys, settings).await;
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "fetched once at start");
    app.call(Method::GET, "/v1/me", Some(&sign(Algorithm::RS256, Some("k1"), &rsa)), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "a known kid needs no fetch");
    app.call(Method::GET, "/v1/me", Some(&sign(Algorithm::ES256, Some("k2"), &ec)), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(fetches.load(Ordering::SeqCst), 2, "an unknown kid refreshes the key set");
    // a kid the IdP never published is refused
    app.call(Method::GET, "/v1/me", Some(&sign(Algorithm::ES256, Some("k9"), &ec)), None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "unauthorized");
    server.abort();
}
