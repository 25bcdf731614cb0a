//! Exports and the job queue against real parts: Postgres, and S3 + SQS through the real aws-sdk clients
//! against a moto server on loopback. The worker is the real `anvil worker` process (its peak memory is read
//! from /proc, and it is killed with SIGKILL in the middle of an export).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anvil_core::domain::{Subject, TenantId};
use anvil_core::jobs::Worker;
use anvil_core::sqs::{Received, SqsDispatcher, handle_batch};
use anvil_core::store::TaskStore;
use anvil_core::store::postgres::{PgStore, app_pool};
use anvil_types::{CreateExport, ExportFilter, FileFormat, TaskState};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------------------

struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts moto (from the repository's .venv, or PATH) on a free loopback port.
fn moto() -> Moto {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/moto_server");
    let bin = if std::path::Path::new(venv).exists() { venv.to_string() } else { "moto_server".to_string() };
    let port = free_port();
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("moto_server not found ({e}): run infra/test.sh, which installs it into .venv")
        });
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto { child, endpoint: format!("http://127.0.0.1:{port}") }
}

async fn aws_conf(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "test"))
        .load()
        .await
}

async fn s3(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_conf(endpoint).await;
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build())
}

/// Seeds a queue with `n` labeled samples straight in SQL (as the superuser of the test database).
async fn seed(pool: &PgPool, tenant: &str, n: i64) -> Uuid {
    let q = Uuid::now_v7();
    let schema =
        serde_json::json!({"fields": [{"name": "label", "kind": "single_choice", "options": ["a", "b"]}]});
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO queues (tenant_id, id, name, overlap, lease_seconds, policy, schema_version, sample_count)
         VALUES ($1, $2, $3, 1, 300, 'priority', 1, $4)",
    )
    .bind(tenant)
    .bind(q)
    .bind(format!("big {q}"))
    .bind(n)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("INSERT INTO schema_versions (tenant_id, queue_id, version, schema, hash, created_by) VALUES ($1, $2, 1, $3, 'h', 'seed')")
        .bind(tenant)
        .bind(q)
        .bind(&schema)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO samples (tenant_id, id, queue_id, external_id, payload, priority, rank, order_key, open_slots)
         SELECT $1, gen_random_uuid(), $2, 's' || g, jsonb_build_object('text', 'sample text number ' || g), 0, 0, g, 0
         FROM generate_series(1, $3) g",
    )
    .bind(tenant)
    .bind(q)
    .bind(n)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO assignments (tenant_id, id, queue_id, sample_id, labeler, state, schema_version, expires_at)
         SELECT $1, gen_random_uuid(), $2, s.id, 'labeler-' || (s.order_key % 7), 'submitted', 1, now()
         FROM samples s WHERE s.queue_id = $2",
    )
    .bind(tenant)
    .bind(q)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO labels (tenant_id, id, queue_id, sample_id, assignment_id, labeler, schema_version, payload, created_at)
         SELECT $1, gen_random_uuid(), a.queue_id, a.sample_id, a.id, a.labeler, 1,
                jsonb_build_object('label', CASE WHEN random() < 0.5 THEN 'a' ELSE 'b' END), now() - interval '1 minute'
         FROM assignments a WHERE a.queue_id = $2",
    )
    .bind(tenant)
    .bind(q)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    q
}

fn db_url(pool: &PgPool) -> String {
    let db = pool.connect_options().get_database().unwrap().to_string();
    let base = std::env::var("DATABASE_URL").unwrap();
    let root = base.rsplit_once('/').unwrap().0.to_string();
    format!("{root}/{db}")
}

fn store(pool: &PgPool) -> Arc<PgStore> {
    Arc::new(PgStore::new(app_pool(pool.connect_options().as_ref().clone(), 8, Duration::from_secs(10))))
}

/// The real `anvil worker` process.
fn worker_process(
    url: &str,
    data: &std::path::Path,
    s3_endpoint: Option<&str>,
    bucket: &str,
    visibility: u64,
) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_anvil"));
    cmd.arg("worker")
        .env("DATABASE_URL", url)
        .env("ANVIL_DATA_DIR", data)
        .env("ANVIL_WORKERS", "1")
        .env("ANVIL_JOB_VISIBILITY_SECS", visibility.to_string())
        .env("ANVIL_SHUTDOWN_GRACE_SECS", "2")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(ep) = s3_endpoint {
        cmd.env("ANVIL_S3_BUCKET", bucket)
            .env("ANVIL_S3_ENDPOINT", ep)
            .env("ANVIL_S3_PATH_STYLE", "true")
            .env("ANVIL_S3_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1");
    }
    cmd.spawn().unwrap()
}

/// Peak resident memory of a process so far (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn wait_export(
    tasks: &PgStore,
    t: &TenantId,
    id: Uuid,
    limit: Duration,
) -> anvil_core::store::ExportRecord {
    let deadline = Instant::now() + limit;
    loop {
        let rec = tasks.get_export(t, id).await.unwrap();
        if rec.export.state == TaskState::Succeeded {
            return rec;
        }
        assert!(Instant::now() < deadline, "export did not finish: {:?}", rec.export);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}

async fn new_export(tasks: &PgStore, t: &TenantId, q: Uuid) -> Uuid {
    let req =
        CreateExport { format: FileFormat::Jsonl, filter: ExportFilter::default(), mode: Default::default() };
    tasks.create_export(t, &Subject::parse("admin").unwrap(), q, &req).await.unwrap().export.id
}

// ---------------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------------

#[sqlx::test(migrator = "anvil_core::store::postgres::MIGRATOR")]
async fn exports_of_100k_labels_are_identical_verified_and_memory_bounded(pool: PgPool) {
    let moto = moto();
    let s3c = s3(&moto.endpoint).await;
    s3c.create_bucket().bucket("exports").send().await.unwrap();
    let t = TenantId::parse("t1").unwrap();
    let store = store(&pool);
    let url = db_url(&pool);
    let small = seed(&pool, "t1", 10_000).await;
    let big = seed(&pool, "t1", 100_000).await;

    for (target, endpoint) in [("S3 (moto)", Some(moto.endpoint.as_str())), ("local blob directory", None)] {
        let data = tempfile::tempdir().unwrap();
        let mut peaks = Vec::new();
        let mut shas = Vec::new();
        for (q, rows) in [(small, 10_000i64), (big, 100_000), (big, 100_000)] {
            // a fresh worker per export, so its peak memory belongs to that export alone
            let worker = worker_process(&url, data.path(), endpoint, "exports", 600);
            let id = new_export(&store, &t, q).await;
            let start = Instant::now();
            let mut peak = 0;
            let rec = loop {
                peak = peak.max(peak_rss_kib(worker.id()));
                let rec = store.get_export(&t, id).await.unwrap();
                if rec.export.state == TaskState::Succeeded {
                    break rec;
                }
                assert!(start.elapsed() < Duration::from_secs(300), "export did not finish");
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            let secs = start.elapsed().as_secs_f64();
            stop(worker);
            assert_eq!(rec.export.rows, Some(rows));
            // download through the signed URL and check the bytes against the recorded sha256
            let bytes: Vec<u8> = match endpoint {
                Some(_) => {
                    let blobs = anvil_core::blob_s3::S3BlobStore::new(s3c.clone(), "exports");
                    use anvil_core::blob::BlobStore;
                    let link = blobs
                        .download_url(&rec.object_key, Duration::from_secs(300), "x.jsonl")
                        .await
                        .unwrap();
                    reqwest::get(link).await.unwrap().bytes().await.unwrap().to_vec()
                }
                None => std::fs::read(data.path().join("blobs").join(&rec.object_key)).unwrap(),
            };
            let sha = hex::encode(Sha256::digest(&bytes));
            assert_eq!(
                Some(sha.clone()),
                rec.export.sha256,
                "{target}: downloaded bytes differ from the record"
            );
            assert_eq!(Some(bytes.len() as i64), rec.export.bytes);
            println!(
                "export to {target}: {rows} rows, {:.1} MB in {secs:.2} s = {:.0} rows/s; worker peak RSS {:.1} MB",
                bytes.len() as f64 / 1e6,
                rows as f64 / secs,
                peak as f64 / 1024.0
            );
            peaks.push(peak);
            shas.push(sha);
        }
        assert_eq!(shas[1], shas[2], "{target}: two exports of the same data differ");
        assert!(
            peaks[2] < peaks[0] + 40 * 1024,
            "{target}: worker memory grew with the row count: {} KiB for 10k rows, {} KiB for 100k",
            peaks[0],
            peaks[2]
        );
    }
}

#[sqlx::test(migrator = "anvil_core::store::postgres::MIGRATOR")]
async fn a_worker_killed_mid_export_leaves_no_partial_upload_and_the_retry_completes(pool: PgPool) {
    let moto = moto();
    let s3c = s3(&moto.endpoint).await;
    s3c.create_bucket().bucket("exports").send().await.unwrap();
    let t = TenantId::parse("t1").unwrap();
    let store = store(&pool);
    let url = db_url(&pool);
    let q = seed(&pool, "t1", 150_000).await;
    let data = tempfile::tempdir().unwrap();
    let id = new_export(&store, &t, q).await;

    let mut first = worker_process(&url, data.path(), Some(&moto.endpoint), "exports", 3);
    // wait until the upload is under way (a multipart upload exists), then kill the worker outright
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ups = s3c.list_multipart_uploads().bucket("exports").send().await.unwrap();
        if !ups.uploads().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the export never started uploading");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let rec = store.get_export(&t, id).await.unwrap();
    assert_ne!(rec.export.state, TaskState::Succeeded, "killed too late to test anything");
    assert!(
        s3c.head_object().bucket("exports").key(&rec.object_key).send().await.is_err(),
        "a partial object is visible"
    );

    // the job's lock expires and a new worker retries it
    let second = worker_process(&url, data.path(), Some(&moto.endpoint), "exports", 3);
    let rec = wait_export(&store, &t, id, Duration::from_secs(180)).await;
    stop(second);
    let ups = s3c.list_multipart_uploads().bucket("exports").send().await.unwrap();
    assert!(ups.uploads().is_empty(), "orphaned multipart uploads: {:?}", ups.uploads());
    let obj = s3c.get_object().bucket("exports").key(&rec.object_key).send().await.unwrap();
    let bytes = obj.body.collect().await.unwrap().into_bytes();
    assert_eq!(Some(hex::encode(Sha256::digest(&bytes))), rec.export.sha256);
    assert_eq!(rec.export.rows, Some(150_000));
}

#[sqlx::test(migrator = "anvil_core::store::postgres::MIGRATOR")]
async fn sqs_redelivery_runs_once_and_only_the_poison_message_is_reported(pool: PgPool) {
    let moto = moto();
    let conf = aws_conf(&moto.endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let s3c = s3(&moto.endpoint).await;
    s3c.create_bucket().bucket("exports").send().await.unwrap();
    let dlq = sqs.create_queue().queue_name("jobs-dlq").send().await.unwrap().queue_url.unwrap();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let queue = sqs
        .create_queue()
        .queue_name("jobs")
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            format!("{{\"deadLetterTargetArn\":\"{dlq_arn}\",\"maxReceiveCount\":\"3\"}}"),
        )
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "0")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();

    let t = TenantId::parse("t1").unwrap();
    let store = store(&pool);
    let q = seed(&pool, "t1", 1_000).await;
    let export = new_export(&store, &t, q).await;
    // a poison job: a kind no worker knows
    sqlx::query("INSERT INTO jobs (tenant_id, id, kind, payload) VALUES ('t1', $1, 'mystery', '{}')")
        .bind(Uuid::now_v7())
        .execute(&pool)
        .await
        .unwrap();
    let dispatcher = SqsDispatcher::new(sqs.clone(), &queue, store.clone());
    assert_eq!(dispatcher.dispatch_once(100).await.unwrap(), 2);
    assert_eq!(dispatcher.dispatch_once(100).await.unwrap(), 0, "dispatched rows are not sent again");

    let blobs = Arc::new(anvil_core::blob_s3::S3BlobStore::new(s3c.clone(), "exports"));
    let worker = Worker { store: store.clone(), tasks: store.clone(), blobs };
    let msgs = sqs.receive_message().queue_url(&queue).max_number_of_messages(10).send().await.unwrap();
    let received: Vec<Received> = msgs
        .messages()
        .iter()
        .map(|m| Received {
            message_id: m.message_id().map(str::to_string),
            body: m.body().map(str::to_string),
        })
        .collect();
    assert_eq!(received.len(), 2);
    let export_job: Uuid =
        sqlx::query_scalar("SELECT id FROM jobs WHERE kind = 'export'").fetch_one(&pool).await.unwrap();
    let poison_id = received
        .iter()
        .find(|r| !r.body.as_deref().unwrap().contains(&export_job.to_string()))
        .and_then(|r| r.message_id.clone());
    // with garbage and an id-less record thrown in; the same batch handled three times (redelivery)
    let mut batch = received.clone();
    batch.push(Received { message_id: Some("garbage-1".into()), body: Some("{not json".into()) });
    batch.push(Received { message_id: None, body: Some("{}".into()) });
    for round in 0..3 {
        let mut failed = handle_batch(&worker, &batch).await;
        failed.sort();
        let mut expected = vec!["garbage-1".to_string(), poison_id.clone().unwrap()];
        expected.sort();
        assert_eq!(failed, expected, "round {round}: only the poison messages are reported");
        assert!(failed.iter().all(|id| !id.is_empty()));
    }
    let rec = store.get_export(&t, export).await.unwrap();
    assert_eq!(rec.export.state, TaskState::Succeeded);
    let objects = s3c.list_objects_v2().bucket("exports").send().await.unwrap();
    assert_eq!(objects.contents().len(), 2, "one export file and one manifest after three deliveries");
    let dead: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'dead'").fetch_one(&pool).await.unwrap();
    let ok: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'succeeded'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((dead, ok), (1, 1));

    // SQS itself moves the poison message to the DLQ after maxReceiveCount receives
    let mut in_dlq = 0;
    for _ in 0..6 {
        let got = sqs.receive_message().queue_url(&queue).max_number_of_messages(10).send().await.unwrap();
        for m in got.messages() {
            // acknowledge the good message; leave the poison to come back
            if m.body().is_some_and(|b| b.contains(&export_job.to_string())) {
                sqs.delete_message()
                    .queue_url(&queue)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        let d = sqs.receive_message().queue_url(&dlq).max_number_of_messages(10).send().await.unwrap();
        in_dlq += d.messages().len();
        if in_dlq > 0 {
            break;
        }
    }
    assert_eq!(in_dlq, 1, "the poison message reached the dead-letter queue");
}
