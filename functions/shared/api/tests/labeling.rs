//! The labeling core through the HTTP router: queues, samples, claim/lease/submit, review, pagination.
//! Each scenario is a plain async fn run against every store (see the `conformance!` list at the bottom).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use std::collections::{HashMap, HashSet};

use anvil_types::Role;
use axum::http::{Method, StatusCode};
use common::*;
use serde_json::{Value, json};

async fn a_queue_is_created_listed_and_patched_with_a_new_schema_version(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "reviews", 1, rich_schema()).await;
    let got = app.get(&format!("/v1/queues/{q}"), &admin).await.expect(StatusCode::OK);
    assert_eq!(got["schema_version"], 1);
    assert_eq!(got["state"], "active");
    let list = app.get("/v1/queues", &admin).await.expect(StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // same name again is a conflict
    app.post("/v1/queues", &admin, json!({"name": "reviews", "schema": simple_schema()}))
        .await
        .expect_error(StatusCode::CONFLICT, "name_taken");

    // a new schema makes version 2; the same schema again does not
    let p = app.patch(&format!("/v1/queues/{q}"), &admin, json!({"schema": simple_schema()})).await;
    assert_eq!(p.expect(StatusCode::OK)["schema_version"], 2);
    let p = app.patch(&format!("/v1/queues/{q}"), &admin, json!({"schema": simple_schema()})).await;
    assert_eq!(p.expect(StatusCode::OK)["schema_version"], 2);
    let p =
        app.patch(&format!("/v1/queues/{q}"), &admin, json!({"state": "paused", "name": "reviews v2"})).await;
    let body = p.expect(StatusCode::OK);
    assert_eq!((body["state"].as_str(), body["name"].as_str()), (Some("paused"), Some("reviews v2")));
}

async fn samples_are_idempotent_by_external_id(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "q", 1, simple_schema()).await;
    let batch = json!({"samples": [
        {"external_id": "a", "payload": {"text": "one"}},
        {"external_id": "b", "payload": {"text": "two"}, "priority": 5}
    ]});
    let r = app.post(&format!("/v1/queues/{q}/samples"), &admin, batch.clone()).await.expect(StatusCode::OK);
    assert_eq!((r["created"].as_i64(), r["existing"].as_i64()), (Some(2), Some(0)));
    let r = app.post(&format!("/v1/queues/{q}/samples"), &admin, batch).await.expect(StatusCode::OK);
    assert_eq!((r["created"].as_i64(), r["existing"].as_i64()), (Some(0), Some(2)));
    let stats = app.get(&format!("/v1/queues/{q}/stats"), &admin).await.expect(StatusCode::OK);
    assert_eq!(stats["total_samples"], 2);
    // higher priority is served first
    let c = app.claim(&q, &labeler("t1", "ann")).await.expect(StatusCode::OK);
    assert_eq!(c["sample"]["external_id"], "b");
}

async fn claim_returns_the_live_lease_again_and_the_sample_with_its_schema(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "q", 1, rich_schema()).await;
    app.samples(&admin, &q, 3).await;
    let ann = labeler("t1", "ann");
    let c1 = app.claim(&q, &ann).await.expect(StatusCode::OK);
    assert_eq!(c1["schema"]["fields"].as_array().unwrap().len(), 8);
    assert_eq!(c1["assignment"]["state"], "leased");
    assert!(c1["sample"]["payload"]["text"].is_string());
    let c2 = app.claim(&q, &ann).await.expect(StatusCode::OK);
    assert_eq!(c1["assignment"]["id"], c2["assignment"]["id"]);
    // another labeler gets another sample
    let c3 = app.claim(&q, &labeler("t1", "bob")).await.expect(StatusCode::OK);
    assert_ne!(c1["sample"]["id"], c3["sample"]["id"]);
}

async fn submit_is_idempotent_and_a_different_payload_is_a_conflict(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "q", 1, rich_schema()).await;
    app.samples(&admin, &q, 2).await;
    let ann = labeler("t1", "ann");
    let c = app.claim(&q, &ann).await.expect(StatusCode::OK);
    let a = assignment_id(&c);
    let payload = json!({"sentiment": "pos", "ents": [{"start": 0, "end": 6, "label": "PER"}], "stars": 4});
    let l1 = app
        .post("/v1/labels", &ann, json!({"assignment_id": a, "payload": payload}))
        .await
        .expect(StatusCode::CREATED);
    let l2 = app
        .post("/v1/labels", &ann, json!({"assignment_id": a, "payload": payload}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(l1["id"], l2["id"]);
    app.post("/v1/labels", &ann, json!({"assignment_id": a, "payload": {"sentiment": "neg"}}))
        .await
        .expect_error(StatusCode::CONFLICT, "label_conflict");
    let got =
        app.get(&format!("/v1/labels/{}", l1["id"].as_str().unwrap()), &ann).await.expect(StatusCode::OK);
    assert_eq!(got["payload"], payload);
    assert_eq!(got["schema_version"], 1);
    // the lease is done: a new claim gives the next sample
    let c2 = app.claim(&q, &ann).await.expect(StatusCode::OK);
    assert_ne!(c2["sample"]["id"], c["sample"]["id"]);
}

async fn an_invalid_label_is_rejected_with_pointers_and_nothing_is_written(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "q", 1, rich_schema()).await;
    app.samples(&admin, &q, 1).await;
    let ann = labeler("t1", "ann");
    let c = app.claim(&q, &ann).await.expect(StatusCode::OK);
    let a = assignment_id(&c);
    let bad = json!({"sentiment": "meh", "score": 11, "when": "2026-13-01", "ents": [{"start": 3, "end": 999, "label": "X"}]});
    let r = app.post("/v1/labels", &ann, json!({"assignment_id": a, "payload": bad})).await;
    r.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let pointers: Vec<&str> = r.body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["pointer"].as_str().unwrap())
        .collect();
    for p in [
        "/payload/sentiment",
        "/payload/score",
        "/payload/when",
        "/payload/ents/0/end",
        "/payload/ents/0/label",
    ] {
        assert!(pointers.contains(&p), "{p} missing from {pointers:?}");
    }
    assert!(app.all_labels(&q, &admin).await.is_empty());
    // the lease is still there and a valid label goes through
    let c2 = app.claim(&q, &ann).await.expect(StatusCode::OK);
    assert_eq!(assignment_id(&c2), a);
    app.post("/v1/labels", &ann, json!({"assignment_id": a, "payload": {"sentiment": "neg"}}))
        .await
        .expect(StatusCode::CREATED);
}

async fn a_released_sample_is_never_offered_to_that_labeler_again(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "q", 1, simple_schema()).await;
    app.samples(&admin, &q, 1).await;
    let ann = labeler("t1", "ann");
    let c = app.claim(&q, &ann).await.expect(StatusCode::OK);
    let a = assignment_id(&c);
    app.post(&format!("/v1/assignments/{a}/release"), &ann, json!({"reason": ""}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = app.post(&format!("/v1/assignments/{a}/release"), &ann, json!({"reason": "unreadable"})).await;
    assert_eq!(r.expect(StatusCode::OK)["state"], "released");
    // releasing twice answers the same
    app.post(&format!("/v1/assignments/{a}/release"), &ann, json!({"reason": "unreadable"}))
        .await
        .expect(StatusCode::OK);
    // nothing left for ann; bob gets the sample
    assert_eq!(app.claim(&q, &ann).await.status, StatusCode::NO_CONTENT);
    let b = app.claim(&q, &labeler("t1", "bob")).await.expect(StatusCode::OK);
    assert_eq!(b["sample"]["id"], c["sample"]["id"]);
    // a submit on the released assignment is a conflict
    app.post("/v1/labels", &ann, json!({"assignment_id": a, "payload": {"label": "a"}}))
        .await
        .expect_error(StatusCode::CONFLICT, "lease_released");
}

/// Far into a queue, slots that open behind the claims (a release, a reclaimed expiry) and a new sample of a
/// higher priority are handed out next, in queue order, not after the rest of the queue; then the queue goes
/// on where it was. (On Postgres the claims search from the queue's claim start, which moves up as the front
/// fills and must come back for these.)
async fn slots_freed_behind_the_claims_are_handed_out_next(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "q", 1, simple_schema()).await;
    app.samples(&admin, &q, 240).await;
    let (ann, bob, cat) = (labeler("t1", "ann"), labeler("t1", "bob"), labeler("t1", "cat"));
    let b = app.claim(&q, &bob).await.expect(StatusCode::OK);
    let c = app.claim(&q, &cat).await.expect(StatusCode::OK);
    assert_eq!(
        (b["sample"]["external_id"].as_str(), c["sample"]["external_id"].as_str()),
        (Some("s00000"), Some("s00001"))
    );
    // ann labels the next 200 samples, far past the two leases
    for i in 2..202 {
        let got = app.claim(&q, &ann).await.expect(StatusCode::OK);
        assert_eq!(got["sample"]["external_id"], format!("s{i:05}"));
        let a = assignment_id(&got);
        app.post("/v1/labels", &ann, json!({"assignment_id": a, "payload": {"label": "a"}}))
            .await
            .expect(StatusCode::CREATED);
    }
    // bob skips his sample; cat's lease expires and the reaper puts it back
    app.post(&format!("/v1/assignments/{}/release", assignment_id(&b)), &bob, json!({"reason": "skip"}))
        .await
        .expect(StatusCode::OK);
    app.expire_lease(&assignment_id(&c)).await;
    assert_eq!(app.store.reclaim_expired(100).await.unwrap(), 1);
    let d = app.claim(&q, &labeler("t1", "dan")).await.expect(StatusCode::OK);
    assert_eq!(d["sample"]["external_id"], "s00000");
    let e = app.claim(&q, &labeler("t1", "eve")).await.expect(StatusCode::OK);
    assert_eq!(e["sample"]["external_id"], "s00001");
    // a new sample of a higher priority comes first, then the queue goes on where it was
    let urgent = json!({"samples": [{"external_id": "urgent", "payload": {"text": "now"}, "priority": 10}]});
    app.post(&format!("/v1/queues/{q}/samples"), &admin, urgent).await.expect(StatusCode::OK);
    let f = app.claim(&q, &labeler("t1", "fay")).await.expect(StatusCode::OK);
    assert_eq!(f["sample"]["external_id"], "urgent");
    let g = app.claim(&q, &labeler("t1", "gus")).await.expect(StatusCode::OK);
    assert_eq!(g["sample"]["external_id"], "s00202");
}

async fn heartbeat_extends_the_lease(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "q", 1, simple_schema()).await;
    app.samples(&admin, &q, 1).await;
    let ann = labeler("t1", "ann");
    let c = app.claim(&q, &ann).await.expect(StatusCode::OK);
    let a = assignment_id(&c);
    let h = app
        .call(Method::POST, &format!("/v1/assignments/{a}/heartbeat"), Some(&ann), None)
        .await
        .expect(StatusCode::OK);
    assert!(h["version"].as_i64().unwrap() > c["assignment"]["version"].as_i64().unwrap());
    // as instants, not strings: RFC 3339 drops a zero fraction, and "…:02Z" sorts after "…:02.5Z"
    let at = |v: &Value| {
        time::OffsetDateTime::parse(v.as_str().unwrap(), &time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    assert!(at(&h["expires_at"]) >= at(&c["assignment"]["expires_at"]), "{h} {c}");
    // someone else's assignment is not found
    app.call(Method::POST, &format!("/v1/assignments/{a}/heartbeat"), Some(&labeler("t1", "bob")), None)
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
}

async fn an_expired_lease_goes_back_to_the_pool_and_a_late_submit_is_a_conflict(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "q", 1, simple_schema()).await;
    app.samples(&admin, &q, 1).await;
    let ann = labeler("t1", "ann");
    let bob = labeler("t1", "bob");
    let c = app.claim(&q, &ann).await.expect(StatusCode::OK);
    let a = assignment_id(&c);
    app.expire_lease(&a).await;
    // bob's claim reclaims the expired lease and gets the sample
    let b = app.claim(&q, &bob).await.expect(StatusCode::OK);
    assert_eq!(b["sample"]["id"], c["sample"]["id"]);
    app.post("/v1/labels", &ann, json!({"assignment_id": a, "payload": {"label": "a"}}))
        .await
        .expect_error(StatusCode::CONFLICT, "lease_expired");
    app.call(Method::POST, &format!("/v1/assignments/{a}/heartbeat"), Some(&ann), None)
        .await
        .expect_error(StatusCode::CONFLICT, "lease_expired");
    // ann never gets that sample again
    assert_eq!(app.claim(&q, &ann).await.status, StatusCode::NO_CONTENT);
}

async fn a_late_submit_wins_while_the_expired_lease_is_not_yet_reclaimed(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "q", 1, simple_schema()).await;
    app.samples(&admin, &q, 1).await;
    let ann = labeler("t1", "ann");
    let c = app.claim(&q, &ann).await.expect(StatusCode::OK);
    let a = assignment_id(&c);
    app.expire_lease(&a).await;
    app.post("/v1/labels", &ann, json!({"assignment_id": a, "payload": {"label": "b"}}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(app.store.reclaim_expired(100).await.unwrap(), 0);
    assert_eq!(app.claim(&q, &labeler("t1", "bob")).await.status, StatusCode::NO_CONTENT);
}

async fn reclaim_racing_a_late_submit_has_exactly_one_outcome(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "q", 1, simple_schema()).await;
    let rounds = 40;
    app.samples(&admin, &q, rounds).await;
    for i in 0..rounds {
        let ann = labeler("t1", &format!("late{i}"));
        let c = app.claim(&q, &ann).await.expect(StatusCode::OK);
        let a = assignment_id(&c);
        app.expire_lease(&a).await;
        let submit = {
            let app = app.clone();
            let a = a.clone();
            tokio::spawn(async move {
                app.post("/v1/labels", &ann, json!({"assignment_id": a, "payload": {"label": "a"}})).await
            })
        };
        let reclaim = {
            let store = app.store.clone();
            tokio::spawn(async move { store.reclaim_expired(100).await.unwrap() })
        };
        let (s, n) = (submit.await.unwrap(), reclaim.await.unwrap());
        let sample = c["sample"]["id"].as_str().unwrap().to_string();
        let labels_of_sample = app
            .get(&format!("/v1/queues/{q}/labels?sample_id={sample}"), &admin)
            .await
            .expect(StatusCode::OK)["items"]
            .as_array()
            .unwrap()
            .len();
        match s.status {
            StatusCode::CREATED => {
                assert_eq!(n, 0, "round {i}: submitted and reclaimed");
                assert_eq!(labels_of_sample, 1);
            }
            StatusCode::CONFLICT => {
                assert_eq!(n, 1, "round {i}: conflict without a reclaim");
                assert_eq!(labels_of_sample, 0);
                // the sample is claimable again, exactly once
                let again = app.claim(&q, &labeler("t1", &format!("next{i}"))).await.expect(StatusCode::OK);
                assert_eq!(again["sample"]["id"].as_str(), Some(sample.as_str()));
                let a2 = assignment_id(&again);
                app.post(
                    "/v1/labels",
                    &labeler("t1", &format!("next{i}")),
                    json!({"assignment_id": a2, "payload": {"label": "b"}}),
                )
                .await
                .expect(StatusCode::CREATED);
            }
            other => panic!("round {i}: unexpected {other}: {}", s.body),
        }
    }
    let stats = app.get(&format!("/v1/queues/{q}/stats"), &admin).await.expect(StatusCode::OK);
    assert_eq!(stats["completed_samples"].as_i64(), Some(rounds as i64));
    assert_eq!(stats["submitted"].as_i64(), Some(rounds as i64));
}

async fn a_paused_queue_hands_out_nothing(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "q", 1, simple_schema()).await;
    app.samples(&admin, &q, 5).await;
    app.patch(&format!("/v1/queues/{q}"), &admin, json!({"state": "paused"})).await.expect(StatusCode::OK);
    assert_eq!(app.claim(&q, &labeler("t1", "ann")).await.status, StatusCode::NO_CONTENT);
    app.patch(&format!("/v1/queues/{q}"), &admin, json!({"state": "active"})).await.expect(StatusCode::OK);
    assert_eq!(app.claim(&q, &labeler("t1", "ann")).await.status, StatusCode::OK);
}

async fn overlap_gives_each_sample_k_labels_from_distinct_labelers(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "q", 3, simple_schema()).await;
    app.samples(&admin, &q, 10).await;
    for name in ["a", "b", "c", "d"] {
        let tok = labeler("t1", name);
        loop {
            let r = app.claim(&q, &tok).await;
            if r.status == StatusCode::NO_CONTENT {
                break;
            }
            let c = r.expect(StatusCode::OK);
            app.post(
                "/v1/labels",
                &tok,
                json!({"assignment_id": assignment_id(&c), "payload": {"label": "a"}}),
            )
            .await
            .expect(StatusCode::CREATED);
        }
    }
    let labels = app.all_labels(&q, &admin).await;
    assert_eq!(labels.len(), 30);
    let mut per: HashMap<String, HashSet<String>> = HashMap::new();
    for l in &labels {
        per.entry(l["sample_id"].as_str().unwrap().into())
            .or_default()
            .insert(l["labeler"].as_str().unwrap().into());
    }
    assert!(per.values().all(|s| s.len() == 3));
    let stats = app.get(&format!("/v1/queues/{q}/stats"), &admin).await.expect(StatusCode::OK);
    assert_eq!(
        (stats["completed_samples"].as_i64(), stats["remaining_samples"].as_i64()),
        (Some(10), Some(0))
    );
}

async fn labels_paginate_with_a_cursor_and_auditors_review_them(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "q", 1, simple_schema()).await;
    app.samples(&admin, &q, 7).await;
    let ann = labeler("t1", "ann");
    for _ in 0..7 {
        let c = app.claim(&q, &ann).await.expect(StatusCode::OK);
        app.post("/v1/labels", &ann, json!({"assignment_id": assignment_id(&c), "payload": {"label": "a"}}))
            .await
            .expect(StatusCode::CREATED);
    }
    let p1 = app.get(&format!("/v1/queues/{q}/labels?limit=3"), &admin).await.expect(StatusCode::OK);
    assert_eq!(p1["items"].as_array().unwrap().len(), 3);
    let c = p1["next_cursor"].as_str().unwrap();
    let p2 =
        app.get(&format!("/v1/queues/{q}/labels?limit=3&cursor={c}"), &admin).await.expect(StatusCode::OK);
    let c = p2["next_cursor"].as_str().unwrap();
    let p3 =
        app.get(&format!("/v1/queues/{q}/labels?limit=3&cursor={c}"), &admin).await.expect(StatusCode::OK);
    assert_eq!(p3["items"].as_array().unwrap().len(), 1);
    assert!(p3["next_cursor"].is_null());
    let ids: HashSet<&str> = [&p1, &p2, &p3]
        .iter()
        .flat_map(|p| p["items"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()))
        .collect();
    assert_eq!(ids.len(), 7);
    app.get(&format!("/v1/queues/{q}/labels?cursor=garbage"), &admin)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "bad_request");
    app.get(&format!("/v1/queues/{q}/labels?limit=0"), &admin)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "bad_request");

    let label = p1["items"][0]["id"].as_str().unwrap();
    let aud = auditor("t1");
    app.post(&format!("/v1/labels/{label}/review"), &aud, json!({"verdict": "reject"}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    app.post(
        &format!("/v1/labels/{label}/review"),
        &aud,
        json!({"verdict": "reject", "comment": "wrong class"}),
    )
    .await
    .expect(StatusCode::CREATED);
    let l = app.get(&format!("/v1/labels/{label}"), &aud).await.expect(StatusCode::OK);
    assert_eq!(l["reviews"][0]["verdict"], "reject");
    assert_eq!(l["reviews"][0]["comment"], "wrong class");
    // labelers cannot review
    app.post(&format!("/v1/labels/{label}/review"), &ann, json!({"verdict": "accept"}))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
}

async fn a_labeler_reads_only_its_own_labels(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "q", 1, simple_schema()).await;
    app.samples(&admin, &q, 2).await;
    let ann = labeler("t1", "ann");
    let bob = labeler("t1", "bob");
    let mut label_ids = Vec::new();
    for tok in [&ann, &bob] {
        let c = app.claim(&q, tok).await.expect(StatusCode::OK);
        let l = app
            .post("/v1/labels", tok, json!({"assignment_id": assignment_id(&c), "payload": {"label": "a"}}))
            .await;
        label_ids.push(l.expect(StatusCode::CREATED)["id"].as_str().unwrap().to_string());
    }
    app.get(&format!("/v1/labels/{}", label_ids[1]), &ann)
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    let mine = app.get(&format!("/v1/queues/{q}/labels"), &ann).await.expect(StatusCode::OK);
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert_eq!(mine["items"][0]["labeler"], "ann");
}

async fn personal_access_tokens_work_until_revoked(app: TestApp) {
    let admin = admin("t1");
    let r = app
        .post("/v1/tokens", &admin, json!({"name": "importer", "role": "admin"}))
        .await
        .expect(StatusCode::CREATED);
    let pat = r["token"].as_str().unwrap().to_string();
    assert!(pat.starts_with("anvil_pat_"));
    let id = r["info"]["id"].as_str().unwrap().to_string();
    let me = app.get("/v1/me", &pat).await.expect(StatusCode::OK);
    assert_eq!(
        (me["tenant_id"].as_str(), me["role"].as_str(), me["auth"].as_str()),
        (Some("t1"), Some("admin"), Some("pat"))
    );
    app.queue(&pat, "made by pat", 1, simple_schema()).await;
    let list = app.get("/v1/tokens", &admin).await.expect(StatusCode::OK);
    assert!(list.to_string().find(&pat).is_none(), "the secret must never be listed");
    app.call(Method::DELETE, &format!("/v1/tokens/{id}"), Some(&admin), None).await.expect(StatusCode::OK);
    app.get("/v1/me", &pat).await.expect_error(StatusCode::UNAUTHORIZED, "unauthorized");
    // a labeler-scoped token cannot create queues
    let r = app
        .post("/v1/tokens", &admin, json!({"name": "l", "role": "labeler"}))
        .await
        .expect(StatusCode::CREATED);
    app.post("/v1/queues", r["token"].as_str().unwrap(), json!({"name": "x", "schema": simple_schema()}))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
}

async fn concurrent_labelers_never_break_the_invariants(app: TestApp) {
    let admin = admin("t1");
    let samples = app.scale(2000);
    for (round, overlap) in [(0, 1), (1, 3), (2, 1), (3, 3)] {
        let q = app.queue(&admin, &format!("race{round}"), overlap, simple_schema()).await;
        app.samples(&admin, &q, samples).await;
        let mut tasks = Vec::new();
        for l in 0..32 {
            let app = app.clone();
            let q = q.clone();
            tasks.push(tokio::spawn(async move {
                let tok = labeler("t1", &format!("l{l}"));
                let mut done = 0usize;
                loop {
                    let r = app.claim(&q, &tok).await;
                    if r.status == StatusCode::NO_CONTENT {
                        return done;
                    }
                    let c = r.expect(StatusCode::OK);
                    // every 50th claim is skipped, exercising release under load
                    if done % 50 == 49 && l % 4 == 0 {
                        let a = assignment_id(&c);
                        app.post(&format!("/v1/assignments/{a}/release"), &tok, json!({"reason": "skip"}))
                            .await
                            .expect(StatusCode::OK);
                        done += 1;
                        continue;
                    }
                    let s = app
                        .post(
                            "/v1/labels",
                            &tok,
                            json!({"assignment_id": assignment_id(&c), "payload": {"label": "a"}}),
                        )
                        .await;
                    assert_eq!(s.status, StatusCode::CREATED, "{}", s.body);
                    done += 1;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let labels = app.all_labels(&q, &admin).await;
        let mut per: HashMap<String, Vec<String>> = HashMap::new();
        for l in &labels {
            per.entry(l["sample_id"].as_str().unwrap().into())
                .or_default()
                .push(l["labeler"].as_str().unwrap().into());
        }
        assert_eq!(per.len(), samples, "round {round}: every sample labeled");
        for (s, ls) in &per {
            let distinct: HashSet<&String> = ls.iter().collect();
            assert_eq!(ls.len(), overlap as usize, "round {round}: sample {s} has {} labels", ls.len());
            assert_eq!(distinct.len(), ls.len(), "round {round}: sample {s} labeled twice by one labeler");
        }
        let stats = app.get(&format!("/v1/queues/{q}/stats"), &admin).await.expect(StatusCode::OK);
        assert_eq!(stats["leased"], 0, "round {round}: leases left behind");
        assert_eq!(stats["completed_samples"].as_i64(), Some(samples as i64));
    }
}

async fn queue_admin_routes_need_the_admin_role(app: TestApp) {
    let ann = labeler("t1", "ann");
    app.post("/v1/queues", &ann, json!({"name": "x", "schema": simple_schema()}))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    let aud = token("t1", "aud", Role::Auditor);
    app.post("/v1/queues", &aud, json!({"name": "x", "schema": simple_schema()}))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
}

async fn queue_statistics_count_every_labeler_and_state(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "stats", 2, simple_schema()).await;
    app.samples(&admin, &q, 4).await;
    let submit = |a: String, who: String| {
        let app = &app;
        async move {
            app.post("/v1/labels", &who, json!({"assignment_id": a, "payload": {"label": "a"}}))
                .await
                .expect(StatusCode::CREATED);
        }
    };
    // ann: two labels and a live lease; bob: one label and a release; cy: a lease reclaimed after its expiry;
    // dee: a lease past its expiry, not reclaimed yet
    let (ann, bob, cy, dee) =
        (labeler("t1", "ann"), labeler("t1", "bob"), labeler("t1", "cy"), labeler("t1", "dee"));
    for _ in 0..2 {
        let c = app.claim(&q, &ann).await.expect(StatusCode::OK);
        submit(assignment_id(&c), ann.clone()).await;
    }
    app.claim(&q, &ann).await.expect(StatusCode::OK);
    let c = app.claim(&q, &bob).await.expect(StatusCode::OK);
    submit(assignment_id(&c), bob.clone()).await;
    let c = app.claim(&q, &bob).await.expect(StatusCode::OK);
    app.post(&format!("/v1/assignments/{}/release", assignment_id(&c)), &bob, json!({"reason": "skip"}))
        .await
        .expect(StatusCode::OK);
    let c = app.claim(&q, &cy).await.expect(StatusCode::OK);
    app.expire_lease(&assignment_id(&c)).await;
    assert_eq!(app.store.reclaim_expired(100).await.unwrap(), 1);
    let c = app.claim(&q, &dee).await.expect(StatusCode::OK);
    app.expire_lease(&assignment_id(&c)).await;

    let stats = app.get(&format!("/v1/queues/{q}/stats"), &admin).await.expect(StatusCode::OK);
    // overlap 2: a sample is complete with two labels; ann's first two samples got one label each from ann,
    // and bob's first claim got ann's first sample (the lowest one with an open slot bob has not seen)
    assert_eq!(stats["total_samples"], 4);
    assert_eq!(stats["completed_samples"], 1, "{stats}");
    assert_eq!(stats["remaining_samples"], 3);
    assert_eq!(stats["submitted"], 3);
    assert_eq!(stats["leased"], 1);
    assert_eq!(stats["expired_unreclaimed"], 1);
    let per: Vec<(String, i64, i64, i64)> = stats["per_labeler"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["labeler"].as_str().unwrap().to_string(),
                r["submitted"].as_i64().unwrap(),
                r["leased"].as_i64().unwrap(),
                r["released"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        per,
        vec![
            ("ann".to_string(), 2, 1, 0),
            ("bob".to_string(), 1, 0, 1),
            ("cy".to_string(), 0, 0, 0),
            ("dee".to_string(), 0, 1, 0),
        ]
    );
}

conformance!(
    queue_statistics_count_every_labeler_and_state,
    a_queue_is_created_listed_and_patched_with_a_new_schema_version,
    samples_are_idempotent_by_external_id,
    claim_returns_the_live_lease_again_and_the_sample_with_its_schema,
    submit_is_idempotent_and_a_different_payload_is_a_conflict,
    an_invalid_label_is_rejected_with_pointers_and_nothing_is_written,
    a_released_sample_is_never_offered_to_that_labeler_again,
    slots_freed_behind_the_claims_are_handed_out_next,
    heartbeat_extends_the_lease,
    an_expired_lease_goes_back_to_the_pool_and_a_late_submit_is_a_conflict,
    a_late_submit_wins_while_the_expired_lease_is_not_yet_reclaimed,
    reclaim_racing_a_late_submit_has_exactly_one_outcome,
    a_paused_queue_hands_out_nothing,
    overlap_gives_each_sample_k_labels_from_distinct_labelers,
    labels_paginate_with_a_cursor_and_auditors_review_them,
    a_labeler_reads_only_its_own_labels,
    personal_access_tokens_work_until_revoked,
    concurrent_labelers_never_break_the_invariants,
    queue_admin_routes_need_the_admin_role,
);

/// Postgres only. On a new database, autovacuum's first ANALYZE of `assignments` comes while it holds a handful
/// of rows; the hot path's cached plans are then made for a one-page table, where a sequential scan is the
/// cheapest plan, and they would keep reading the whole growing table on every claim and every submit until
/// the next ANALYZE (a minute or more later). Claims and submits must find assignments through their indexes
/// whatever the statistics say.
#[sqlx::test(migrator = "anvil_core::store::postgres::MIGRATOR")]
async fn on_a_new_database_claims_and_submits_never_scan_assignments(pool: sqlx::PgPool) {
    let app = TestApp::postgres(pool.clone()).await;
    let admin = admin("t1");
    let q = app.queue(&admin, "q", 1, simple_schema()).await;
    app.samples(&admin, &q, 200).await;
    let ann = labeler("t1", "ann");
    let label_one = || async {
        let c = app.claim(&q, &ann).await.expect(StatusCode::OK);
        let a = assignment_id(&c);
        app.post("/v1/labels", &ann, json!({"assignment_id": a, "payload": {"label": "a"}}))
            .await
            .expect(StatusCode::CREATED);
    };
    for _ in 0..5 {
        label_one().await;
    }
    // what autovacuum does early on a new database
    sqlx::query("ANALYZE assignments, labels, samples").execute(&pool).await.unwrap();
    let scans = || async {
        // backends publish their statistics within about a second of going idle
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let n: i64 = sqlx::query_scalar(
            "SELECT coalesce(seq_scan, 0) FROM pg_stat_user_tables WHERE relname = 'assignments'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        n
    };
    let before = scans().await;
    for _ in 0..40 {
        label_one().await;
    }
    let after = scans().await;
    assert_eq!(after - before, 0, "sequential scans of assignments during 40 claims and submits");
}

/// The pool no longer pings a connection it used moments ago before handing it out again. When Postgres drops
/// the app's connections (a restart, a failover, an administrator), a request on a dead connection is
/// answered 503 with the envelope — never a 500 — and nothing it acknowledged is lost; the pool replaces
/// the connection and the labeling carries on.
#[sqlx::test(migrator = "anvil_core::store::postgres::MIGRATOR")]
async fn dropped_database_connections_answer_503_then_recover(pool: sqlx::PgPool) {
    let app = TestApp::postgres(pool.clone()).await;
    let admin = admin("t1");
    let q = app.queue(&admin, "q", 1, simple_schema()).await;
    app.samples(&admin, &q, 30).await;
    let ann = labeler("t1", "ann");
    let mut acknowledged = 0;
    for round in 0..5 {
        // warm: the pool holds live connections used a moment ago
        let c = app.claim(&q, &ann).await.expect(StatusCode::OK);
        let a = assignment_id(&c);
        app.post("/v1/labels", &ann, json!({"assignment_id": a, "payload": {"label": "a"}}))
            .await
            .expect(StatusCode::CREATED);
        acknowledged += 1;
        let killed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND usename = current_user AND pid <> pg_backend_pid()
               AND backend_type = 'client backend') k",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(killed >= 1, "round {round}: no app connection to drop");
        // pg_terminate_backend only signals: give the backends time to be gone
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        // every request answers 200/201 or 503, and within a few tries the loop goes on
        let mut claimed = None;
        for _ in 0..45 {
            let r = app.claim(&q, &ann).await;
            match r.status {
                StatusCode::OK => {
                    claimed = Some(assignment_id(&r.body));
                    break;
                }
                StatusCode::SERVICE_UNAVAILABLE => {
                    r.expect_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable")
                }
                s => panic!("round {round}: claim after dropped connections answered {s}: {}", r.body),
            }
        }
        let a = claimed.expect("no claim answered within 45 tries after the connections were dropped");
        let mut submitted = false;
        for _ in 0..45 {
            let r =
                app.post("/v1/labels", &ann, json!({"assignment_id": a, "payload": {"label": "b"}})).await;
            match r.status {
                StatusCode::CREATED | StatusCode::OK => {
                    submitted = true;
                    break;
                }
                StatusCode::SERVICE_UNAVAILABLE => {
                    r.expect_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable")
                }
                s => panic!("round {round}: submit after dropped connections answered {s}: {}", r.body),
            }
        }
        assert!(submitted, "no submit answered within 45 tries");
        acknowledged += 1;
    }
    let labels = app.all_labels(&q, &admin).await;
    assert_eq!(labels.len(), acknowledged, "every acknowledged label is stored, once");
}
