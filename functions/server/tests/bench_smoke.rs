//! CI smoke of `anvil bench`: every mode of the real binary with tiny sizes, for correctness only (the JSON
//! line parses and the mode's own correctness check passed). Benchmarks are not tests; the figures these runs
//! print mean nothing. Each test gets its own database on the test Postgres (DATABASE_URL, default
//! postgres://postgres@127.0.0.1:5432/postgres), dropped at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// A database of its own on the test Postgres, dropped on drop.
struct Db {
    url: String,
    name: String,
}

impl Db {
    fn new() -> Self {
        let name = format!("anvil_bench_smoke_{}", uuid::Uuid::new_v4().simple());
        let admin = server_url();
        block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut c)
                .await
                .unwrap();
        });
        let root = admin.rsplit_once('/').unwrap().0;
        Self { url: format!("{root}/{name}"), name }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let admin = server_url();
        let name = self.name.clone();
        block_on(async {
            use sqlx::Connection;
            if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                let _ =
                    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                        .execute(&mut c)
                        .await;
            }
        });
    }
}

/// Runs `anvil bench <args>` (at most `limit`), asserts it succeeded, and returns its JSON line.
#[track_caller]
fn bench(args: &[&str], limit: Duration) -> Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_anvil"))
        .arg("bench")
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("anvil bench {args:?} took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    println!("{stdout}");
    assert!(status.success(), "anvil bench {args:?} failed: {status}\n{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("{\"bench\""))
        .unwrap_or_else(|| panic!("no JSON line in the output of anvil bench {args:?}:\n{stdout}"));
    let v: Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["ok"], true, "the correctness check of anvil bench {args:?} failed: {v:#}");
    assert!(v["machine"]["nproc"].as_u64().unwrap() >= 1);
    v
}

const LIMIT: Duration = Duration::from_secs(180);

#[test]
fn compare_runs_the_floor_then_the_loop_and_reports_their_ratio() {
    let db = Db::new();
    let v = bench(
        &["compare", "--database-url", &db.url, "--labelers", "1,3", "--labels", "40", "--seconds", "5"],
        LIMIT,
    );
    assert_eq!(v["bench"], "compare");
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for r in runs {
        assert!(r["loop"]["labels"].as_u64().unwrap() > 0, "{r}");
        assert!(r["floor"]["labels"].as_u64().unwrap() > 0, "{r}");
        assert!(r["loop_over_floor"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["loop"]["claim"]["p99_ms"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["loop"]["check"]["problems"].as_array().unwrap().is_empty(), "{r}");
    }
}

#[test]
fn quality_reports_both_stores_beside_their_floor() {
    let db = Db::new();
    let v = bench(&["quality", "--database-url", &db.url, "--samples", "300", "--runs", "1"], LIMIT);
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for r in runs {
        assert_eq!(r["labels"], 900, "{r}");
        assert!(r["report_ms"].as_f64().unwrap() > 0.0 && r["floor_ms"].as_f64().unwrap() > 0.0, "{r}");
    }
}

#[test]
fn gold_claim_runs_both_queues_on_both_stores() {
    let db = Db::new();
    let v = bench(
        &[
            "gold-claim",
            "--database-url",
            &db.url,
            "--labelers",
            "2",
            "--samples",
            "300",
            "--gold",
            "20",
            "--rate",
            "0.3",
            "--rounds",
            "2",
            "--seconds",
            "0.3",
        ],
        LIMIT,
    );
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for r in runs {
        assert!(r["gold"]["gold_served"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["plain"]["gold_served"], 0, "{r}");
    }
}

#[test]
fn the_floor_alone_stores_exactly_the_acknowledged_labels() {
    let db = Db::new();
    let v = bench(
        &["floor", "--database-url", &db.url, "--labelers", "4", "--labels", "60", "--seconds", "5"],
        LIMIT,
    );
    let r = &v["runs"][0];
    assert!(r["labels"].as_u64().unwrap() >= 60, "{r}");
    // the scratch schema is gone afterwards
    let left: i64 = block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'anvil_bench_floor_%'")
            .fetch_one(&mut c)
            .await
            .unwrap()
    });
    assert_eq!(left, 0);
}

/// `anvil serve` on the test database with an HS256 secret file, as an operator would run it.
struct Served {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
    secret_file: std::path::PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

fn serve(db: &Db) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("jwt-secret");
    std::fs::write(&secret_file, "smoke-test-secret-of-at-least-32-bytes!!").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_anvil"))
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("ANVIL_BIND", "127.0.0.1:0")
        .env("ANVIL_DATA_DIR", dir.path())
        .env("ANVIL_SPA_DIR", dir.path().join("no-spa"))
        .env("ANVIL_JWT_HS256_SECRET_FILE", &secret_file)
        .env("ANVIL_SHUTDOWN_GRACE_SECS", "2")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut base = String::new();
    for line in out.lines() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("Anvil is listening on ") {
            base = url.trim().to_string();
            break;
        }
    }
    assert!(!base.is_empty(), "anvil serve did not start");
    Served { child, base, _dir: dir, secret_file }
}

#[test]
fn loop_against_a_running_anvil_with_overlap_two_keeps_every_sample_within_k() {
    let db = Db::new();
    let s = serve(&db);
    let v = bench(
        &[
            "loop",
            "--url",
            &s.base,
            "--token-secret-file",
            s.secret_file.to_str().unwrap(),
            "--labelers",
            "3",
            "--overlap",
            "2",
            "--labels",
            "40",
            "--seconds",
            "5",
        ],
        LIMIT,
    );
    assert_eq!(v["bench"], "loop");
    let r = &v["runs"][0]["loop"];
    assert!(r["labels"].as_u64().unwrap() >= 40, "{r}");
    assert!(v["runs"][0]["floor"].is_null());
    let checked = r["check"]["checked"].as_array().unwrap();
    assert!(checked.iter().any(|c| c.as_str().unwrap().starts_with("no sample over k = 2")), "{r}");
}

#[test]
fn scale_claims_on_every_queue_shape_and_explains_the_largest() {
    let db = Db::new();
    let v = bench(&["scale", "--database-url", &db.url, "--sizes", "300,1000", "--claims", "10"], LIMIT);
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 10, "5 cases per size");
    assert!(cases.iter().all(|c| c["claim"]["count"] == 10), "{cases:?}");
    let explains = v["explain"].as_array().unwrap();
    assert!(!explains.is_empty());
    assert!(explains.iter().all(|e| e["plan"].as_str().unwrap().contains("Execution Time")), "{explains:?}");
}

#[test]
fn export_writes_every_row_with_the_recorded_digest_in_a_child_worker() {
    let db = Db::new();
    let v = bench(&["export", "--database-url", &db.url, "--rows", "3000"], LIMIT);
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs[0]["rows"], 300);
    assert_eq!(runs[1]["rows"], 3000);
    assert!(runs[1]["worker_peak_rss_mib"].as_f64().unwrap() > 1.0, "{runs:?}");
}

#[test]
fn a_final_export_writes_one_row_per_sample_in_a_child_worker() {
    let db = Db::new();
    let v = bench(&["export", "--database-url", &db.url, "--rows", "2000", "--mode", "final"], LIMIT);
    assert_eq!(v["mode"], "final");
    assert_eq!(v["runs"][1]["rows"], 2000);
}

#[test]
fn sqlite_loop_runs_the_embedded_default_and_its_floor() {
    let v = bench(&["sqlite-loop", "--labelers", "3", "--labels", "40", "--seconds", "5"], LIMIT);
    let r = &v["runs"][0];
    assert_eq!(v["store"], "sqlite");
    assert!(r["loop"]["labels"].as_u64().unwrap() >= 40, "{r}");
    assert!(r["floor"]["labels"].as_u64().unwrap() >= 40, "{r}");
}
