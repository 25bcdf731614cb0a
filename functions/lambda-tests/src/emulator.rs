//! A Lambda Runtime API on 127.0.0.1 (the three routes a runtime uses, plus the init error route), so a
//! function binary runs as a real process exactly as it would in Lambda, one invocation at a time.
//!
//! It also answers `PUT /cfn-response/{name}` so a custom resource function has a CloudFormation response URL
//! to report to.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::Value;
use tokio::sync::{Notify, mpsc, oneshot};

/// What the runtime answered for one invocation.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// `POST /runtime/invocation/{id}/response`.
    Response(Value),
    /// `POST /runtime/invocation/{id}/error`: the error type header and the body.
    Error { error_type: String, body: Value },
}

/// An answered invocation and when the emulator received the answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub outcome: Outcome,
    pub at: Instant,
}

struct Invocation {
    id: String,
    event: Value,
    deadline_ms: u128,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    init_error: Mutex<Option<Value>>,
    cfn_responses: Mutex<Vec<(String, Value)>>,
    cfn_notify: Notify,
}

/// The emulator; dropping it stops its server.
pub struct RuntimeApi {
    addr: SocketAddr,
    tx: mpsc::UnboundedSender<Invocation>,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
    seq: Mutex<u64>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

const PREFIX: &str = "/2018-06-01/runtime";

impl RuntimeApi {
    pub async fn start() -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(rx),
            waiting: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            cfn_responses: Mutex::new(Vec::new()),
            cfn_notify: Notify::new(),
        });
        let app = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(&format!("{PREFIX}/invocation/{{id}}/response"), post(response))
            .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(error))
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .route("/cfn-response/{name}", put(cfn_response))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, tx, shared, server, seq: Mutex::new(0) })
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// A CloudFormation response URL served by this emulator.
    pub fn cfn_response_url(&self, name: &str) -> String {
        format!("http://{}/cfn-response/{name}", self.addr)
    }

    /// Queues an event; the returned receiver gets the runtime's answer. Queuing before the process starts
    /// is fine (that is how the start-up time is measured: the first `next` finds the event waiting).
    pub fn enqueue(&self, event: Value) -> anyhow::Result<oneshot::Receiver<Answer>> {
        let id = {
            let mut seq = self.seq.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            *seq += 1;
            format!("00000000-0000-4000-8000-{:012}", *seq)
        };
        let (done, rx) = oneshot::channel();
        self.shared.waiting.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.insert(id.clone(), done);
        let deadline_ms = epoch_ms() + 60_000;
        self.tx
            .send(Invocation { id, event, deadline_ms })
            .map_err(|_| anyhow::anyhow!("the emulator is gone"))?;
        Ok(rx)
    }

    /// The body a runtime posted to `/runtime/init/error`, if any.
    pub fn init_error(&self) -> Option<Value> {
        self.shared.init_error.lock().ok().and_then(|g| g.clone())
    }

    /// Waits for the next CloudFormation response PUT to `/cfn-response/{name}`.
    pub async fn cfn_response(&self, name: &str, timeout: Duration) -> anyhow::Result<Value> {
        let wait = async {
            loop {
                let notified = self.shared.cfn_notify.notified();
                {
                    let mut all =
                        self.shared.cfn_responses.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                    if let Some(i) = all.iter().position(|(n, _)| n == name) {
                        return Ok(all.remove(i).1);
                    }
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| anyhow::anyhow!("no CloudFormation response for {name} within {timeout:?}"))?
    }
}

fn epoch_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

async fn next(State(s): State<Arc<Shared>>) -> Response {
    // One runtime polls at a time (as in Lambda); the lock is held while it waits for an event.
    let mut queue = s.queue.lock().await;
    let Some(inv) = queue.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let mut headers = HeaderMap::new();
    let set = |h: &mut HeaderMap, k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    set(&mut headers, "lambda-runtime-aws-request-id", inv.id.clone());
    set(&mut headers, "lambda-runtime-deadline-ms", inv.deadline_ms.to_string());
    set(
        &mut headers,
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:anvil-test".into(),
    );
    set(
        &mut headers,
        "lambda-runtime-trace-id",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0".into(),
    );
    (StatusCode::OK, headers, inv.event.to_string()).into_response()
}

fn finish(s: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    let at = Instant::now();
    let waiter = s.waiting.lock().ok().and_then(|mut w| w.remove(id));
    match waiter {
        Some(tx) => {
            let _ = tx.send(Answer { outcome, at });
            StatusCode::ACCEPTED
        }
        // Lambda answers 400 to a response for an unknown or already-answered request id.
        None => StatusCode::BAD_REQUEST,
    }
}

fn json_or_string(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    finish(&s, &id, Outcome::Response(json_or_string(&body)))
}

async fn error(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let error_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    finish(&s, &id, Outcome::Error { error_type, body: json_or_string(&body) })
}

async fn init_error(State(s): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    if let Ok(mut g) = s.init_error.lock() {
        *g = Some(json_or_string(&body));
    }
    StatusCode::ACCEPTED
}

async fn cfn_response(State(s): State<Arc<Shared>>, Path(name): Path<String>, body: Bytes) -> StatusCode {
    if let Ok(mut all) = s.cfn_responses.lock() {
        all.push((name, json_or_string(&body)));
    }
    s.cfn_notify.notify_waiters();
    StatusCode::OK
}
