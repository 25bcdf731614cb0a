//! The `migrate` binary as Lambda runs it, invoked by CloudFormation's custom resource events (fixtures) on a
//! Runtime API on 127.0.0.1, answering CloudFormation's response URL (served by the same emulator).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use anvil_lambda_tests::{Function, Outcome, TestEnv, binary, fixture};
use serde_json::json;

const DIR: &str = env!("CARGO_MANIFEST_DIR");
const WAIT: Duration = Duration::from_secs(30);

fn migrate() -> std::path::PathBuf {
    binary("migrate", env!("CARGO_BIN_EXE_migrate"))
}

/// A new `migrate` process on `database_url` whose first event is the custom resource request in `file`,
/// once CloudFormation has heard SUCCESS for it (as `tag` on the emulator's response URL).
async fn start_succeeding(database_url: &str, file: &str, tag: &str) -> (Function, serde_json::Value) {
    let (f, first) = Function::builder("migrate", migrate())
        .env("DATABASE_URL", database_url)
        .start_with(|api| fixture(DIR, file, &[("RESPONSE_URL", &api.cfn_response_url(tag))]))
        .await
        .unwrap();
    assert!(
        matches!(first.outcome, Outcome::Response(ref v) if v["status"] == "SUCCESS"),
        "{:?}",
        first.outcome
    );
    let told = f.runtime_api().cfn_response(tag, WAIT).await.unwrap();
    assert_eq!(told["Status"], "SUCCESS", "{told}");
    (f, told)
}

#[tokio::test]
async fn a_stack_create_migrates_an_empty_database_and_update_and_delete_keep_it() {
    // Arrange: an empty database
    let env = TestEnv::new("migrate", false).await.unwrap();
    assert!(env.tables().await.unwrap().is_empty());

    // Act: CloudFormation's Create
    let (mut f, told) = start_succeeding(&env.database_url, "custom-resource-create.json", "create").await;

    // Assert: CloudFormation was told SUCCESS, and the schema is there
    assert_eq!(told["PhysicalResourceId"], "anvil-database-migrations");
    assert_eq!(told["RequestId"], "7bfe5a14-5a86-4e43-9c55-5b8f0c1e2a01");
    assert!(told["Data"]["LatestVersion"].as_str().unwrap().parse::<i64>().unwrap() >= 1);
    let tables = env.tables().await.unwrap();
    for t in ["queues", "samples", "assignments", "labels"] {
        assert!(tables.iter().any(|x| x == t), "{t} missing from {tables:?}");
    }

    // an Update (a new function version) runs again harmlessly; a Delete leaves the data alone
    for (name, file) in [("update", "custom-resource-update.json"), ("delete", "custom-resource-delete.json")]
    {
        let url = f.runtime_api().cfn_response_url(name);
        let event = fixture(DIR, file, &[("RESPONSE_URL", &url)]).unwrap();
        f.invoke(event).await.unwrap();
        let told = f.runtime_api().cfn_response(name, WAIT).await.unwrap();
        assert_eq!(told["Status"], "SUCCESS", "{name}: {told}");
        assert_eq!(told["PhysicalResourceId"], "anvil-database-migrations");
    }
    assert_eq!(env.tables().await.unwrap(), tables);

    // invoked directly (a deploy step, or by hand)
    match f.invoke(json!({})).await.unwrap() {
        Outcome::Response(v) => assert_eq!(v["migrated"], true, "{v}"),
        other => panic!("{other:?}"),
    }

    // the first deploy: start-up plus every migration on an empty database
    f.report_as("migrate/new").unwrap();
    drop(f);

    // every later deploy: a new process (a new function version) whose Update finds the schema up to date
    let (again, _) = start_succeeding(&env.database_url, "custom-resource-update.json", "again").await;
    assert_eq!(env.tables().await.unwrap(), tables);
    again.report().unwrap();
    drop(again);
    env.close().await.unwrap();
}

#[tokio::test]
async fn a_failed_migration_fails_the_deployment_with_the_reason() {
    // Arrange: a database that does not exist
    let url = anvil_lambda_tests::env::with_database(
        &anvil_lambda_tests::env::base_url(),
        "anvil_no_such_database",
    )
    .unwrap();

    // Act
    let (f, first) = Function::builder("migrate", migrate())
        .env("DATABASE_URL", url)
        .start_with(|api| {
            fixture(DIR, "custom-resource-create.json", &[("RESPONSE_URL", &api.cfn_response_url("create"))])
        })
        .await
        .unwrap();

    // Assert: CloudFormation hears FAILED (so the stack rolls back) and why
    let told = f.runtime_api().cfn_response("create", WAIT).await.unwrap();
    assert_eq!(told["Status"], "FAILED", "{told}");
    assert!(told["Reason"].as_str().unwrap().contains("anvil_no_such_database"), "{told}");
    assert!(matches!(first.outcome, Outcome::Response(ref v) if v["status"] == "FAILED"));
}
