//! The `worker` binary as Lambda runs it: SQS batches and a scheduled EventBridge event from tests/fixtures
//! in, against a fresh Postgres database, S3 and SQS on moto (127.0.0.1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use anvil_lambda_tests::{Function, Moto, Outcome, TestEnv, binary, fixture};
use anvil_types::TaskState;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const DIR: &str = env!("CARGO_MANIFEST_DIR");
const BUCKET: &str = "anvil-exports";

#[track_caller]
fn response(outcome: Outcome) -> Value {
    match outcome {
        Outcome::Response(v) => v,
        Outcome::Error { error_type, body } => panic!("the worker failed: {error_type} {body}"),
    }
}

#[tokio::test]
async fn a_batch_runs_the_export_reports_only_the_poison_message_and_the_schedule_sweeps_the_outbox() {
    // Arrange: a queue with 3 labels, the exports bucket and the jobs queue
    let Some(moto) = Moto::start().await.unwrap() else {
        return; // not installed and not in CI: skipped with a message
    };
    moto.create_bucket(BUCKET).await.unwrap();
    let queue_url = moto.create_queue("anvil-jobs").await.unwrap();
    let env = TestEnv::new("worker", true).await.unwrap();
    let queue = env.queue_with_samples("acme", "reviews", 4).await.unwrap();
    env.label("acme", "alice", queue, 3).await.unwrap();

    // Act: the first event, a scheduled run with nothing to do (one database round trip, as the HTTP
    // functions' first events), waits on the Runtime API before the process exists, so its answer times the
    // cold start; then an export is requested and the batch brings its job's message and a poison message
    let (mut f, first) = Function::builder("worker", binary("worker", env!("CARGO_BIN_EXE_worker")))
        .envs(env.function_env())
        .envs(moto.function_env())
        .envs(Moto::jobs_env(BUCKET, &queue_url))
        .without_env("ANVIL_JWT_HS256_SECRET")
        .start(fixture(DIR, "scheduled.json", &[]).unwrap())
        .await
        .unwrap();
    assert_eq!(response(first.outcome), json!({"dispatched": 0, "reclaimed": 0}));
    let export = env.create_export("acme", queue).await.unwrap();
    let job = env.export_job(export).await.unwrap();
    assert_eq!((job.state.as_str(), job.dispatched), ("pending", false));
    let (good, poison) = ("6f2c1b2e-good-message", "0d9e8a7c-poison-message");
    let batch = fixture(
        DIR,
        "sqs-batch.json",
        &[("GOOD_ID", good), ("POISON_ID", poison), ("JOB_ID", &job.id.to_string())],
    )
    .unwrap();
    let first = response(f.invoke(batch).await.unwrap());

    // Assert: exactly the poison message comes back; the export is in S3 with the recorded sha256
    assert_eq!(first, json!({"batchItemFailures": [{"itemIdentifier": poison}]}));
    let rec = env.export("acme", export).await.unwrap();
    assert_eq!(rec.export.state, TaskState::Succeeded, "{:?}", rec.export);
    assert_eq!(rec.export.rows, Some(3));
    let (bytes, modified) = moto.object(BUCKET, &rec.object_key).await.unwrap();
    assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 3);
    assert_eq!(rec.export.sha256.as_deref(), Some(hex::encode(Sha256::digest(&bytes)).as_str()));
    assert_eq!(rec.export.bytes, Some(i64::try_from(bytes.len()).unwrap()));
    let dir = rec.object_key.rsplit_once('/').unwrap().0.to_string();
    let keys = moto.keys(BUCKET, &dir).await.unwrap();
    assert_eq!(keys, vec![format!("{dir}/labels.jsonl"), format!("{dir}/manifest.json")]);
    let logs = f.logs();
    assert!(logs.contains(&format!("\"job_id\":\"{}\"", job.id)), "no job fields in the logs:\n{logs}");

    // the same message again (SQS delivers at least once): acknowledged, nothing written a second time
    tokio::time::sleep(Duration::from_millis(1100)).await; // S3's Last-Modified has whole seconds
    let again = fixture(DIR, "sqs-one.json", &[("GOOD_ID", good), ("JOB_ID", &job.id.to_string())]).unwrap();
    let again = response(f.invoke(again).await.unwrap());
    assert_eq!(again, json!({"batchItemFailures": []}));
    assert_eq!(moto.keys(BUCKET, &dir).await.unwrap(), keys);
    let (bytes_again, modified_again) = moto.object(BUCKET, &rec.object_key).await.unwrap();
    assert_eq!((bytes_again, modified_again), (bytes, modified), "the export was written again");
    assert_eq!(env.export("acme", export).await.unwrap().export.finished_at, rec.export.finished_at);

    // the schedule: an export whose job was committed but never sent (a crash after the commit) goes to SQS
    let stranded = env.create_export("acme", queue).await.unwrap();
    let stranded_job = env.export_job(stranded).await.unwrap();
    assert!(!stranded_job.dispatched);
    let upkeep = response(f.invoke(fixture(DIR, "scheduled.json", &[]).unwrap()).await.unwrap());
    assert_eq!(upkeep, json!({"dispatched": 1, "reclaimed": 0}));
    assert!(env.export_job(stranded).await.unwrap().dispatched);
    let sent = moto.receive(&queue_url, 10, Duration::from_secs(5)).await.unwrap();
    let bodies: Vec<Value> = sent.iter().map(|m| serde_json::from_str(&m.body).unwrap()).collect();
    assert_eq!(bodies, vec![json!({"job_id": stranded_job.id})]);
    // nothing left: a second run sends nothing
    let upkeep = response(f.invoke(fixture(DIR, "scheduled.json", &[]).unwrap()).await.unwrap());
    assert_eq!(upkeep["dispatched"], 0);

    // any other event is an error (the runtime reports it), not a panic and not an empty batch response
    match f.invoke(fixture(DIR, "unknown.json", &[]).unwrap()).await.unwrap() {
        Outcome::Error { body, .. } => assert!(body.to_string().contains("unknown event"), "{body}"),
        Outcome::Response(v) => panic!("an unknown event was answered: {v}"),
    }

    f.report().unwrap();
    drop(f);
    env.close().await.unwrap();
}

#[tokio::test]
async fn the_worker_refuses_to_start_without_its_bucket() {
    let env = TestEnv::new("workernobucket", false).await.unwrap();
    let (status, logs) = Function::builder("worker", binary("worker", env!("CARGO_BIN_EXE_worker")))
        .envs(env.function_env())
        .env("ANVIL_SQS_QUEUE_URL", "http://127.0.0.1:9/123456789012/none")
        .start_expecting_exit()
        .await
        .unwrap();
    assert!(!status.success());
    assert!(logs.contains("ANVIL_S3_BUCKET"), "{logs}");
    env.close().await.unwrap();
}
