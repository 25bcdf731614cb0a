//! Exports, imports and the job table through the router and the worker, on both stores, with the local
//! blob directory and its signed links.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Labels `n` samples of a fresh queue (two labelers, overlap 1); returns the queue id.
async fn labeled_queue(app: &TestApp, admin: &str, n: usize, schema: Value) -> String {
    let q = app.queue(admin, "export me", 1, schema).await;
    app.samples(admin, &q, n).await;
    for i in 0..n {
        let tok = labeler("t1", if i % 2 == 0 { "ann" } else { "bob" });
        let c = app.claim(&q, &tok).await.expect(StatusCode::OK);
        let payload = json!({"label": if i % 3 == 0 { "a" } else { "b" }});
        app.post("/v1/labels", &tok, json!({"assignment_id": assignment_id(&c), "payload": payload}))
            .await
            .expect(StatusCode::CREATED);
    }
    q
}

/// Fetches a URL the API handed out (the local blob links are relative in tests).
async fn fetch(app: &TestApp, url: &str) -> (StatusCode, Vec<u8>) {
    let res = app.router.clone().oneshot_req(Request::get(url).body(Body::empty()).unwrap()).await;
    let status = res.status();
    (status, res.into_body().collect().await.unwrap().to_bytes().to_vec())
}

trait Oneshot {
    async fn oneshot_req(self, req: Request<Body>) -> axum::response::Response;
}

impl Oneshot for axum::Router {
    async fn oneshot_req(self, req: Request<Body>) -> axum::response::Response {
        use tower::ServiceExt;
        self.oneshot(req).await.unwrap()
    }
}

async fn export(app: &TestApp, admin: &str, q: &str, body: Value) -> Value {
    let e = app.post(&format!("/v1/queues/{q}/exports"), admin, body).await.expect(StatusCode::ACCEPTED);
    assert_eq!(e["state"], "pending");
    assert!(app.run_jobs().await >= 1);
    let id = e["id"].as_str().unwrap();
    app.get(&format!("/v1/exports/{id}"), admin).await.expect(StatusCode::OK)
}

async fn an_export_is_streamed_with_a_manifest_and_reruns_give_identical_bytes(app: TestApp) {
    let admin = admin("t1");
    let q = labeled_queue(&app, &admin, 120, simple_schema()).await;
    for format in ["jsonl", "csv"] {
        let e1 = export(&app, &admin, &q, json!({"format": format})).await;
        assert_eq!(e1["state"], "succeeded", "{e1}");
        assert_eq!(e1["rows"], 120);
        let (status, bytes) = fetch(&app, e1["download_url"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(bytes.len() as i64, e1["bytes"].as_i64().unwrap());
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            e1["sha256"].as_str().unwrap(),
            "sha256 of the downloaded bytes"
        );
        let m = &e1["manifest"];
        assert_eq!((m["rows"].as_i64(), m["schema_version"].as_i64()), (Some(120), Some(1)));
        assert_eq!(m["sha256"], e1["sha256"]);
        assert_eq!(m["schema_hash"].as_str().unwrap().len(), 64);
        if format == "jsonl" {
            let lines: Vec<Value> = bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).unwrap())
                .collect();
            assert_eq!(lines.len(), 120);
            assert!(
                lines.windows(2).all(|w| w[0]["label_id"].as_str() < w[1]["label_id"].as_str()),
                "ordered"
            );
            assert!(lines[0]["sample"]["text"].is_string() && lines[0]["label"]["label"].is_string());
        } else {
            let text = String::from_utf8(bytes.clone()).unwrap();
            assert!(text.starts_with(
                "label_id,sample_id,external_id,labeler,schema_version,created_at,label,sample\r\n"
            ));
            assert_eq!(text.matches("\r\n").count(), 121);
        }
        // the same data exported again: the same bytes
        let e2 = export(&app, &admin, &q, json!({"format": format})).await;
        assert_eq!(e2["sha256"], e1["sha256"], "{format} exports differ");
        assert_ne!(e2["id"], e1["id"]);
    }
    // filters
    let e = export(&app, &admin, &q, json!({"format": "jsonl", "filter": {"labeler": "ann"}})).await;
    assert_eq!(e["rows"], 60);
    let list = app.get(&format!("/v1/queues/{q}/exports"), &admin).await.expect(StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 5);
    // a download link is bound to its key and expiry
    let url = e["download_url"].as_str().unwrap();
    let tampered = url.replace("sig=", "sig=00");
    assert_eq!(fetch(&app, &tampered).await.0, StatusCode::NOT_FOUND);
    let other = url.replace("labels.jsonl", "manifest.json");
    assert_eq!(fetch(&app, &other).await.0, StatusCode::NOT_FOUND);
    app.get(&format!("/v1/exports/{}?ttl_secs=9999999", e["id"].as_str().unwrap()), &admin)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "bad_request");
    app.post(&format!("/v1/queues/{q}/exports"), &admin, json!({"format": "xml"}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
}

async fn csv_cells_that_spreadsheets_would_run_are_neutralized(app: TestApp) {
    let admin = admin("t1");
    let schema = json!({"fields": [{"name": "note", "kind": "text"}]});
    let q = app.queue(&admin, "csv", 1, schema).await;
    app.post(
        &format!("/v1/queues/{q}/samples"),
        &admin,
        json!({"samples": [{"external_id": "=HYPERLINK(\"http://x\")", "payload": {"text": "t"}}]}),
    )
    .await
    .expect(StatusCode::OK);
    let ann = labeler("t1", "ann");
    let c = app.claim(&q, &ann).await.expect(StatusCode::OK);
    app.post(
        "/v1/labels",
        &ann,
        json!({"assignment_id": assignment_id(&c), "payload": {"note": "+1 @everyone"}}),
    )
    .await
    .expect(StatusCode::CREATED);
    let e = export(&app, &admin, &q, json!({"format": "csv"})).await;
    let (_, bytes) = fetch(&app, e["download_url"].as_str().unwrap()).await;
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("\"'=HYPERLINK(\"\"http://x\"\")\""), "{text}");
    assert!(text.contains(",'+1 @everyone,"), "{text}");
}

async fn a_redelivered_export_job_makes_no_second_artifact(app: TestApp) {
    let admin = admin("t1");
    let q = labeled_queue(&app, &admin, 10, simple_schema()).await;
    let e = app
        .post(&format!("/v1/queues/{q}/exports"), &admin, json!({"format": "jsonl"}))
        .await
        .expect(StatusCode::ACCEPTED);
    let job = app.worker.tasks.reserve_job(Duration::from_secs(60)).await.unwrap().unwrap();
    for _ in 0..3 {
        // the same message handled three times
        assert_eq!(app.worker.run_and_record(&job).await.unwrap(), "succeeded");
    }
    let got =
        app.get(&format!("/v1/exports/{}", e["id"].as_str().unwrap()), &admin).await.expect(StatusCode::OK);
    assert_eq!(got["state"], "succeeded");
    let files: Vec<_> = walk(app.blob_dir.path()).into_iter().filter(|p| !p.contains("/.tmp/")).collect();
    assert_eq!(files.len(), 2, "one data file and one manifest: {files:?}");
    assert!(walk(&app.blob_dir.path().join(".tmp")).is_empty(), "no partial upload left");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

async fn an_import_reports_bad_lines_and_a_second_run_adds_nothing(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "import", 1, simple_schema()).await;
    let lines = app.scale(50_000);
    let mut file = String::new();
    let mut bad = Vec::new();
    for i in 1..=lines {
        if i % 997 == 0 {
            file.push_str("{\"external_id\": \"broken\"\n");
            bad.push(i as u64);
        } else if i % 1009 == 0 {
            file.push_str(&format!("{{\"external_id\": \"x{i}\", \"payload\": \"not an object\"}}\n"));
            bad.push(i as u64);
        } else {
            file.push_str(&format!(
                "{{\"external_id\": \"x{i}\", \"payload\": {{\"text\": \"row {i}\"}}}}\n"
            ));
        }
    }
    let good = (lines - bad.len()) as i64;
    for round in 0..2 {
        let imp = app
            .post(&format!("/v1/queues/{q}/imports"), &admin, json!({"format": "jsonl"}))
            .await
            .expect(StatusCode::CREATED);
        let url = imp["upload_url"].as_str().unwrap();
        let put = Request::put(url).body(Body::from(file.clone())).unwrap();
        assert_eq!(app.router.clone().oneshot_req(put).await.status(), StatusCode::CREATED);
        let id = imp["id"].as_str().unwrap();
        app.call(axum::http::Method::POST, &format!("/v1/imports/{id}/start"), Some(&admin), None)
            .await
            .expect(StatusCode::ACCEPTED);
        // starting twice is harmless
        app.call(axum::http::Method::POST, &format!("/v1/imports/{id}/start"), Some(&admin), None)
            .await
            .expect(StatusCode::ACCEPTED);
        assert_eq!(app.run_jobs().await, 1);
        let done = app.get(&format!("/v1/imports/{id}"), &admin).await.expect(StatusCode::OK);
        assert_eq!(done["state"], "succeeded", "{done}");
        assert_eq!(done["rows_failed"].as_i64(), Some(bad.len() as i64));
        let lines_reported: Vec<u64> =
            done["errors"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
        assert_eq!(lines_reported, bad);
        if round == 0 {
            assert_eq!(
                (done["rows_created"].as_i64(), done["rows_existing"].as_i64()),
                (Some(good), Some(0))
            );
        } else {
            assert_eq!(
                (done["rows_created"].as_i64(), done["rows_existing"].as_i64()),
                (Some(0), Some(good))
            );
        }
    }
    let queue = app.get(&format!("/v1/queues/{q}"), &admin).await.expect(StatusCode::OK);
    assert_eq!(queue["sample_count"].as_i64(), Some(good));
}

async fn an_import_without_an_upload_fails_clearly(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "import", 1, simple_schema()).await;
    let imp = app
        .post(&format!("/v1/queues/{q}/imports"), &admin, json!({"format": "csv"}))
        .await
        .expect(StatusCode::CREATED);
    let id = imp["id"].as_str().unwrap();
    app.call(axum::http::Method::POST, &format!("/v1/imports/{id}/start"), Some(&admin), None)
        .await
        .expect(StatusCode::ACCEPTED);
    app.run_jobs().await;
    let done = app.get(&format!("/v1/imports/{id}"), &admin).await.expect(StatusCode::OK);
    assert_eq!(done["state"], "failed");
    assert!(done["error"].as_str().unwrap().contains("no file"));
    // a signed upload link cannot be reused for another key or after tampering
    let url = imp["upload_url"].as_str().unwrap().replace("imports~t1", "imports~t2");
    let put = Request::put(url).body(Body::from("x")).unwrap();
    assert_eq!(app.router.clone().oneshot_req(put).await.status(), StatusCode::NOT_FOUND);
}

async fn a_poison_job_ends_dead_and_the_others_still_run(app: TestApp) {
    let admin = admin("t1");
    let q = labeled_queue(&app, &admin, 5, simple_schema()).await;
    let good = app
        .post(&format!("/v1/queues/{q}/exports"), &admin, json!({"format": "jsonl"}))
        .await
        .expect(StatusCode::ACCEPTED);
    // a job whose work cannot be done: its import has no file and its kind is unknown to the worker
    let poison_import = app
        .post(&format!("/v1/queues/{q}/imports"), &admin, json!({"format": "jsonl"}))
        .await
        .expect(StatusCode::CREATED);
    let id = poison_import["id"].as_str().unwrap();
    app.call(axum::http::Method::POST, &format!("/v1/imports/{id}/start"), Some(&admin), None)
        .await
        .expect(StatusCode::ACCEPTED);
    // the export's job runs; the import's job fails on every delivery and is dead after its last attempt
    let job = app.worker.tasks.reserve_job(Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!(job.kind, "export");
    assert_eq!(app.worker.run_and_record(&job).await.unwrap(), "succeeded");
    let job = app.worker.tasks.reserve_job(Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!(job.kind, "import");
    let mut state = String::new();
    for attempt in 1..=job.max_attempts {
        state = app.worker.tasks.finish_job(job.id, Some("boom"), Duration::ZERO, false).await.unwrap();
        if attempt < job.max_attempts {
            assert_eq!(state, "pending", "attempt {attempt}");
            // the next delivery of the same job
            app.worker.tasks.begin_job(job.id).await.unwrap();
        }
    }
    assert_eq!(state, "dead");
    assert_eq!(app.run_jobs().await, 0, "a dead job is not taken again");
    let ops = app.get("/v1/admin/ops/summary", &admin).await.expect(StatusCode::OK);
    assert_eq!(ops["dead_jobs"], 1, "{ops}");
    assert_eq!(ops["pending_jobs"], 0, "{ops}");
    let e = app
        .get(&format!("/v1/exports/{}", good["id"].as_str().unwrap()), &admin)
        .await
        .expect(StatusCode::OK);
    assert_eq!(e["state"], "succeeded");
}

async fn a_final_export_has_one_row_per_sample_and_names_its_method(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "final export", 2, simple_schema()).await;
    app.samples(&admin, &q, 3).await;
    // s00000 both a; s00001 a and b (a tie: adjudication); s00002 only ann (incomplete).
    for who in ["ann", "bob"] {
        let tok = labeler("t1", who);
        loop {
            let c = app.claim(&q, &tok).await;
            if c.status == StatusCode::NO_CONTENT {
                break;
            }
            let c = c.expect(StatusCode::OK);
            let a = assignment_id(&c);
            let ext = c["sample"]["external_id"].as_str().unwrap().to_string();
            if who == "bob" && ext == "s00002" {
                app.post(&format!("/v1/assignments/{a}/release"), &tok, json!({"reason": "skip"}))
                    .await
                    .expect(StatusCode::OK);
                continue;
            }
            let v = if who == "bob" && ext == "s00001" { "b" } else { "a" };
            app.post("/v1/labels", &tok, json!({"assignment_id": a, "payload": {"label": v}}))
                .await
                .expect(StatusCode::CREATED);
        }
    }
    // Filters belong to labels mode.
    app.post(
        &format!("/v1/queues/{q}/exports"),
        &admin,
        json!({"format": "jsonl", "mode": "final", "filter": {"labeler": "ann"}}),
    )
    .await
    .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let e = export(&app, &admin, &q, json!({"format": "jsonl", "mode": "final"})).await;
    assert_eq!(
        (e["state"].as_str(), e["mode"].as_str(), e["rows"].as_i64()),
        (Some("succeeded"), Some("final"), Some(3))
    );
    assert_eq!(e["manifest"]["mode"], "final");
    assert_eq!(e["manifest"]["final"]["method"], "majority");
    let (_, bytes) = fetch(&app, e["download_url"].as_str().unwrap()).await;
    let rows: Vec<Value> =
        String::from_utf8(bytes).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ext: Vec<&str> = rows.iter().map(|r| r["external_id"].as_str().unwrap()).collect();
    assert_eq!(ext, vec!["s00000", "s00001", "s00002"]);
    assert_eq!((rows[0]["status"].as_str(), rows[0]["method"].as_str()), (Some("final"), Some("unanimous")));
    assert_eq!(rows[0]["answer"], json!({"label": "a"}));
    assert_eq!(rows[0]["labels"].as_array().unwrap().len(), 2);
    assert!(rows[0]["sample"]["text"].is_string());
    assert_eq!((rows[1]["status"].as_str(), rows[1]["answer"].clone()), (Some("adjudication"), Value::Null));
    assert_eq!(rows[2]["status"], "incomplete");
    // The same export as CSV: one row per sample, answer and agreement columns per field.
    let e = export(&app, &admin, &q, json!({"format": "csv", "mode": "final"})).await;
    let (_, bytes) = fetch(&app, e["download_url"].as_str().unwrap()).await;
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "sample_id,external_id,status,method,decided_by,labels,label,agreement.label,reasons"
    );
    assert_eq!(lines.len(), 4);
    assert!(lines[1].contains(",s00000,final,unanimous,,2,a,1,"), "{}", lines[1]);
}

conformance!(
    a_final_export_has_one_row_per_sample_and_names_its_method,
    an_export_is_streamed_with_a_manifest_and_reruns_give_identical_bytes,
    csv_cells_that_spreadsheets_would_run_are_neutralized,
    a_redelivered_export_job_makes_no_second_artifact,
    an_import_reports_bad_lines_and_a_second_run_adds_nothing,
    an_import_without_an_upload_fails_clearly,
    a_poison_job_ends_dead_and_the_others_still_run,
);
