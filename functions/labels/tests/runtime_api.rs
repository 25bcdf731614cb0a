//! The `labels` binary as Lambda runs it: a real process polling a Runtime API on 127.0.0.1, API Gateway REST
//! events from tests/fixtures in, proxy responses out, against a fresh Postgres database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anvil_lambda_tests::{Function, HttpAnswer, Role, TestEnv, binary, fixture};

const DIR: &str = env!("CARGO_MANIFEST_DIR");

#[tokio::test]
async fn a_label_is_submitted_through_api_gateway_once_and_a_malformed_body_is_a_400() {
    // Arrange: alice holds a lease
    let env = TestEnv::new("labels", true).await.unwrap();
    let queue = env.queue_with_samples("acme", "reviews", 1).await.unwrap();
    let assignment = env.claim("acme", "alice", queue).await.unwrap().to_string();
    let alice = env.token("acme", "alice", Role::Labeler).unwrap();
    let vars = [("ASSIGNMENT_ID", assignment.as_str()), ("TOKEN", alice.as_str())];
    let submit = fixture(DIR, "submit.json", &vars).unwrap();

    // Act
    let (mut f, first) = Function::builder("labels", binary("labels", env!("CARGO_BIN_EXE_labels")))
        .envs(env.function_env())
        .start(submit.clone())
        .await
        .unwrap();

    // Assert: created, durable before the 2xx
    let created = HttpAnswer::from_outcome(first.outcome).unwrap();
    let label = created.expect(201).clone();
    assert_eq!(label["assignment_id"], assignment.as_str());
    assert_eq!(label["payload"]["sentiment"], "pos");

    // the same submit again (an API Gateway retry) answers the same label
    let repeat = f.http(submit).await.unwrap();
    assert_eq!(repeat.expect(200)["id"], label["id"]);

    // a body cut short: 400 in the envelope, not a 500 and not a Lambda error
    let malformed = fixture(DIR, "submit-malformed-body.json", &vars).unwrap();
    f.http(malformed).await.unwrap().expect_error(400, "malformed_json");

    // an auditor sees the one label (query string parameters pass through)
    let auditor = env.token("acme", "audrey", Role::Auditor).unwrap();
    let list =
        fixture(DIR, "list-labels.json", &[("QUEUE_ID", &queue.to_string()), ("TOKEN", &auditor)]).unwrap();
    let listed = f.http(list).await.unwrap();
    let items = listed.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], label["id"]);

    f.report().unwrap();
    drop(f);
    env.close().await.unwrap();
}
