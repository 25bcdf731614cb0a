//! The real `anvil serve` binary on the embedded default (no DATABASE_URL): a labeling loop over HTTP, a stop
//! by SIGTERM and one by SIGKILL in the middle of load, restarts on the same data directory, and every
//! acknowledged label found again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Target {
    base: String,
    queue: String,
}

struct Server {
    child: Child,
    base: String,
    tokens: std::collections::HashMap<String, String>,
    queue: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(data_dir: &std::path::Path) -> Server {
    let s = start_with(data_dir, &["serve", "--demo"], "127.0.0.1", &[]);
    assert_eq!(s.tokens.len(), 4, "the demo prints four tokens");
    s
}

/// Starts `anvil` with `args` on a free port of `ip` and waits until it listens.
fn start_with(data_dir: &std::path::Path, args: &[&str], ip: &str, env: &[(&str, &str)]) -> Server {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_anvil"));
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env("ANVIL_DATA_DIR", data_dir)
        .env("ANVIL_BIND", format!("{ip}:{port}"))
        .env("ANVIL_SPA_DIR", data_dir.join("no-spa"))
        .env("ANVIL_SHUTDOWN_GRACE_SECS", "5")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut tokens = std::collections::HashMap::new();
    let mut queue = String::new();
    for line in out.lines() {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() == 2 && ["admin", "auditor", "alice", "bob"].contains(&words[0]) {
            tokens.insert(words[0].to_string(), words[1].to_string());
        }
        if line.trim_start().starts_with("queue \"") {
            queue = line.split('(').nth(1).unwrap().split(')').next().unwrap().to_string();
        }
        if line.starts_with("Anvil is listening on") {
            break;
        }
    }
    Server { child, base: format!("http://127.0.0.1:{port}"), tokens, queue }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap().success();
    assert!(ok);
}

/// Claims and submits until `n` labels are acknowledged (or the server goes away); returns the acknowledged ids.
async fn label_loop(http: &reqwest::Client, s: &Server, who: &str, n: usize) -> Vec<String> {
    label_loop_at(http, s.base.clone(), s.queue.clone(), s.tokens[who].clone(), n).await
}

async fn label_loop_at(
    http: &reqwest::Client,
    base: String,
    queue: String,
    tok: String,
    n: usize,
) -> Vec<String> {
    let s = Target { base, queue };
    let tok = &tok;
    let mut acked = Vec::new();
    while acked.len() < n {
        let Ok(r) = http
            .post(format!("{}/v1/queues/{}/assignments/next", s.base, s.queue))
            .bearer_auth(tok)
            .send()
            .await
        else {
            break;
        };
        if r.status() == 204 {
            break;
        }
        assert_eq!(r.status(), 200);
        let Ok(claim) = r.json::<Value>().await else { break };
        let body = json!({
            "assignment_id": claim["assignment"]["id"],
            "payload": {"sentiment": "positive", "helpfulness": 4,
                        "entities": [{"start": 0, "end": 3, "label": "ORG"}]}
        });
        let Ok(r) = http.post(format!("{}/v1/labels", s.base)).bearer_auth(tok).json(&body).send().await
        else {
            break;
        };
        if r.status() != 201 {
            break;
        }
        let Ok(label) = r.json::<Value>().await else { break };
        acked.push(label["id"].as_str().unwrap().to_string());
    }
    acked
}

async fn all_label_ids(http: &reqwest::Client, s: &Server) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let url = format!("{}/v1/queues/{}/labels?limit=500{}", s.base, s.queue, cursor);
        let page: Value =
            http.get(url).bearer_auth(&s.tokens["admin"]).send().await.unwrap().json().await.unwrap();
        out.extend(page["items"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

async fn sample_count(http: &reqwest::Client, s: &Server) -> i64 {
    let q: Value = http
        .get(format!("{}/v1/queues/{}", s.base, s.queue))
        .bearer_auth(&s.tokens["admin"])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    q["sample_count"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_labels_survive_sigterm_and_sigkill_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();

    // 1. a labeling loop, then a graceful stop
    let mut s = start(dir.path());
    let health = http.get(format!("{}/health/ready", s.base)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let mut acked = label_loop(&http, &s, "alice", 40).await;
    acked.extend(label_loop(&http, &s, "bob", 40).await);
    assert_eq!(acked.len(), 80);
    signal(&s.child, "-TERM");
    let status = s.child.wait().unwrap();
    assert!(status.success(), "SIGTERM must end anvil cleanly, got {status}");

    // 2. restart: same data, the demo is not seeded twice
    let mut s = start(dir.path());
    let hc = Command::new(env!("CARGO_BIN_EXE_anvil"))
        .arg("healthcheck")
        .env("ANVIL_BIND", s.base.trim_start_matches("http://"))
        .output()
        .unwrap();
    assert!(hc.status.success(), "healthcheck of a ready server: {}", String::from_utf8_lossy(&hc.stderr));
    assert_eq!(sample_count(&http, &s).await, 300);
    let found: std::collections::HashSet<String> = all_label_ids(&http, &s).await.into_iter().collect();
    assert!(acked.iter().all(|id| found.contains(id)), "an acknowledged label was lost after SIGTERM");

    // 3. kill -9 in the middle of load
    let alice = {
        let (http, base, queue, tok) =
            (http.clone(), s.base.clone(), s.queue.clone(), s.tokens["alice"].clone());
        tokio::spawn(async move { label_loop_at(&http, base, queue, tok, 10_000).await })
    };
    let start_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(700)).await;
    signal(&s.child, "-KILL");
    let _ = s.child.wait();
    let during = alice.await.unwrap();
    assert!(!during.is_empty(), "labels were acknowledged before the kill ({:?})", start_at.elapsed());
    acked.extend(during);

    let mut s = start(dir.path());
    let found: std::collections::HashSet<String> = all_label_ids(&http, &s).await.into_iter().collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !found.contains(*id)).collect();
    assert!(lost.is_empty(), "{} acknowledged labels lost after SIGKILL: {lost:?}", lost.len());
    // the labeling goes on where it stopped
    assert!(!label_loop(&http, &s, "bob", 5).await.is_empty());
    signal(&s.child, "-TERM");
    assert!(s.child.wait().unwrap().success());
}

#[test]
fn a_non_loopback_bind_without_keys_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_anvil"))
        .args(["serve"])
        .env_remove("DATABASE_URL")
        .env("ANVIL_DATA_DIR", dir.path())
        .env("ANVIL_BIND", "0.0.0.0:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to listen"), "{err}");
}

#[test]
fn the_data_directory_and_secret_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_anvil"))
        .args(["token", "--tenant", "acme", "--subject", "ada", "--role", "admin"])
        .env("ANVIL_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim().split('.').count(), 3, "a JWT");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("jwt-secret")), 0o600);
}

#[test]
fn healthcheck_fails_when_nothing_answers() {
    let out = Command::new(env!("CARGO_BIN_EXE_anvil"))
        .arg("healthcheck")
        .env("ANVIL_BIND", format!("127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn air_gapped_mode_refuses_outbound_settings() {
    let dir = tempfile::tempdir().unwrap();
    for (var, val) in [
        ("ANVIL_JWT_JWKS_URL", "https://idp.example.com/jwks.json"),
        // its discovery document and keys would be fetched: an air-gapped site gives the keys as a file
        ("ANVIL_OIDC_ISSUER", "https://idp.example.com"),
        ("ANVIL_SQS_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/q"),
        ("ANVIL_S3_BUCKET", "exports"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_anvil"))
            .arg("serve")
            .env_remove("DATABASE_URL")
            .env("ANVIL_DATA_DIR", dir.path())
            .env("ANVIL_AIR_GAPPED", "true")
            .env(var, val)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var} accepted in air-gapped mode");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("ANVIL_AIR_GAPPED") && (err.contains(var) || var == "ANVIL_S3_BUCKET"), "{err}");
    }
}

/// A GET over a plain connection, so the test chooses every header, `Host` included. Returns the status,
/// the response head (lower-cased) and the body.
fn raw_get(base: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    // a chunked body: the JSON is what lies between the first line break and the last `}`
    let body = match body.find(['{', '[']) {
        Some(start) => body[start..=body.rfind(['}', ']']).unwrap()].to_string(),
        None => body.to_string(),
    };
    (status, head.to_ascii_lowercase(), body)
}

fn stop(mut s: Server) {
    signal(&s.child, "-TERM");
    let _ = s.child.wait();
}

#[test]
fn demo_sign_in_hands_fresh_tokens_to_this_machine_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let host = s.base.trim_start_matches("http://").to_string();
    let port = host.rsplit(':').next().unwrap().to_string();

    // Arrange / Act: the sign-in page's own request (same origin)
    let (status, head, body) =
        raw_get(&s.base, "/v1/demo/identities", &[("Host", &host), ("Sec-Fetch-Site", "same-origin")]);

    // Assert: four people with working tokens, nothing cached, no CORS
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    assert!(!head.contains("access-control-allow-origin"), "no CORS: {head}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["tenant_id"], "demo");
    assert!(doc["expires_in"].as_u64().unwrap() <= 3600, "short-lived tokens");
    let people = doc["identities"].as_array().unwrap();
    let names: Vec<&str> = people.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["admin", "auditor", "alice", "bob"]);
    let alice = people.iter().find(|p| p["name"] == "alice").unwrap();
    assert_eq!(alice["role"], "labeler");
    let bearer = format!("Bearer {}", alice["token"].as_str().unwrap());
    let (status, _, me) = raw_get(&s.base, "/v1/me", &[("Host", &host), ("Authorization", &bearer)]);
    assert_eq!(status, 200, "{me}");
    let me: Value = serde_json::from_str(&me).unwrap();
    assert_eq!((me["subject"].as_str(), me["role"].as_str()), (Some("alice"), Some("labeler")));

    // every loopback name of this machine works
    for name in [format!("localhost:{port}"), format!("[::1]:{port}"), "127.0.0.1".to_string()] {
        let (status, _, _) = raw_get(&s.base, "/v1/demo/identities", &[("Host", &name)]);
        assert_eq!(status, 200, "Host: {name}");
    }

    // a DNS-rebinding page names its own host; another site's page sends its Origin / Sec-Fetch-Site
    for headers in [
        vec![("Host", format!("rebound.attacker.example:{port}"))],
        vec![("Host", format!("127.0.0.1.attacker.example:{port}"))],
        vec![("Host", host.clone()), ("Origin", "http://attacker.example".to_string())],
        vec![("Host", host.clone()), ("Sec-Fetch-Site", "cross-site".to_string())],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, head, body) = raw_get(&s.base, "/v1/demo/identities", &headers);
        assert_eq!(status, 403, "{headers:?}: {body}");
        assert!(!body.contains("eyJ"), "no token in a refusal: {body}");
        assert!(!head.contains("access-control-allow-origin"), "{head}");
        let err: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(err["error"]["code"], "forbidden");
    }

    // the app learns about the buttons from /config.json
    let (status, _, cfg) = raw_get(&s.base, "/config.json", &[("Host", &host)]);
    assert_eq!(status, 200);
    let cfg: Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(cfg["demo"], true);
    assert!(cfg.get("oidc").is_none(), "{cfg}");
    stop(s);
}

#[test]
fn the_demo_sign_in_route_exists_only_in_demo_mode_on_loopback() {
    // not a demo: 404, and /config.json offers no buttons
    let dir = tempfile::tempdir().unwrap();
    let s = start_with(dir.path(), &["serve"], "127.0.0.1", &[]);
    let host = s.base.trim_start_matches("http://").to_string();
    let (status, _, body) = raw_get(&s.base, "/v1/demo/identities", &[("Host", &host)]);
    assert_eq!(status, 404, "{body}");
    let (_, _, cfg) = raw_get(&s.base, "/config.json", &[("Host", &host)]);
    assert!(serde_json::from_str::<Value>(&cfg).unwrap().get("demo").is_none(), "{cfg}");
    stop(s);

    // a demo listening on every interface: the tokens are printed for its operator, but no route hands
    // them to whoever can reach the port
    let dir = tempfile::tempdir().unwrap();
    let secret = "an-explicit-secret-of-at-least-32-bytes-0123456789";
    let s = start_with(dir.path(), &["serve", "--demo"], "0.0.0.0", &[("ANVIL_JWT_HS256_SECRET", secret)]);
    assert_eq!(s.tokens.len(), 4, "the demo still prints its tokens");
    let host = s.base.trim_start_matches("http://").to_string();
    let (status, _, body) = raw_get(&s.base, "/v1/demo/identities", &[("Host", &host)]);
    assert_eq!(status, 404, "{body}");
    let (_, _, cfg) = raw_get(&s.base, "/config.json", &[("Host", &host)]);
    assert!(serde_json::from_str::<Value>(&cfg).unwrap().get("demo").is_none(), "{cfg}");
    stop(s);
}

#[test]
fn an_openid_provider_is_announced_to_the_app_and_allowed_by_its_csp() {
    // Arrange: an app directory whose static config.json names an API base; a provider that is down (the
    // keys are configured explicitly, so the server starts anyway and says so)
    let dir = tempfile::tempdir().unwrap();
    let spa = dir.path().join("spa");
    std::fs::create_dir_all(&spa).unwrap();
    std::fs::write(spa.join("index.html"), "<!doctype html><title>Anvil</title>").unwrap();
    std::fs::write(spa.join("config.json"), r#"{"api_base": ""}"#).unwrap();
    let idp = format!("http://127.0.0.1:{}", free_port());
    let jwks = format!("{idp}/jwks");
    let spa_dir = spa.to_str().unwrap();
    let env = [
        ("ANVIL_SPA_DIR", spa_dir),
        ("ANVIL_OIDC_ISSUER", idp.as_str()),
        ("ANVIL_OIDC_CLIENT_ID", "anvil-spa"),
        ("ANVIL_OIDC_SCOPES", "profile"),
        ("ANVIL_OIDC_RESOURCE", "urn:anvil"),
        ("ANVIL_JWT_JWKS_URL", jwks.as_str()),
    ];

    // Act
    let s = start_with(dir.path(), &["serve"], "127.0.0.1", &env);
    let host = s.base.trim_start_matches("http://").to_string();
    let (status, _, cfg) = raw_get(&s.base, "/config.json", &[("Host", &host)]);
    let (_, head, _) = raw_get(&s.base, "/", &[("Host", &host)]);
    stop(s);

    // Assert
    assert_eq!(status, 200);
    let cfg: Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(cfg["api_base"], "", "the static file's settings stay");
    assert_eq!(cfg["oidc"]["issuer"], idp.as_str());
    assert_eq!(cfg["oidc"]["client_id"], "anvil-spa");
    assert_eq!(cfg["oidc"]["scopes"], "openid profile", "openid is always asked for");
    assert_eq!(cfg["oidc"]["resource"], "urn:anvil");
    let csp = head.lines().find(|l| l.starts_with("content-security-policy:")).unwrap();
    assert!(csp.contains(&format!("connect-src 'self' {idp}")), "{csp}");

    // an issuer without a client id, or without keys and unreachable, stops the start and says why
    for (extra, says) in [
        (vec![("ANVIL_OIDC_ISSUER", idp.as_str())], "ANVIL_OIDC_CLIENT_ID"),
        (
            vec![("ANVIL_OIDC_ISSUER", idp.as_str()), ("ANVIL_OIDC_CLIENT_ID", "anvil-spa")],
            "ANVIL_OIDC_ISSUER",
        ),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_anvil"));
        cmd.arg("serve").env_remove("DATABASE_URL").env("ANVIL_DATA_DIR", dir.path());
        cmd.env("ANVIL_BIND", format!("127.0.0.1:{}", free_port()));
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
}
