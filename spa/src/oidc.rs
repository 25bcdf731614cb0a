//! Signing in at an OpenID provider: the authorization code flow with PKCE (S256) as a public client.
//!
//! [`start`] reads the provider's discovery document, keeps a fresh `state`, `nonce` and code verifier (32
//! bytes from the browser's crypto RNG) in sessionStorage and sends the browser to the authorization
//! endpoint. The provider sends it back to [`CALLBACK_PATH`]; [`finish`] checks `state`, exchanges the code
//! at the token endpoint with the verifier, checks the ID token's `iss`, `aud` and `nonce`, and hands back
//! the access token, which the app then uses as its bearer token (the server verifies it against the
//! provider's keys). The ID token's signature is not checked here: it came straight from the token endpoint
//! over TLS (OpenID Connect Core 3.1.3.7), and the API never accepts it.

use gloo_net::http::{Method, Request, RequestBuilder};
use gloo_storage::{LocalStorage, SessionStorage, Storage};
use serde::Deserialize;
use serde_json::{Value, json};
use wasm_bindgen::JsCast;

use crate::api::encode;

/// Where the provider sends the browser back (register `<app origin>/auth/callback` as the redirect URI).
pub const CALLBACK_PATH: &str = "/auth/callback";
/// The sign-in under way (sessionStorage: this tab only, gone with it).
const PENDING_KEY: &str = "anvil.oidc.pending";
/// How to end the provider's session at sign-out (localStorage, beside the token).
const LOGOUT_KEY: &str = "anvil.oidc.logout";

/// The provider, as `/config.json` names it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    #[serde(default = "default_scopes")]
    pub scopes: String,
    /// RFC 8707 resource indicator, for providers that issue JWT access tokens per resource.
    #[serde(default)]
    pub resource: Option<String>,
}

fn default_scopes() -> String {
    "openid".into()
}

// The provider's documents and what waits in storage are read as `serde_json::Value`, field by field: the app
// already carries Value's deserializer, and a derived one per document would add to the download.

/// The endpoints the flow needs, from the discovery document.
struct Discovery {
    authorization_endpoint: String,
    token_endpoint: String,
    end_session_endpoint: Option<String>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// A finished sign-in: the bearer token for the API and the app path to return to.
pub struct SignedIn {
    pub access_token: String,
    pub return_to: String,
}

fn window() -> Result<web_sys::Window, String> {
    web_sys::window().ok_or_else(|| "no window".to_string())
}

fn origin() -> Result<String, String> {
    window()?.location().origin().map_err(|_| "no origin".to_string())
}

fn redirect_uri() -> Result<String, String> {
    Ok(format!("{}{CALLBACK_PATH}", origin()?))
}

/// Whether this page load is the provider sending the browser back.
pub fn is_callback() -> bool {
    web_sys::window().and_then(|w| w.location().pathname().ok()).is_some_and(|p| p == CALLBACK_PATH)
}

/// Whether a sign-in started in this tab waits for the provider's answer.
pub fn pending() -> bool {
    SessionStorage::raw().get_item(PENDING_KEY).ok().flatten().is_some()
}

/// The current path and query: where a sign-in started from the "session expired" dialog comes back to.
pub fn here() -> String {
    web_sys::window()
        .and_then(|w| {
            let l = w.location();
            Some(format!("{}{}", l.pathname().ok()?, l.search().ok()?))
        })
        .filter(|p| p.starts_with('/') && !p.starts_with(CALLBACK_PATH))
        .unwrap_or_else(|| "/".into())
}

/// base64url without padding (RFC 4648 §5), as PKCE and JWTs use it.
pub fn b64url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Decodes base64url (padding tolerated); `None` for any other character.
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// `n` bytes from the browser's cryptographic RNG, base64url.
fn random(n: usize) -> Result<String, String> {
    let mut buf = vec![0u8; n];
    window()?
        .crypto()
        .and_then(|c| c.get_random_values_with_u8_array(&mut buf))
        .map_err(|_| "this browser has no cryptographic random numbers".to_string())?;
    Ok(b64url(&buf))
}

/// The S256 code challenge of a verifier: base64url(sha256(verifier)), by the browser's SubtleCrypto.
async fn challenge(verifier: &str) -> Result<String, String> {
    let no_subtle = || "single sign-on needs a secure page (https or localhost)".to_string();
    let promise = window()?
        .crypto()
        .map_err(|_| no_subtle())?
        .subtle()
        .digest_with_str_and_u8_array("SHA-256", verifier.as_bytes())
        .map_err(|_| no_subtle())?;
    let digest = wasm_bindgen_futures::JsFuture::from(promise).await.map_err(|_| no_subtle())?;
    let digest = digest.dyn_into::<js_sys::ArrayBuffer>().map_err(|_| no_subtle())?;
    Ok(b64url(&js_sys::Uint8Array::new(&digest).to_vec()))
}

/// `a=1&b=2`, each value percent-encoded.
fn form(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&")
}

fn with_query(endpoint: &str, query: &str) -> String {
    let sep = if endpoint.contains('?') { '&' } else { '?' };
    format!("{endpoint}{sep}{query}")
}

async fn discover(cfg: &OidcConfig) -> Result<Discovery, String> {
    let url = format!("{}/.well-known/openid-configuration", cfg.issuer.trim_end_matches('/'));
    let unreachable =
        |e: String| format!("The identity provider could not be reached ({e}). Retry in a moment.");
    let res = Request::get(&url).send().await.map_err(|e| unreachable(e.to_string()))?;
    if !res.ok() {
        return Err(unreachable(format!("{} answered {}", url, res.status())));
    }
    let d: Value = res.json().await.map_err(|e| unreachable(e.to_string()))?;
    let issuer = text(&d, "issuer").unwrap_or_default();
    if issuer != cfg.issuer {
        return Err(format!("The identity provider calls itself {issuer}, not {}.", cfg.issuer));
    }
    let endpoint = |key: &str| {
        text(&d, key).ok_or_else(|| format!("The identity provider's discovery document has no {key}."))
    };
    Ok(Discovery {
        authorization_endpoint: endpoint("authorization_endpoint")?,
        token_endpoint: endpoint("token_endpoint")?,
        end_session_endpoint: text(&d, "end_session_endpoint"),
    })
}

/// Sends the browser to the provider's sign-in page; on success the page is left (and this never returns
/// `Ok` to anything that renders). `return_to` is the app path to come back to.
pub async fn start(cfg: &OidcConfig, return_to: &str) -> Result<(), String> {
    let d = discover(cfg).await?;
    let (state, nonce, verifier) = (random(16)?, random(16)?, random(32)?);
    let code_challenge = challenge(&verifier).await?;
    let redirect = redirect_uri()?;
    let mut q = vec![
        ("response_type", "code"),
        ("client_id", cfg.client_id.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("scope", cfg.scopes.as_str()),
        ("state", state.as_str()),
        ("nonce", nonce.as_str()),
        ("code_challenge", code_challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if let Some(r) = &cfg.resource {
        q.push(("resource", r.as_str()));
    }
    let url = with_query(&d.authorization_endpoint, &form(&q));
    let pending = json!({
        "state": state,
        "nonce": nonce,
        "verifier": verifier,
        "return_to": return_to,
        "token_endpoint": d.token_endpoint,
        "end_session_endpoint": d.end_session_endpoint,
    });
    SessionStorage::set(PENDING_KEY, &pending).map_err(|e| format!("cannot keep the sign-in state: {e}"))?;
    window()?.location().assign(&url).map_err(|_| "cannot open the identity provider".to_string())
}

/// Completes a sign-in on [`CALLBACK_PATH`]: checks `state`, exchanges the code, checks the ID token.
pub async fn finish(cfg: &OidcConfig) -> Result<SignedIn, String> {
    let search = window()?.location().search().unwrap_or_default();
    let params =
        web_sys::UrlSearchParams::new_with_str(&search).map_err(|_| "unreadable answer".to_string())?;
    // single use, whatever happens next
    let pending: Option<Value> = SessionStorage::get(PENDING_KEY).ok();
    SessionStorage::delete(PENDING_KEY);
    let pending = pending.unwrap_or_default();
    let field = |key: &str| text(&pending, key);
    let (Some(state), Some(nonce), Some(verifier), Some(token_endpoint)) =
        (field("state"), field("nonce"), field("verifier"), field("token_endpoint"))
    else {
        return Err("This sign-in was not started in this tab, or was already used. Sign in again.".into());
    };
    if let Some(error) = params.get("error") {
        let why = params.get("error_description").unwrap_or(error);
        return Err(format!("The identity provider did not sign you in: {why}"));
    }
    if params.get("state") != Some(state) {
        return Err(
            "The answer does not belong to the sign-in started here (state mismatch). Sign in again.".into(),
        );
    }
    // RFC 9207: a provider that names itself must be the one asked
    if params.get("iss").is_some_and(|iss| iss != cfg.issuer) {
        return Err("The answer came from another identity provider. Sign in again.".into());
    }
    let code = params.get("code").ok_or("The identity provider sent no authorization code.")?;
    let redirect = redirect_uri()?;
    let mut body = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("client_id", cfg.client_id.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    if let Some(r) = &cfg.resource {
        body.push(("resource", r.as_str()));
    }
    let res = RequestBuilder::new(&token_endpoint)
        .method(Method::POST)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "application/json")
        .body(form(&body))
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(|e| format!("The identity provider could not be reached ({e}). Sign in again."))?;
    let answer: Value = res.json().await.unwrap_or_default();
    if !res.ok() {
        let why = text(&answer, "error_description")
            .or_else(|| text(&answer, "error"))
            .unwrap_or_else(|| format!("it answered {}", res.status()));
        return Err(format!("The identity provider did not issue a token: {why}"));
    }
    let access_token =
        text(&answer, "access_token").ok_or("The identity provider's token answer has no access token.")?;
    let id_token =
        text(&answer, "id_token").ok_or("The identity provider sent no ID token (is `openid` a scope?).")?;
    check_id_token(&id_token, cfg, &nonce)?;
    match text(&pending, "end_session_endpoint") {
        Some(end_session_endpoint) => {
            let logout = json!({
                "end_session_endpoint": end_session_endpoint,
                "id_token": id_token,
                "client_id": cfg.client_id,
            });
            let _ = LocalStorage::set(LOGOUT_KEY, logout);
        }
        None => forget(),
    }
    let return_to = text(&pending, "return_to").unwrap_or_else(|| "/".into());
    Ok(SignedIn { access_token, return_to })
}

/// The ID token must be for this app, from this provider, and for this sign-in (`nonce`: no replay).
fn check_id_token(jwt: &str, cfg: &OidcConfig, nonce: &str) -> Result<(), String> {
    let bad = |what: &str| format!("The identity provider's ID token {what}. Sign in again.");
    let payload = jwt.split('.').nth(1).ok_or_else(|| bad("is not a JWT"))?;
    let claims: Value = b64url_decode(payload)
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| serde_json::from_str(&s).ok())
        .ok_or_else(|| bad("is unreadable"))?;
    if text(&claims, "iss").as_deref() != Some(cfg.issuer.as_str()) {
        return Err(bad("names another issuer"));
    }
    let for_us = match claims.get("aud") {
        Some(Value::String(a)) => *a == cfg.client_id,
        Some(Value::Array(all)) => all.iter().any(|a| a.as_str() == Some(cfg.client_id.as_str())),
        _ => false,
    };
    if !for_us {
        return Err(bad("is for another client"));
    }
    if text(&claims, "nonce").as_deref() != Some(nonce) {
        return Err(bad("does not belong to this sign-in (nonce mismatch)"));
    }
    Ok(())
}

/// Forgets the provider session (a sign-in by token or demo button replaces it).
pub fn forget() {
    LocalStorage::delete(LOGOUT_KEY);
}

/// Where to send the browser to end the provider's session too, if the sign-in came from one that offers
/// it; forgets it either way.
pub fn end_session_url() -> Option<String> {
    let logout: Option<Value> = LocalStorage::get(LOGOUT_KEY).ok();
    forget();
    let l = logout?;
    let back = format!("{}/", origin().ok()?);
    let (id_token, client_id) = (text(&l, "id_token")?, text(&l, "client_id")?);
    let q = form(&[
        ("id_token_hint", id_token.as_str()),
        ("post_logout_redirect_uri", back.as_str()),
        ("client_id", client_id.as_str()),
    ]);
    Some(with_query(&text(&l, "end_session_endpoint")?, &q))
}

/// Leaves the app for `url` (the provider's end-session page).
pub fn go(url: &str) {
    if let Ok(w) = window() {
        let _ = w.location().assign(url);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc_4648_vectors() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(b64url(raw.as_bytes()), enc);
            assert_eq!(b64url_decode(enc).unwrap(), raw.as_bytes());
        }
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(b64url_decode("-_8=").unwrap(), vec![0xfb, 0xff]);
        assert!(b64url_decode("a+b/").is_none(), "plain base64 is refused");
    }

    #[test]
    fn the_pkce_challenge_of_rfc_7636_appendix_b() {
        // the verifier's bytes are base64url too: 43 characters from 32 random bytes
        let verifier_bytes = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77, 105,
            214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        assert_eq!(b64url(&verifier_bytes), "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        let digest = [
            19, 211, 30, 150, 26, 26, 216, 236, 47, 22, 177, 12, 76, 152, 46, 8, 118, 168, 120, 173, 109,
            241, 68, 86, 110, 225, 137, 74, 203, 112, 249, 195,
        ];
        assert_eq!(b64url(&digest), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    fn token(claims: serde_json::Value) -> String {
        format!("eyJhbGciOiJSUzI1NiJ9.{}.sig", b64url(claims.to_string().as_bytes()))
    }

    #[test]
    fn an_id_token_must_name_this_issuer_client_and_nonce() {
        let cfg = OidcConfig {
            issuer: "https://idp.example.com".into(),
            client_id: "anvil-spa".into(),
            scopes: "openid".into(),
            resource: None,
        };
        let ok =
            serde_json::json!({"iss": "https://idp.example.com", "aud": ["x", "anvil-spa"], "nonce": "n1"});
        assert!(check_id_token(&token(ok.clone()), &cfg, "n1").is_ok());
        assert!(check_id_token(&token(ok), &cfg, "n2").is_err(), "another sign-in's nonce");
        let other_aud = serde_json::json!({"iss": "https://idp.example.com", "aud": "other", "nonce": "n1"});
        assert!(check_id_token(&token(other_aud), &cfg, "n1").is_err());
        let other_iss = serde_json::json!({"iss": "https://evil.example", "aud": "anvil-spa", "nonce": "n1"});
        assert!(check_id_token(&token(other_iss), &cfg, "n1").is_err());
        let no_nonce = serde_json::json!({"iss": "https://idp.example.com", "aud": "anvil-spa"});
        assert!(check_id_token(&token(no_nonce), &cfg, "n1").is_err());
        assert!(check_id_token("not-a-jwt", &cfg, "n1").is_err());
    }
}
