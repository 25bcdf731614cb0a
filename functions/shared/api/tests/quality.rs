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

fn gold_schema() -> Value {
    json!({"fields": [
        {"name": "sentiment", "kind": "single_choice", "options": ["pos", "neg"]},
        {"name": "note", "kind": "text", "required": false}
    ]})
}

/// The known answer of gold item `g{i}`.
fn gold_answer(ext: &str) -> &'static str {
    if ext.ends_with(['1', '3']) { "pos" } else { "neg" }
}

/// Claims and submits until the queue has nothing left (None) or the claim is refused (the error).
/// `right` says whether the labeler gets gold items right. Answers the external ids claimed, in order.
async fn work(app: &TestApp, q: &str, who: &str, right: bool) -> (Vec<String>, Option<Value>) {
    let tok = labeler("t1", who);
    let mut seen = Vec::new();
    loop {
        let c = app.claim(q, &tok).await;
        if c.status == StatusCode::NO_CONTENT {
            return (seen, None);
        }
        if c.status == StatusCode::FORBIDDEN {
            return (seen, Some(c.body));
        }
        let c = c.expect(StatusCode::OK);
        // A gold answer never reaches a labeler.
        assert!(!c.to_string().contains("answer"), "{c}");
        let ext = c["sample"]["external_id"].as_str().unwrap().to_string();
        let sentiment = match (ext.starts_with('g'), right) {
            (true, true) => gold_answer(&ext),
            (true, false) if gold_answer(&ext) == "pos" => "neg",
            _ => "pos",
        };
        let body = json!({"assignment_id": assignment_id(&c), "payload": {"sentiment": sentiment}});
        app.post("/v1/labels", &tok, body).await.expect(StatusCode::CREATED);
        seen.push(ext);
    }
}

async fn gold_samples_are_served_once_each_scored_and_guard_the_queue(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "checked", 1, gold_schema()).await;
    app.samples(&admin, &q, 30).await;
    let gold_path = format!("/v1/queues/{q}/gold");
    let item = |i: usize, answer: Value| json!({"external_id": format!("g{i}"), "payload": {"text": format!("check {i}")}, "answer": answer});

    // Bad answers: 422 per field, nothing written.
    let r = app.post(&gold_path, &admin, json!({"items": [item(1, json!({"sentiment": "pos"})), item(2, json!({"sentiment": "meh", "nope": 1}))]})).await;
    r.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let pointers: Vec<&str> = r.body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["pointer"].as_str().unwrap())
        .collect();
    assert!(
        pointers.contains(&"/items/1/answer/sentiment") && pointers.contains(&"/items/1/answer/nope"),
        "{pointers:?}"
    );
    assert_eq!(app.get(&gold_path, &admin).await.expect(StatusCode::OK)["items"], json!([]));
    app.post(&gold_path, &admin, json!({"items": [item(1, json!({}))]}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    // g1 first with a wrong answer, corrected below.
    let items: Vec<Value> = (1..=4)
        .map(|i| item(i, json!({"sentiment": if i == 1 { "neg" } else { gold_answer(&format!("g{i}")) }})))
        .collect();
    let r = app.post(&gold_path, &admin, json!({"items": items})).await.expect(StatusCode::OK);
    assert_eq!((r["created"].as_i64(), r["updated"].as_i64()), (Some(4), Some(0)));
    // The same external id again replaces its answer.
    let r = app
        .post(&gold_path, &admin, json!({"items": [item(1, json!({"sentiment": "pos"}))]}))
        .await
        .expect(StatusCode::OK);
    assert_eq!((r["created"].as_i64(), r["updated"].as_i64()), (Some(0), Some(1)));
    // An ordinary sample's external id cannot become gold.
    app.post(&gold_path, &admin, json!({"items": [item(0, json!({"sentiment": "pos"})).as_object().unwrap().clone().into_iter().map(|(k, v)| if k == "external_id" { (k, json!("s00000")) } else { (k, v) }).collect::<serde_json::Map<_, _>>()]}))
        .await
        .expect_error(StatusCode::CONFLICT, "not_gold");
    let list = app.get(&gold_path, &auditor("t1")).await.expect(StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 4);
    assert_eq!(list["items"][0]["answer"], json!({"sentiment": "pos"}));
    // Labelers see none of it; another tenant finds nothing.
    app.get(&gold_path, &labeler("t1", "good")).await.expect_error(StatusCode::FORBIDDEN, "forbidden");
    app.get(&format!("{gold_path}/settings"), &labeler("t1", "good"))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    app.get(&gold_path, &common::admin("t2")).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    app.post(&gold_path, &common::admin("t2"), json!({"items": [item(9, json!({"sentiment": "pos"}))]}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");

    // Settings: checked, then one claim in two is gold and two wrong gold answers stop a labeler.
    let settings = format!("{gold_path}/settings");
    assert_eq!(
        app.get(&settings, &admin).await.expect(StatusCode::OK),
        json!({"rate": 0.0, "floor": null, "exempt": []})
    );
    app.call(axum::http::Method::PUT, &settings, Some(&admin), Some(json!({"rate": 0.9})))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let s = json!({"rate": 0.5, "floor": {"min_accuracy": 0.75, "after": 2}, "exempt": []});
    assert_eq!(
        app.call(axum::http::Method::PUT, &settings, Some(&admin), Some(s.clone()))
            .await
            .expect(StatusCode::OK),
        s
    );

    let (bad_seen, refused) = work(&app, &q, "bad", false).await;
    let refused = refused.expect("the floor stops a labeler who gets the gold wrong");
    assert_eq!(refused["error"]["code"], "below_gold_floor", "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("75 %"));
    assert_eq!(bad_seen.iter().filter(|e| e.starts_with('g')).count(), 2, "{bad_seen:?}");

    let (good_seen, refused) = work(&app, &q, "good", true).await;
    assert!(refused.is_none());
    let gold_seen: Vec<&String> = good_seen.iter().filter(|e| e.starts_with('g')).collect();
    assert_eq!(gold_seen.len(), 4, "each gold sample once: {good_seen:?}");
    let mut unique = gold_seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4);
    assert_eq!(good_seen.len() + bad_seen.len(), 30 + 4 + 2, "every ordinary sample once, gold per labeler");

    // Gold samples are not queue progress; their labels are scored, not measured for agreement.
    let stats = app.get(&format!("/v1/queues/{q}/stats"), &admin).await.expect(StatusCode::OK);
    assert_eq!((stats["total_samples"].as_i64(), stats["completed_samples"].as_i64()), (Some(30), Some(30)));
    let r = app.get(&format!("/v1/queues/{q}/quality"), &auditor("t1")).await.expect(StatusCode::OK);
    assert_eq!(r["labels"], 30);
    let who = |n: &str| r["labelers"].as_array().unwrap().iter().find(|l| l["labeler"] == n).unwrap().clone();
    let good = who("good");
    assert_eq!(
        (good["gold"]["items"].as_u64(), good["gold"]["accuracy"].as_f64()),
        (Some(4), Some(1.0)),
        "{good}"
    );
    assert_eq!((good["gold"]["scored"].as_u64(), good["gold"]["correct"].as_u64()), (Some(4), Some(4)));
    let bad = who("bad");
    assert_eq!(
        (bad["gold"]["correct"].as_u64(), bad["gold"]["below_floor"].as_bool()),
        (Some(0), Some(true)),
        "{bad}"
    );

    // An admin's exemption lets the labeler claim again (at once on this process).
    let s = json!({"rate": 0.5, "floor": {"min_accuracy": 0.75, "after": 2}, "exempt": ["bad"]});
    app.call(axum::http::Method::PUT, &settings, Some(&admin), Some(s)).await.expect(StatusCode::OK);
    let c = app.claim(&q, &labeler("t1", "bad")).await;
    assert!(c.status == StatusCode::OK || c.status == StatusCode::NO_CONTENT, "{:?}", c.body);
}

async fn a_released_or_expired_gold_lease_never_reaches_the_ordinary_claim(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "closed", 2, gold_schema()).await;
    app.samples(&admin, &q, 3).await;
    let items: Vec<Value> = (1..=2)
        .map(|i| json!({"external_id": format!("g{i}"), "payload": {"text": "t"}, "answer": {"sentiment": "pos"}}))
        .collect();
    app.post(&format!("/v1/queues/{q}/gold"), &admin, json!({"items": items})).await.expect(StatusCode::OK);
    app.call(
        axum::http::Method::PUT,
        &format!("/v1/queues/{q}/gold/settings"),
        Some(&admin),
        Some(json!({"rate": 0.5})),
    )
    .await
    .expect(StatusCode::OK);
    // carl takes leases until both gold samples came up: releases one, lets the other expire.
    let carl = labeler("t1", "carl");
    let mut gold = Vec::new();
    // Past the ordinary samples a claim is gold one time in two, else 204: ask again.
    for _ in 0..200 {
        if gold.len() == 2 {
            break;
        }
        let c = app.claim(&q, &carl).await;
        if c.status == StatusCode::NO_CONTENT {
            continue;
        }
        let c = c.expect(StatusCode::OK);
        let a = assignment_id(&c);
        if c["sample"]["external_id"].as_str().unwrap().starts_with('g') {
            gold.push(a.clone());
            if gold.len() == 1 {
                app.post(&format!("/v1/assignments/{a}/release"), &carl, json!({"reason": "skip"}))
                    .await
                    .expect(StatusCode::OK);
            } else {
                app.expire_lease(&a).await;
            }
            continue;
        }
        app.post(&format!("/v1/assignments/{a}/release"), &carl, json!({"reason": "skip"}))
            .await
            .expect(StatusCode::OK);
    }
    assert_eq!(gold.len(), 2, "both gold samples were served to carl");
    // With gold off, the ordinary claim hands out only the 3 ordinary samples, twice each (overlap 2).
    app.call(
        axum::http::Method::PUT,
        &format!("/v1/queues/{q}/gold/settings"),
        Some(&admin),
        Some(json!({"rate": 0.0})),
    )
    .await
    .expect(StatusCode::OK);
    for who in ["dora", "eve"] {
        let (seen, refused) = work(&app, &q, who, true).await;
        assert!(refused.is_none());
        assert!(seen.iter().all(|e| e.starts_with('s')), "{who}: {seen:?}");
        assert_eq!(seen.len(), 3, "{who}: {seen:?}");
    }
}

/// Each of `labelers` claims every sample it is offered and answers `answer(labeler, external_id)`; `None`
/// releases the sample instead (it is never offered to that labeler again).
async fn label_by(app: &TestApp, q: &str, labelers: &[&str], answer: impl Fn(&str, &str) -> Option<Value>) {
    for who in labelers {
        let tok = labeler("t1", who);
        loop {
            let c = app.claim(q, &tok).await;
            if c.status == StatusCode::NO_CONTENT {
                break;
            }
            let c = c.expect(StatusCode::OK);
            let a = assignment_id(&c);
            match answer(who, c["sample"]["external_id"].as_str().unwrap()) {
                Some(payload) => {
                    let body = json!({"assignment_id": a, "payload": payload});
                    app.post("/v1/labels", &tok, body).await.expect(StatusCode::CREATED);
                }
                None => {
                    app.post(&format!("/v1/assignments/{a}/release"), &tok, json!({"reason": "skip"}))
                        .await
                        .expect(StatusCode::OK);
                }
            }
        }
    }
}

fn by_ext<'a>(list: &'a Value, ext: &str) -> &'a Value {
    list["items"].as_array().unwrap().iter().find(|i| i["external_id"] == ext).unwrap()
}

async fn final_labels_come_from_agreement_and_auditors_decide_the_rest(app: TestApp) {
    let admin = admin("t1");
    let aud = auditor("t1");
    let schema = json!({"fields": [
        {"name": "sentiment", "kind": "single_choice", "options": ["pos", "neg", "neu"]},
        {"name": "note", "kind": "text", "required": false}
    ]});
    let q = app.queue(&admin, "final", 3, schema).await;
    app.samples(&admin, &q, 4).await;
    // s00000 all pos; s00001 pos, pos, neg; s00002 pos, neg, pos→neu (a tie); s00003 only two labels.
    label_by(&app, &q, &["a", "b", "c"], |who, ext| {
        let v = match (ext, who) {
            ("s00003", "c") => return None,
            ("s00001", "c") | ("s00002", "b") => "neg",
            ("s00002", "c") => "neu",
            _ => "pos",
        };
        Some(json!({"sentiment": v}))
    })
    .await;
    let list = app.get(&format!("/v1/queues/{q}/final"), &aud).await.expect(StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 4);
    let s0 = by_ext(&list, "s00000");
    assert_eq!((s0["status"].as_str(), s0["method"].as_str()), (Some("final"), Some("unanimous")));
    assert_eq!(s0["answer"], json!({"sentiment": "pos"}));
    assert_eq!(s0["labels"].as_array().unwrap().len(), 3);
    let s1 = by_ext(&list, "s00001");
    assert_eq!((s1["status"].as_str(), s1["method"].as_str()), (Some("final"), Some("majority")));
    assert!((s1["agreement"]["sentiment"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
    let s2 = by_ext(&list, "s00002");
    assert_eq!(s2["status"], "adjudication");
    assert!(s2["reasons"][0].as_str().unwrap().contains("tie"), "{s2}");
    assert_eq!(by_ext(&list, "s00003")["status"], "incomplete");

    // The adjudication list, and a rule that sends low agreement there too.
    let waiting =
        app.get(&format!("/v1/queues/{q}/final?status=adjudication"), &aud).await.expect(StatusCode::OK);
    assert_eq!(waiting["items"].as_array().unwrap().len(), 1);
    let settings = format!("/v1/queues/{q}/final/settings");
    let put = |body: Value| app.call(axum::http::Method::PUT, &settings, Some(&admin), Some(body));
    put(json!({"adjudicate": [{"field": "nope", "when": "disagreement"}]}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    put(json!({"method": "majority", "adjudicate": [{"field": "sentiment", "when": "agreement_below", "threshold": 0.5}]}))
        .await
        .expect(StatusCode::OK);
    let waiting =
        app.get(&format!("/v1/queues/{q}/final?status=adjudication"), &aud).await.expect(StatusCode::OK);
    let ids: Vec<&str> =
        waiting["items"].as_array().unwrap().iter().map(|i| i["external_id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["s00001", "s00002"]);
    app.get(&format!("/v1/queues/{q}/final?status=bogus"), &aud)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "bad_request");
    app.get(&format!("/v1/queues/{q}/final"), &labeler("t1", "a"))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    app.get(&format!("/v1/queues/{q}/final"), &auditor("t2"))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");

    // Deciding: bad answers are 422 and write nothing; a label of the sample or a written answer decides.
    let s2_id = s2["sample_id"].as_str().unwrap();
    let decide = format!("/v1/queues/{q}/adjudications/{s2_id}");
    let r = app.post(&decide, &aud, json!({"answer": {"sentiment": "meh"}})).await;
    r.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["error"]["details"][0]["pointer"], "/answer/sentiment");
    app.post(&decide, &aud, json!({"label_id": s0["labels"][0]["label_id"]}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    app.post(&decide, &aud, json!({}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    app.post(&decide, &labeler("t1", "a"), json!({"answer": {"sentiment": "neu"}}))
        .await
        .expect_error(StatusCode::FORBIDDEN, "forbidden");
    app.post(
        &format!("/v1/queues/{q}/adjudications/{}", uuid::Uuid::now_v7()),
        &aud,
        json!({"answer": {"sentiment": "neu"}}),
    )
    .await
    .expect_error(StatusCode::NOT_FOUND, "not_found");
    let b_label =
        s2["labels"].as_array().unwrap().iter().find(|l| l["labeler"] == "b").unwrap()["label_id"].clone();
    let f = app.post(&decide, &aud, json!({"label_id": b_label})).await.expect(StatusCode::OK);
    assert_eq!(
        (f["status"].as_str(), f["method"].as_str(), f["decided_by"].as_str()),
        (Some("final"), Some("adjudicated"), Some("auditor"))
    );
    assert_eq!(f["answer"], json!({"sentiment": "neg"}));
    app.post(&decide, &aud, json!({"answer": {"sentiment": "neu"}}))
        .await
        .expect_error(StatusCode::CONFLICT, "not_waiting");
    let s0_id = s0["sample_id"].as_str().unwrap();
    app.post(&format!("/v1/queues/{q}/adjudications/{s0_id}"), &aud, json!({"answer": {"sentiment": "neu"}}))
        .await
        .expect_error(StatusCode::CONFLICT, "not_waiting");
    let s1_id = s1["sample_id"].as_str().unwrap();
    let f = app
        .post(
            &format!("/v1/queues/{q}/adjudications/{s1_id}"),
            &aud,
            json!({"answer": {"sentiment": "pos", "note": "checked"}}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(f["answer"], json!({"sentiment": "pos", "note": "checked"}));
    let list = app.get(&format!("/v1/queues/{q}/final?status=final"), &aud).await.expect(StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 3);

    // Reject -> relabel: rejecting a label opens one more slot, for a labeler who has not had the sample.
    let s0_c = s0["labels"].as_array().unwrap().iter().find(|l| l["labeler"] == "c").unwrap()["label_id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(&format!("/v1/labels/{s0_c}/review"), &aud, json!({"verdict": "reject", "comment": "careless"}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(
        by_ext(&app.get(&format!("/v1/queues/{q}/final"), &aud).await.expect(StatusCode::OK), "s00000")["status"],
        "incomplete"
    );
    assert_eq!(
        app.claim(&q, &labeler("t1", "a")).await.status,
        StatusCode::NO_CONTENT,
        "a had s00000 already"
    );
    let c = app.claim(&q, &labeler("t1", "d")).await.expect(StatusCode::OK);
    assert_eq!(c["sample"]["external_id"], "s00000");
    app.post(
        "/v1/labels",
        &labeler("t1", "d"),
        json!({"assignment_id": assignment_id(&c), "payload": {"sentiment": "pos"}}),
    )
    .await
    .expect(StatusCode::CREATED);
    let s0 = by_ext(&app.get(&format!("/v1/queues/{q}/final"), &aud).await.expect(StatusCode::OK), "s00000")
        .clone();
    assert_eq!((s0["status"].as_str(), s0["labels"].as_array().unwrap().len()), (Some("final"), 3));

    // Dawid–Skene decides the nominal field where labels differ.
    put(json!({"method": "dawid_skene"})).await.expect(StatusCode::OK);
    app.post(
        &format!("/v1/labels/{}/review", s1["labels"][0]["label_id"].as_str().unwrap()),
        &aud,
        json!({"verdict": "accept"}),
    )
    .await
    .expect(StatusCode::CREATED);
    let list = app.get(&format!("/v1/queues/{q}/final"), &aud).await.expect(StatusCode::OK);
    assert_eq!(by_ext(&list, "s00000")["method"], "unanimous");
    assert_eq!(by_ext(&list, "s00002")["method"], "adjudicated", "a decision stands whatever the method");
}

conformance!(
    the_quality_report_measures_agreement_per_field_and_labeler,
    the_quality_report_is_for_auditors_and_admins_of_the_tenant,
    gold_samples_are_served_once_each_scored_and_guard_the_queue,
    a_released_or_expired_gold_lease_never_reaches_the_ordinary_claim,
    final_labels_come_from_agreement_and_auditors_decide_the_rest,
);
