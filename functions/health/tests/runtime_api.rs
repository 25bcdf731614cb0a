//! The `health` binary as Lambda runs it: a real process polling a Runtime API on 127.0.0.1, API Gateway REST
//! events from tests/fixtures in, proxy responses out, against a fresh Postgres database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anvil_lambda_tests::{Function, HttpAnswer, TestEnv, binary, fixture};

const DIR: &str = env!("CARGO_MANIFEST_DIR");

fn health() -> std::path::PathBuf {
    binary("health", env!("CARGO_BIN_EXE_health"))
}

#[tokio::test]
async fn readiness_answers_on_a_stage_not_named_v1_and_without_the_stage_setting_it_would_not() {
    // Arrange: a deployment whose stage is `prod`, so the stage is not a prefix of /health/ready
    let env = TestEnv::new("health", true).await.unwrap();
    let ready = fixture(DIR, "ready-stage-prod.json", &[]).unwrap();

    // Act: with the template's AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true, and without a JWT key (the health
    // function is granted none; the template declares the variables blank, which counts as unset)
    let (mut f, first) = Function::builder("health", health())
        .envs(env.function_env())
        .env("ANVIL_JWT_HS256_SECRET", "")
        .env("ANVIL_DB_PORT", "")
        .start(ready.clone())
        .await
        .unwrap();

    // Assert
    let answer = HttpAnswer::from_outcome(first.outcome).unwrap();
    let body = answer.expect(200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["dependencies"][0]["name"], "database");
    assert_eq!(body["dependencies"][0]["ok"], true);
    let live = f.http(fixture(DIR, "live.json", &[]).unwrap()).await.unwrap();
    assert_eq!(live.expect(200)["status"], "ok");
    f.report().unwrap();
    drop(f);

    // The trap, shown: without the setting lambda_http routes /prod/health/ready, which matches nothing.
    let (f, first) = Function::builder("health", health())
        .envs(env.function_env())
        .without_env("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH")
        .start(ready)
        .await
        .unwrap();
    HttpAnswer::from_outcome(first.outcome).unwrap().expect_error(404, "not_found");
    drop(f);

    env.close().await.unwrap();
}

#[tokio::test]
async fn a_function_without_a_database_exits_at_init_naming_what_to_set() {
    // Arrange: nothing but Lambda's own environment
    let builder = Function::builder("health", health());

    // Act
    let (status, logs) = builder.start_expecting_exit().await.unwrap();

    // Assert: a failed init, logged as JSON, naming the settings
    assert!(!status.success());
    assert!(logs.contains("ANVIL_DB_SECRET_ARN") && logs.contains("DATABASE_URL"), "{logs}");
    assert!(logs.contains(r#""message":"cold start failed""#), "{logs}");
}
