//! Signing in to the labeling app at an OpenID provider, as far as `anvil serve` is concerned: the provider's
//! discovery document (its JWKS URL for the verifier, the origins the app's CSP must let it call) and the
//! app's runtime `/config.json`, answered from this server's own settings. The browser does the
//! authorization code flow with PKCE itself (spa/src/oidc.rs); the server only verifies the tokens.

use std::path::Path;
use std::time::Duration;

use anvil_core::config::{Config, OidcClient};
use anyhow::Context;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get};
use serde::Deserialize;

/// What the provider's discovery document told us.
#[derive(Debug, Default)]
pub struct Discovered {
    /// The provider's keys, unless a key source is configured explicitly.
    pub jwks_uri: Option<String>,
    /// Origins the labeling app fetches from (discovery, token endpoint): added to its CSP `connect-src`.
    pub connect_origins: Vec<String>,
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: Option<String>,
    token_endpoint: Option<String>,
}

fn origin(url: &str) -> anyhow::Result<String> {
    let u = reqwest::Url::parse(url).with_context(|| format!("`{url}` is not a URL"))?;
    anyhow::ensure!(matches!(u.scheme(), "https" | "http"), "`{url}` is not an http(s) URL");
    Ok(u.origin().ascii_serialization())
}

/// Reads `<issuer>/.well-known/openid-configuration`. Without an explicit key source its `jwks_uri` is where
/// the keys come from, so a provider that cannot be asked stops the start; with one it is only a warning.
/// Air-gapped sites never ask (their keys come from a file).
pub async fn discover(cfg: &Config, oidc: &OidcClient) -> anyhow::Result<Discovered> {
    let mut out = Discovered { jwks_uri: None, connect_origins: vec![origin(&oidc.issuer)?] };
    if cfg.air_gapped {
        return Ok(out);
    }
    let explicit_keys =
        cfg.jwt_jwks_url.is_some() || cfg.jwt_jwks_file.is_some() || cfg.jwt_public_key_file.is_some();
    let url = format!("{}/.well-known/openid-configuration", oidc.issuer.trim_end_matches('/'));
    let fetched = async {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        let meta: Metadata = http.get(&url).send().await?.error_for_status()?.json().await?;
        anyhow::ensure!(
            meta.issuer == oidc.issuer,
            "the discovery document names the issuer `{}`, not `{}` (ANVIL_OIDC_ISSUER must match it exactly)",
            meta.issuer,
            oidc.issuer
        );
        Ok(meta)
    }
    .await;
    match fetched {
        Ok(meta) => {
            if let Some(t) = &meta.token_endpoint {
                let o = origin(t)?;
                if !out.connect_origins.contains(&o) {
                    out.connect_origins.push(o);
                }
            }
            if !explicit_keys {
                out.jwks_uri =
                    Some(meta.jwks_uri.context("the provider's discovery document has no jwks_uri")?);
            }
        }
        Err(e) if explicit_keys => {
            tracing::warn!(error = format!("{e:#}"), %url, "could not read the OpenID provider's discovery document");
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!("ANVIL_OIDC_ISSUER: reading {url} (or set ANVIL_JWT_JWKS_URL to the provider's keys)")
            });
        }
    }
    Ok(out)
}

/// The labeling app's runtime configuration: the `config.json` of the app's directory (if any) with this
/// server's own settings on top (`oidc`, `demo`). Nothing about a deployment is baked into the wasm.
pub fn runtime_config(spa_dir: Option<&Path>, oidc: Option<&OidcClient>, demo: bool) -> serde_json::Value {
    let mut doc = spa_dir
        .and_then(|d| std::fs::read(d.join("config.json")).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    if let Some(map) = doc.as_object_mut() {
        if let Some(o) = oidc {
            map.insert("oidc".into(), serde_json::json!(o));
        }
        if demo {
            map.insert("demo".into(), true.into());
        }
    }
    doc
}

/// `GET /config.json`.
pub fn config_route(doc: serde_json::Value) -> MethodRouter {
    let body = doc.to_string();
    get(move || {
        let body = body.clone();
        async move {
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                    (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
                ],
                body,
            )
                .into_response()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_settings_go_on_top_of_the_apps_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"api_base": "", "demo": false}"#).unwrap();
        let oidc = OidcClient {
            issuer: "https://idp.example.com".into(),
            client_id: "anvil-spa".into(),
            scopes: "openid".into(),
            resource: None,
        };
        let doc = runtime_config(Some(dir.path()), Some(&oidc), true);
        assert_eq!(doc["api_base"], "");
        assert_eq!(doc["demo"], true);
        assert_eq!(doc["oidc"]["client_id"], "anvil-spa");
        assert!(doc["oidc"].get("resource").is_none());
        assert_eq!(runtime_config(None, None, false), serde_json::json!({}));
    }

    #[test]
    fn origins_drop_the_path() {
        assert_eq!(origin("https://idp.example.com/realms/x/").unwrap(), "https://idp.example.com");
        assert_eq!(origin("http://127.0.0.1:9000/token").unwrap(), "http://127.0.0.1:9000");
        assert!(origin("ftp://x").is_err());
    }
}
