//! The `assignments` binary as Lambda runs it: a real process polling a Runtime API on 127.0.0.1, API Gateway
//! REST events from tests/fixtures in, proxy responses out, against a fresh Postgres database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anvil_lambda_tests::{Function, HttpAnswer, Role, TestEnv, binary, fixture};

const DIR: &str = env!("CARGO_MANIFEST_DIR");

#[tokio::test]
async fn a_labeler_claims_through_api_gateway_and_a_forged_token_is_rejected() {
    // Arrange
    let env = TestEnv::new("assignments", true).await.unwrap();
    let queue = env.queue_with_samples("acme", "reviews", 2).await.unwrap().to_string();
    let alice = env.token("acme", "alice", Role::Labeler).unwrap();
    let claim = fixture(DIR, "claim.json", &[("QUEUE_ID", &queue), ("TOKEN", &alice)]).unwrap();

    // Act: the claim waits on the Runtime API before the process exists, so the first answer times the cold start
    let (mut f, first) =
        Function::builder("assignments", binary("assignments", env!("CARGO_BIN_EXE_assignments")))
            .envs(env.function_env())
            .start(claim.clone())
            .await
            .unwrap();
    let first = HttpAnswer::from_outcome(first.outcome).unwrap();

    // Assert
    let body = first.expect(200);
    assert_eq!(body["assignment"]["queue_id"], queue.as_str());
    assert_eq!(body["assignment"]["state"], "leased");
    assert!(body["sample"]["payload"]["text"].is_string(), "{body}");
    assert_eq!(body["schema"]["fields"][0]["name"], "sentiment");
    assert_eq!(first.headers.get("content-type").map(String::as_str), Some("application/json"));
    assert_eq!(first.headers.get("cache-control").map(String::as_str), Some("no-store"));
    let assignment = body["assignment"]["id"].as_str().unwrap().to_string();

    // claiming again while holding the lease answers the same lease
    let again = f.http(claim).await.unwrap();
    assert_eq!(again.expect(200)["assignment"]["id"], assignment.as_str());

    let get =
        fixture(DIR, "get-assignment.json", &[("ASSIGNMENT_ID", &assignment), ("TOKEN", &alice)]).unwrap();
    let read = f.http(get).await.unwrap();
    assert_eq!(read.expect(200)["assignment"]["id"], assignment.as_str());

    // a token signed with someone else's key: 401 in the envelope, whatever it claims
    let forged = fixture(DIR, "claim-forged-token.json", &[("QUEUE_ID", &queue)]).unwrap();
    f.http(forged).await.unwrap().expect_error(401, "unauthorized");

    f.report().unwrap();
    drop(f);
    env.close().await.unwrap();
}
