//! The HTTP client. Every call of the API goes through [`Api::request`]: it adds the bearer token, sends JSON,
//! and turns every non-2xx answer into an [`ApiError`] decoded from the one error envelope of `anvil-types`
//! (`{"error": {"code", "message", "details"}}`). One file per route group sits beside this one.
//!
//! URLs are relative to the page's origin unless a runtime `/config.json` names an `api_base` (the CloudFront
//! deployment); nothing about where the API lives is baked into the wasm.

pub mod assignments;
pub mod demo;
pub mod exports;
pub mod gold;
pub mod imports;
pub mod labels;
pub mod me;
pub mod ops;
pub mod queues;

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use anvil_types::{ErrorEnvelope, FieldError};
use gloo_net::http::{Method, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;
use yew::Callback;

use crate::oidc::OidcConfig;

thread_local! {
    /// Prefix of every API URL: empty (same origin) unless `/config.json` says otherwise.
    static API_BASE: RefCell<String> = const { RefCell::new(String::new()) };
    static RUNTIME: RefCell<Rc<RuntimeConfig>> = RefCell::new(Rc::default());
}

/// `/config.json`: answered by `anvil serve` from its settings, or a static file beside `index.html`.
#[derive(Debug, Default, PartialEq, serde::Deserialize)]
pub struct RuntimeConfig {
    #[serde(default)]
    pub api_base: Option<String>,
    /// Sign in at this OpenID provider (authorization code + PKCE).
    #[serde(default)]
    pub oidc: Option<OidcConfig>,
    /// `anvil serve --demo` on a loopback address: offer one-click sign-in as the demo people.
    #[serde(default)]
    pub demo: bool,
}

/// The runtime configuration read at start ([`load_runtime_config`]); the default before that or without one.
pub fn runtime() -> Rc<RuntimeConfig> {
    RUNTIME.with(|r| r.borrow().clone())
}

/// Reads the optional runtime `/config.json`. Its absence (a 404, or the SPA fallback answering with
/// index.html) means "same origin", no single sign-on, no demo.
pub async fn load_runtime_config() {
    let Ok(res) =
        gloo_net::http::Request::get("/config.json").cache(web_sys::RequestCache::NoStore).send().await
    else {
        return;
    };
    if !res.ok() {
        return;
    }
    if let Ok(cfg) = res.json::<RuntimeConfig>().await {
        if let Some(base) = &cfg.api_base {
            API_BASE.with(|b| *b.borrow_mut() = base.trim_end_matches('/').to_string());
        }
        RUNTIME.with(|r| *r.borrow_mut() = Rc::new(cfg));
    }
}

fn url(path: &str) -> String {
    API_BASE.with(|b| format!("{}{path}", b.borrow()))
}

/// A URL the API handed out (a signed download or upload link): a relative one (`/v1/blobs/…` of the
/// embedded server) lives where the API does; an absolute one (S3) is used as it is.
pub fn resolve(link: &str) -> String {
    if link.starts_with('/') { url(link) } else { link.to_string() }
}

/// What kind of failure an [`ApiError`] is; pages decide what to show from this, not from status numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request never got an answer (offline, server down, CORS).
    Network,
    /// 401: the token is missing, expired or revoked.
    Unauthorized,
    /// 403: the role does not allow this.
    Forbidden,
    /// 404 (also what another tenant's resources look like).
    NotFound,
    /// 409: a lost lease, a different label already submitted, a name already taken.
    Conflict,
    /// 422 (with per-field `details`) or 400.
    Invalid,
    /// 503 and other 5xx: retry later.
    Unavailable,
    /// The answer was 2xx but its body could not be read.
    Decode,
    Other,
}

/// A failed API call: the HTTP status (0 when there was no answer) and the decoded error envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: Vec<FieldError>,
}

impl ApiError {
    fn network(e: impl fmt::Display) -> Self {
        Self {
            status: 0,
            code: "network".into(),
            message: format!("could not reach the server ({e})"),
            details: Vec::new(),
        }
    }

    fn decode(status: u16, e: impl fmt::Display) -> Self {
        Self {
            status,
            code: "bad_answer".into(),
            message: format!("the server's answer could not be read ({e})"),
            details: Vec::new(),
        }
    }

    /// Builds the error of a non-2xx answer from its body: the envelope when it is one, else the status.
    fn from_answer(status: u16, status_text: &str, body: &str) -> Self {
        match serde_json::from_str::<ErrorEnvelope>(body) {
            Ok(env) => {
                Self { status, code: env.error.code, message: env.error.message, details: env.error.details }
            }
            Err(_) => Self {
                status,
                code: format!("http_{status}"),
                message: if status_text.is_empty() {
                    format!("the server answered {status}")
                } else {
                    format!("the server answered {status} {status_text}")
                },
                details: Vec::new(),
            },
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self.status {
            0 => ErrorKind::Network,
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            400 | 422 => ErrorKind::Invalid,
            s if (200..300).contains(&s) => ErrorKind::Decode,
            s if s >= 500 => ErrorKind::Unavailable,
            _ => ErrorKind::Other,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A 2xx answer: its status and its decoded body (`None` for 204 No Content).
pub struct Reply<T> {
    pub status: u16,
    pub body: Option<T>,
}

impl<T> Reply<T> {
    /// The body, which this call must have.
    pub fn into_body(self) -> Result<T, ApiError> {
        let status = self.status;
        self.body.ok_or_else(|| ApiError::decode(status, "the answer had no body"))
    }
}

/// A client bound to one bearer token. Cheap to clone; compared by token.
#[derive(Clone)]
pub struct Api {
    token: Rc<str>,
    /// Told about every 401 so the session can show "sign in again" (the page stays as it is underneath).
    on_unauthorized: Callback<()>,
}

impl PartialEq for Api {
    fn eq(&self, other: &Self) -> bool {
        self.token == other.token
    }
}

impl Api {
    pub fn new(token: Rc<str>, on_unauthorized: Callback<()>) -> Self {
        Self { token, on_unauthorized }
    }

    /// The one place an HTTP request is made: JSON in, JSON out, errors decoded from the envelope.
    pub async fn request<B, T>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Reply<T>, ApiError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let body = body.map(serde_json::to_string).transpose().map_err(|e| ApiError::decode(0, e))?;
        let (status, text) = self.send(method, path, body).await?;
        if status == 204 {
            return Ok(Reply { status, body: None });
        }
        let body = serde_json::from_str(&text).map_err(|e| ApiError::decode(status, e))?;
        Ok(Reply { status, body: Some(body) })
    }

    /// The untyped part of [`Api::request`], kept out of its generics so it exists once in the wasm.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<(u16, String), ApiError> {
        let builder = RequestBuilder::new(&url(path))
            .method(method)
            .header("Authorization", &format!("Bearer {}", self.token))
            .header("Accept", "application/json");
        let req = match body {
            Some(b) => builder
                .header("Content-Type", "application/json")
                .body(b)
                .map_err(|e| ApiError::decode(0, e))?,
            None => builder.build().map_err(ApiError::network)?,
        };
        let res = req.send().await.map_err(ApiError::network)?;
        let status = res.status();
        let text = res.text().await.map_err(ApiError::network)?;
        if !(200..300).contains(&status) {
            if status == 401 {
                self.on_unauthorized.emit(());
            }
            return Err(ApiError::from_answer(status, &res.status_text(), &text));
        }
        Ok((status, text))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.request::<(), T>(Method::GET, path, None).await?.into_body()
    }

    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.request(Method::POST, path, Some(body)).await?.into_body()
    }
}

/// PUTs a file's bytes to a signed upload URL (an import's `upload_url`). No bearer token goes with it: the
/// signature is the grant, and an `Authorization` header would break a presigned S3 URL. The browser streams
/// the `File` itself; nothing is read into the wasm's memory.
pub async fn upload(link: &str, file: &web_sys::File) -> Result<(), ApiError> {
    let req = RequestBuilder::new(&resolve(link))
        .method(Method::PUT)
        .body(wasm_bindgen::JsValue::from(file.clone()))
        .map_err(|e| ApiError::decode(0, e))?;
    let res = req.send().await.map_err(ApiError::network)?;
    let status = res.status();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let text = res.text().await.unwrap_or_default();
    Err(ApiError::from_answer(status, &res.status_text(), &text))
}

/// Percent-encodes one query-string value.
pub fn encode(s: &str) -> String {
    String::from(js_sys::encode_uri_component(s))
}
