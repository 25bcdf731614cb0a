//! Test harness: the real router over a real store, requests through `oneshot`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use anvil_api::{AppState, Limits, app};
use anvil_core::auth::{AuthSettings, JwtVerifier, KeyConfig, Secret};
use anvil_core::blob::{FsBlobStore, UrlSigner};
use anvil_core::compose::{Parts, Stores};
use anvil_core::domain::{Subject, TenantId};
use anvil_core::health::{Probe, StoreProbe};
use anvil_core::jobs::Worker;
use anvil_core::service::{Anvil, Background};
use anvil_core::store::Store;
use anvil_types::Role;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const SECRET: [u8; 32] = [7u8; 32];

/// Which store a test runs against, with the few backdoors tests need (forcing a lease to expire).
#[derive(Clone)]
pub enum Backend {
    Postgres(sqlx::PgPool),
    Sqlite(anvil_core::store::sqlite::SqliteStore, Arc<tempfile::TempDir>),
}

#[derive(Clone)]
pub struct TestApp {
    pub router: Router,
    pub anvil: Anvil,
    pub store: Arc<dyn Store>,
    pub backend: Backend,
    pub worker: Worker,
    pub blob_dir: Arc<tempfile::TempDir>,
}

pub fn verifier() -> Arc<JwtVerifier> {
    let keys = KeyConfig { hs256_secret: Some(Secret::new(SECRET.to_vec())), ..Default::default() };
    Arc::new(JwtVerifier::new(AuthSettings::default(), keys).unwrap())
}

pub fn limits() -> Limits {
    Limits { max_body_bytes: 256 * 1024, request_timeout: Duration::from_secs(30) }
}

impl TestApp {
    /// The app over the database `#[sqlx::test]` made (migrated by its superuser connection); the app's
    /// own pool runs as the non-superuser application role, as in production.
    pub async fn postgres(pool: sqlx::PgPool) -> Self {
        let opts = pool.connect_options().as_ref().clone();
        let stores = Stores::postgres(opts, 40, Duration::from_secs(10));
        Self::with_store(stores, Backend::Postgres(pool))
    }

    /// The app over a fresh SQLite file (the embedded default), with full durability as in production.
    pub async fn sqlite() -> Self {
        use anvil_core::store::sqlite::{Durability, SqliteStore};
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("anvil.db"), Durability::Full).await.unwrap();
        // The same store (one writer connection) serves the app and the tests' backdoors.
        let s = Arc::new(store.clone());
        Self::with_store(Stores { store: s.clone(), tasks: s }, Backend::Sqlite(store, Arc::new(dir)))
    }

    /// How many samples a load test uses: SQLite has one writer, so its runs are scaled down.
    pub fn scale(&self, postgres: usize) -> usize {
        match self.backend {
            Backend::Postgres(_) => postgres,
            Backend::Sqlite(..) => postgres / 4,
        }
    }

    pub fn with_store(stores: Stores, backend: Backend) -> Self {
        let blob_dir = Arc::new(tempfile::tempdir().unwrap());
        let fs = FsBlobStore::new(blob_dir.path(), UrlSigner::new(Secret::new(vec![3u8; 32]), "")).unwrap();
        let background = Background {
            tasks: stores.tasks.clone(),
            blobs: Arc::new(fs.clone()),
            local: Some(fs),
            download_ttl: Duration::from_secs(600),
            upload_ttl: Duration::from_secs(600),
            dispatcher: None,
        };
        let parts = Parts { stores, background };
        let store = parts.stores.store.clone();
        let anvil = parts.anvil(verifier());
        let probes: Vec<Arc<dyn Probe>> = vec![Arc::new(StoreProbe(store.clone()))];
        let state = AppState { anvil: anvil.clone(), probes: Arc::new(probes), limits: limits() };
        Self { router: app(state), anvil, store, backend, worker: parts.worker(), blob_dir }
    }

    /// Runs queued jobs until none is due; returns how many ran.
    pub async fn run_jobs(&self) -> usize {
        let mut n = 0;
        while let Some(job) = self.worker.tasks.reserve_job(Duration::from_secs(60)).await.unwrap() {
            self.worker.run_and_record(&job).await.unwrap();
            n += 1;
        }
        n
    }

    /// Forces a lease past its expiry (database time), as if the labeler had gone away.
    pub async fn expire_lease(&self, assignment: &str) {
        match &self.backend {
            Backend::Postgres(pool) => {
                sqlx::query(
                    "UPDATE assignments SET expires_at = now() - interval '1 second' WHERE id = $1::uuid",
                )
                .bind(assignment)
                .execute(pool)
                .await
                .unwrap();
            }
            Backend::Sqlite(store, _) => {
                sqlx::query("UPDATE assignments SET expires_at = ? WHERE id = ?")
                    .bind(anvil_core::store::sqlite::now_ms() - 1000)
                    .bind(assignment)
                    .execute(store.writer())
                    .await
                    .unwrap();
            }
        }
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => {
                req.header("content-type", "application/json").body(Body::from(b.to_string())).unwrap()
            }
            None => req.body(Body::empty()).unwrap(),
        };
        self.send(req).await
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Resp { status, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(token), Some(body)).await
    }

    /// Creates a queue and returns its id.
    pub async fn queue(&self, admin: &str, name: &str, overlap: i32, schema: Value) -> String {
        let r = self
            .post(
                "/v1/queues",
                admin,
                json!({"name": name, "overlap": overlap, "lease_seconds": 60, "schema": schema}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// Adds `n` samples (external ids s0000..) in batches.
    pub async fn samples(&self, admin: &str, queue: &str, n: usize) {
        let all: Vec<Value> = (0..n)
            .map(|i| json!({"external_id": format!("s{i:05}"), "payload": {"text": format!("sample number {i} text")}}))
            .collect();
        for chunk in all.chunks(1000) {
            let r = self.post(&format!("/v1/queues/{queue}/samples"), admin, json!({"samples": chunk})).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
    }

    pub async fn claim(&self, queue: &str, token: &str) -> Resp {
        self.call(Method::POST, &format!("/v1/queues/{queue}/assignments/next"), Some(token), None).await
    }

    /// Every label of a queue, through the paginated API.
    pub async fn all_labels(&self, queue: &str, token: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/queues/{queue}/labels?limit=500&cursor={c}"),
                None => format!("/v1/queues/{queue}/labels?limit=500"),
            };
            let r = self.get(&path, token).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            out.extend(r.body["items"].as_array().unwrap().iter().cloned());
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
}

impl Resp {
    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        self.body
    }

    #[track_caller]
    pub fn expect_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.body);
        assert!(self.body["error"]["message"].is_string(), "no message: {}", self.body);
    }
}

/// A JWT for a tenant/subject/role, minted with the test secret.
pub fn token(tenant: &str, subject: &str, role: Role) -> String {
    verifier()
        .mint(
            &TenantId::parse(tenant).unwrap(),
            &Subject::parse(subject).unwrap(),
            role,
            Duration::from_secs(3600),
        )
        .unwrap()
}

pub fn admin(tenant: &str) -> String {
    token(tenant, "admin", Role::Admin)
}

pub fn labeler(tenant: &str, name: &str) -> String {
    token(tenant, name, Role::Labeler)
}

pub fn auditor(tenant: &str) -> String {
    token(tenant, "auditor", Role::Auditor)
}

/// A schema with one required single choice.
pub fn simple_schema() -> Value {
    json!({"fields": [{"name": "label", "kind": "single_choice", "options": ["a", "b"]}]})
}

/// A schema using every field kind.
pub fn rich_schema() -> Value {
    json!({"instructions": "label it", "fields": [
        {"name": "sentiment", "kind": "single_choice", "options": ["pos", "neg"]},
        {"name": "topics", "kind": "multi_choice", "options": ["x", "y"], "required": false},
        {"name": "ok", "kind": "boolean", "required": false},
        {"name": "score", "kind": "number", "min": 0, "max": 10, "step": 0.5, "required": false},
        {"name": "note", "kind": "text", "max_len": 20, "required": false},
        {"name": "stars", "kind": "rating", "max": 5, "required": false},
        {"name": "when", "kind": "date", "required": false},
        {"name": "ents", "kind": "span", "source": "text", "labels": ["PER"], "required": false}
    ]})
}

pub fn assignment_id(claim: &Value) -> String {
    claim["assignment"]["id"].as_str().unwrap().to_string()
}

/// Runs each named scenario `async fn name(app: TestApp)` against both stores: Postgres (a fresh database
/// per test, `#[sqlx::test]`) and SQLite (a fresh file).
#[allow(unused_macros)]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            use super::*;
            $(
                #[sqlx::test(migrator = "anvil_core::store::postgres::MIGRATOR")]
                async fn $name(pool: sqlx::PgPool) {
                    super::$name(TestApp::postgres(pool).await).await;
                }
            )*
        }
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(TestApp::sqlite().await).await;
                }
            )*
        }
    };
}
