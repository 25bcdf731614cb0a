//! Quality control through the HTTP router, on both stores: the agreement report of a queue.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use std::collections::HashMap;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};

fn quality_schema() -> Value {
    json!({"fields": [
        {"name": "sentiment", "kind": "single_choice", "options": ["pos", "neg", "neu"]},
        {"name": "stars", "kind": "rating", "max": 5},
        {"name": "tags", "kind": "multi_choice", "options": ["x", "y", "z"], "required": false},
        {"name": "ents", "kind": "span", "source": "text", "labels": ["NUM"], "required": false},
        {"name": "note", "kind": "text", "required": false}
    ]})
}

/// Each labeler claims and labels every sample it is offered; `answer(labeler, external_id)` gives the
/// payload. Answers label ids by (labeler, external id).
async fn label_all(
    app: &TestApp,
    q: &str,
    labelers: &[&str],
    answer: impl Fn(&str, &str) -> Value,
) -> HashMap<(String, String), String> {
    let mut ids = HashMap::new();
    for name in labelers {
        let tok = labeler("t1", name);
        loop {
            let c = app.claim(q, &tok).await;
            if c.status == StatusCode::NO_CONTENT {
                break;
            }
            let c = c.expect(StatusCode::OK);
            let ext = c["sample"]["external_id"].as_str().unwrap().to_string();
            let body = json!({"assignment_id": assignment_id(&c), "payload": answer(name, &ext)});
            let l = app.post("/v1/labels", &tok, body).await.expect(StatusCode::CREATED);
            ids.insert((name.to_string(), ext), l["id"].as_str().unwrap().to_string());
        }
    }
    ids
}

fn field<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["fields"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap()
}

fn measure(f: &Value, name: &str) -> Option<f64> {
    f["measures"].as_array().unwrap().iter().find(|m| m["name"] == name).unwrap()["value"].as_f64()
}

#[track_caller]
fn close(got: Option<f64>, want: f64) {
    let got = got.expect("a value");
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
}

async fn the_quality_report_measures_agreement_per_field_and_labeler(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "judged", 2, quality_schema()).await;
    app.samples(&admin, &q, 6).await;
    // ann and bob agree on sentiment except s00005 (neu vs pos); ratings one apart on two samples.
    let ids = label_all(&app, &q, &["ann", "bob"], |who, ext| {
        let i: usize = ext[1..].parse().unwrap();
        let sentiment = match (i, who) {
            (0 | 1, _) => "pos",
            (2 | 3, _) => "neg",
            (4, _) | (5, "ann") => "neu",
            _ => "pos",
        };
        let stars = 1 + i as i64 % 5 + i64::from(who == "bob" && i.is_multiple_of(3));
        // "sample number {i} text": the digit is token 2, at 14..15.
        let ents = if who == "ann" || i.is_multiple_of(2) {
            json!([{"start": 14, "end": 15, "label": "NUM"}])
        } else {
            json!([])
        };
        json!({"sentiment": sentiment, "stars": stars, "tags": ["x"], "ents": ents, "note": "free text"})
    })
    .await;
    assert_eq!(ids.len(), 12);

    let r = app.get(&format!("/v1/queues/{q}/quality"), &auditor("t1")).await.expect(StatusCode::OK);
    assert_eq!(
        (r["labels"].as_u64(), r["samples"].as_u64(), r["samples_multiply_labeled"].as_u64()),
        (Some(12), Some(6), Some(6))
    );
    assert_eq!(r["overlap"], 2);

    // Worked by hand: 12 pairable values (pos 5, neg 4, neu 3), one disagreeing unit.
    // α = 1 − (2/12) / (94/132) = 36/47; Fleiss κ = (5/6 − 50/144) / (1 − 50/144) = 35/47;
    // Cohen's κ (ann, bob) = (5/6 − 1/3) / (2/3) = 3/4.
    let s = field(&r, "sentiment");
    assert_eq!(s["measure"], "krippendorff_alpha_nominal");
    close(s["value"].as_f64(), 36.0 / 47.0);
    close(measure(s, "fleiss_kappa"), 35.0 / 47.0);
    close(measure(s, "mean_cohen_kappa"), 0.75);
    close(measure(s, "percent_agreement"), 5.0 / 6.0);
    assert_eq!(s["pairs"][0]["a"], "ann");
    assert_eq!(s["pairs"][0]["b"], "bob");
    close(s["pairs"][0]["cohen_kappa"].as_f64(), 0.75);
    assert!(s["reading"].as_str().unwrap().len() > 5, "{s}");
    let conf = &s["confusion"];
    assert_eq!(conf["values"], json!(["pos", "neg", "neu"]));
    // Coincidences: (pos,pos) 4, (neu,pos) 1 and (pos,neu) 1.
    assert_eq!(conf["counts"][0][0], 4.0);
    assert_eq!(conf["counts"][2][0], 1.0);
    assert_eq!(conf["counts"][0][2], 1.0);

    let stars = field(&r, "stars");
    assert_eq!(stars["measure"], "krippendorff_alpha_ordinal");
    assert!(measure(stars, "krippendorff_alpha_interval").is_some());
    // Every label has tags ["x"]: no variation, so α is undefined and says why.
    let tags = field(&r, "tags");
    assert_eq!(tags["value"], Value::Null);
    assert!(tags["why"].as_str().unwrap().contains("same value"), "{tags}");
    assert_eq!(tags["options"].as_array().unwrap().len(), 3);
    let ents = field(&r, "ents");
    assert_eq!(ents["measure"], "span_f1_overlap");
    // ann marks the digit on all 6, bob on the 3 even ones: 3 matches on each side of 9 spans.
    close(ents["value"].as_f64(), 6.0 / 9.0);
    assert!(measure(ents, "token_alpha_nominal").is_some());
    let note = field(&r, "note");
    assert_eq!(note["measure"], Value::Null);
    assert!(note["why"].as_str().unwrap().contains("free text"));

    let ann = r["labelers"].as_array().unwrap().iter().find(|l| l["labeler"] == "ann").unwrap();
    assert_eq!(ann["labels"], 6);
    let ann_sentiment = ann["fields"].as_array().unwrap().iter().find(|f| f["field"] == "sentiment").unwrap();
    close(ann_sentiment["agreement_with_others"].as_f64(), 5.0 / 6.0);

    // An auditor rejects bob's label on the disagreeing sample: it no longer counts.
    let bad = &ids[&("bob".to_string(), "s00005".to_string())];
    app.post(
        &format!("/v1/labels/{bad}/review"),
        &auditor("t1"),
        json!({"verdict": "reject", "comment": "sentiment is neutral"}),
    )
    .await
    .expect(StatusCode::CREATED);
    let r = app.get(&format!("/v1/queues/{q}/quality"), &admin).await.expect(StatusCode::OK);
    assert_eq!((r["labels"].as_u64(), r["samples_multiply_labeled"].as_u64()), (Some(11), Some(5)));
    close(field(&r, "sentiment")["value"].as_f64(), 1.0);
    // Accepted again later: the latest review decides.
    app.post(&format!("/v1/labels/{bad}/review"), &auditor("t1"), json!({"verdict": "accept"}))
        .await
        .expect(StatusCode::CREATED);
    let r = app.get(&format!("/v1/queues/{q}/quality"), &admin).await.expect(StatusCode::OK);
    assert_eq!(r["labels"], 12);
}

async fn the_quality_report_is_for_auditors_and_admins_of_the_tenant(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "q", 2, simple_schema()).await;
    // An empty queue: every field listed with no value and why.
    let r = app.get(&format!("/v1/queues/{q}/quality"), &admin).await.expect(StatusCode::OK);
    assert_eq!(r["labels"], 0);
    let f = &r["fields"][0];
    assert_eq!((f["name"].as_str(), f["value"].as_f64()), (Some("label"), None));
    assert!(f["why"].is_string());
    app.get(&format!("/v1/queues/{q}/quality"), &labeler("t1", "ann"))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    // Another tenant's queue does not exist for this caller.
    app.get(&format!("/v1/queues/{q}/quality"), &auditor("t2"))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    app.get("/v1/queues/0190a0a0-0000-7000-8000-000000000000/quality", &admin)
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    app.get("/v1/queues/not-a-uuid/quality", &admin).await.expect_error(StatusCode::NOT_FOUND, "not_found");
}

conformance!(
    the_quality_report_measures_agreement_per_field_and_labeler,
    the_quality_report_is_for_auditors_and_admins_of_the_tenant,
);
