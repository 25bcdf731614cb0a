//! The `queues` binary as Lambda runs it, configured the AWS way: database credentials (RDS's JSON) and the JWT
//! key come from Secrets Manager by ARN, here moto's on 127.0.0.1; API Gateway REST events from tests/fixtures
//! in, proxy responses out, against a fresh Postgres database; imports' files in S3 and jobs in SQS, on moto too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anvil_lambda_tests::{Function, HttpAnswer, Moto, Role, TestEnv, binary, fixture};

const DIR: &str = env!("CARGO_MANIFEST_DIR");

#[tokio::test]
async fn an_admin_creates_a_queue_with_every_secret_from_secrets_manager() {
    // Arrange
    let Some(moto) = Moto::start().await.unwrap() else {
        return; // not installed and not in CI: skipped with a message
    };
    moto.create_bucket("anvil-exports").await.unwrap();
    let queue_url = moto.create_queue("anvil-jobs").await.unwrap();
    let env = TestEnv::new("queues", true).await.unwrap();
    let db_arn = moto.create_secret("anvil/db", &env.rds_secret_json().unwrap()).await.unwrap();
    let jwt_arn = moto.create_secret("anvil/jwt", &env.hs256_secret).await.unwrap();
    let admin = env.token("acme", "ada", Role::Admin).unwrap();
    let create =
        fixture(DIR, "create-queue.json", &[("TOKEN", &admin), ("QUEUE_NAME", "support-tickets")]).unwrap();

    // Act: no DATABASE_URL, no key in the environment: only the two ARNs
    let (mut f, first) = Function::builder("queues", binary("queues", env!("CARGO_BIN_EXE_queues")))
        .envs(moto.function_env())
        .envs(Moto::jobs_env("anvil-exports", &queue_url))
        .env("ANVIL_DB_SECRET_ARN", db_arn)
        .env("ANVIL_JWT_SECRET_ARN", jwt_arn)
        .env("ANVIL_DB_MAX_CONNECTIONS", "2")
        .start(create)
        .await
        .unwrap();

    // Assert
    let created = HttpAnswer::from_outcome(first.outcome).unwrap();
    let queue = created.expect(201).clone();
    assert_eq!(queue["name"], "support-tickets");
    let list = f.http(fixture(DIR, "list-queues.json", &[("TOKEN", &admin)]).unwrap()).await.unwrap();
    let items = list.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], queue["id"]);

    // a labeler may not create queues
    let labeler = env.token("acme", "alice", Role::Labeler).unwrap();
    let denied = fixture(DIR, "create-queue.json", &[("TOKEN", &labeler), ("QUEUE_NAME", "nope")]).unwrap();
    f.http(denied).await.unwrap().expect_error(403, "forbidden");

    // another tenant sees none of acme's queues
    let other = env.token("globex", "gus", Role::Admin).unwrap();
    let list = f.http(fixture(DIR, "list-queues.json", &[("TOKEN", &other)]).unwrap()).await.unwrap();
    assert_eq!(list.expect(200)["items"].as_array().unwrap().len(), 0);

    // imports are served here too: a signed S3 upload URL (moto's, path-style)
    let import =
        fixture(DIR, "create-import.json", &[("TOKEN", &admin), ("QUEUE_ID", queue["id"].as_str().unwrap())])
            .unwrap();
    let import = f.http(import).await.unwrap();
    let url = import.expect(201)["upload_url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("{}/anvil-exports/imports/", moto.endpoint)), "{url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");

    assert!(!f.logs().contains(&env.hs256_secret), "a secret reached the logs");
    f.report().unwrap();
    drop(f);
    env.close().await.unwrap();
}
