//! The `exports` binary as Lambda runs it: API Gateway REST events from tests/fixtures in (stage `prod`, so
//! the stage-in-path setting is exercised), proxy responses out, against a fresh Postgres database, with the
//! exports bucket and the jobs queue on moto (127.0.0.1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use anvil_lambda_tests::{Function, HttpAnswer, Moto, Role, TestEnv, binary, fixture};
use serde_json::{Value, json};

const DIR: &str = env!("CARGO_MANIFEST_DIR");
const BUCKET: &str = "anvil-exports";

#[tokio::test]
async fn an_admin_requests_an_export_which_is_handed_to_sqs_and_read_back() {
    // Arrange
    let Some(moto) = Moto::start().await.unwrap() else {
        return; // not installed and not in CI: skipped with a message
    };
    moto.create_bucket(BUCKET).await.unwrap();
    let queue_url = moto.create_queue("anvil-jobs").await.unwrap();
    let env = TestEnv::new("exports", true).await.unwrap();
    let queue = env.queue_with_samples("acme", "reviews", 2).await.unwrap().to_string();
    let admin = env.token("acme", "ada", Role::Admin).unwrap();
    let list = fixture(DIR, "list-exports.json", &[("QUEUE_ID", &queue), ("TOKEN", &admin)]).unwrap();
    let create = fixture(DIR, "create-export.json", &[("QUEUE_ID", &queue), ("TOKEN", &admin)]).unwrap();

    // Act: the first request (no export yet: one database read, as the other functions' first events) waits
    // on the Runtime API before the process exists, so its answer times the cold start
    let (mut f, first) = Function::builder("exports", binary("exports", env!("CARGO_BIN_EXE_exports")))
        .envs(env.function_env())
        .envs(moto.function_env())
        .envs(Moto::jobs_env(BUCKET, &queue_url))
        .start(list.clone())
        .await
        .unwrap();
    let none = HttpAnswer::from_outcome(first.outcome).unwrap();
    assert_eq!(none.expect(200)["items"], json!([]));
    let created = f.http(create).await.unwrap();

    // Assert: 202 with a pending export, whose job went to SQS right after the commit
    let export = created.expect(202).clone();
    assert_eq!(export["queue_id"], queue.as_str());
    assert_eq!(export["format"], "jsonl");
    assert_eq!(export["state"], "pending");
    let id = export["id"].as_str().unwrap().to_string();
    let job = env.export_job(id.parse().unwrap()).await.unwrap();
    assert!(job.dispatched, "the job was not handed to SQS: {job:?}");
    let sent = moto.receive(&queue_url, 10, Duration::from_secs(5)).await.unwrap();
    let bodies: Vec<Value> = sent.iter().map(|m| serde_json::from_str(&m.body).unwrap()).collect();
    assert_eq!(bodies, vec![json!({"job_id": job.id})]);

    // read back, alone and in the queue's list
    let get = fixture(DIR, "get-export.json", &[("EXPORT_ID", &id), ("TOKEN", &admin)]).unwrap();
    let read = f.http(get).await.unwrap();
    assert_eq!(read.expect(200)["id"], id.as_str());
    assert_eq!(read.body["state"], "pending");
    assert!(read.body["download_url"].is_null(), "{}", read.body);
    let list = f.http(list).await.unwrap();
    let ids: Vec<&Value> = list.expect(200)["items"].as_array().unwrap().iter().map(|e| &e["id"]).collect();
    assert_eq!(ids, vec![&json!(id)]);

    // an unknown export: 404 in the envelope
    let unknown = "0190f0a1-0000-7000-8000-000000000000";
    let missing = fixture(DIR, "get-export.json", &[("EXPORT_ID", unknown), ("TOKEN", &admin)]).unwrap();
    f.http(missing).await.unwrap().expect_error(404, "not_found");

    // another tenant's admin does not see it either
    let other = env.token("globex", "gus", Role::Admin).unwrap();
    let foreign = fixture(DIR, "get-export.json", &[("EXPORT_ID", &id), ("TOKEN", &other)]).unwrap();
    f.http(foreign).await.unwrap().expect_error(404, "not_found");

    // a labeler may not export; a token that is not one of ours is 401
    let labeler = env.token("acme", "alice", Role::Labeler).unwrap();
    let denied = fixture(DIR, "create-export.json", &[("QUEUE_ID", &queue), ("TOKEN", &labeler)]).unwrap();
    f.http(denied).await.unwrap().expect_error(403, "forbidden");
    let bad = fixture(DIR, "get-export.json", &[("EXPORT_ID", &id), ("TOKEN", "not.a.token")]).unwrap();
    f.http(bad).await.unwrap().expect_error(401, "unauthorized");

    assert!(!f.logs().contains(&env.hs256_secret), "a secret reached the logs");
    f.report().unwrap();
    drop(f);
    env.close().await.unwrap();
}

#[tokio::test]
async fn the_exports_function_refuses_to_start_without_its_queue() {
    let env = TestEnv::new("exportsnoqueue", false).await.unwrap();
    let (status, logs) = Function::builder("exports", binary("exports", env!("CARGO_BIN_EXE_exports")))
        .envs(env.function_env())
        .env("ANVIL_S3_BUCKET", BUCKET)
        .start_expecting_exit()
        .await
        .unwrap();
    assert!(!status.success());
    assert!(logs.contains("ANVIL_SQS_QUEUE_URL"), "{logs}");
    env.close().await.unwrap();
}
