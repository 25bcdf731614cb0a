//! Tenant isolation, the role matrix, JWT attacks, bad input and the OpenAPI document, through the router.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use std::collections::BTreeSet;

use anvil_types::Role;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The API contract: every route the server mounts, with the least role that may call it (None: public).
const ROUTES: &[(&str, &str, Option<Role>)] = &[
    ("get", "/health/live", None),
    ("get", "/health/ready", None),
    ("get", "/v1/openapi.json", None),
    ("get", "/v1/me", Some(Role::Labeler)),
    ("post", "/v1/queues", Some(Role::Admin)),
    ("get", "/v1/queues", Some(Role::Labeler)),
    ("get", "/v1/queues/{id}", Some(Role::Labeler)),
    ("patch", "/v1/queues/{id}", Some(Role::Admin)),
    ("get", "/v1/queues/{id}/stats", Some(Role::Auditor)),
    ("get", "/v1/queues/{id}/quality", Some(Role::Auditor)),
    ("post", "/v1/queues/{id}/gold", Some(Role::Admin)),
    ("get", "/v1/queues/{id}/gold", Some(Role::Auditor)),
    ("get", "/v1/queues/{id}/gold/settings", Some(Role::Auditor)),
    ("put", "/v1/queues/{id}/gold/settings", Some(Role::Admin)),
    ("get", "/v1/queues/{id}/final/settings", Some(Role::Auditor)),
    ("put", "/v1/queues/{id}/final/settings", Some(Role::Admin)),
    ("get", "/v1/queues/{id}/final", Some(Role::Auditor)),
    ("post", "/v1/queues/{id}/adjudications/{sample_id}", Some(Role::Auditor)),
    ("post", "/v1/queues/{id}/samples", Some(Role::Admin)),
    ("post", "/v1/queues/{id}/assignments/next", Some(Role::Labeler)),
    ("get", "/v1/assignments/{id}", Some(Role::Labeler)),
    ("post", "/v1/assignments/{id}/heartbeat", Some(Role::Labeler)),
    ("post", "/v1/assignments/{id}/release", Some(Role::Labeler)),
    ("post", "/v1/labels", Some(Role::Labeler)),
    ("get", "/v1/labels/{id}", Some(Role::Labeler)),
    ("get", "/v1/queues/{id}/labels", Some(Role::Labeler)),
    ("post", "/v1/labels/{id}/review", Some(Role::Auditor)),
    ("post", "/v1/tokens", Some(Role::Admin)),
    ("get", "/v1/tokens", Some(Role::Admin)),
    ("delete", "/v1/tokens/{id}", Some(Role::Admin)),
    ("post", "/v1/queues/{id}/exports", Some(Role::Admin)),
    ("get", "/v1/queues/{id}/exports", Some(Role::Admin)),
    ("get", "/v1/exports/{id}", Some(Role::Admin)),
    ("post", "/v1/queues/{id}/imports", Some(Role::Admin)),
    ("get", "/v1/imports/{id}", Some(Role::Admin)),
    ("post", "/v1/imports/{id}/start", Some(Role::Admin)),
    ("get", "/v1/admin/ops/summary", Some(Role::Admin)),
];

/// Routes whose grant is a signature in the URL, not a bearer token (checked in tests/exports.rs).
const SIGNED_ROUTES: &[(&str, &str)] = &[("get", "/v1/blobs/{key}"), ("put", "/v1/blobs/{key}")];

fn documented_routes() -> BTreeSet<(String, String)> {
    let doc = serde_json::to_value(anvil_api::openapi()).unwrap();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in ["get", "post", "patch", "put", "delete"] {
            if item.get(m).is_some() {
                out.insert((m.to_string(), path.clone()));
            }
        }
    }
    out
}

fn method(m: &str) -> Method {
    Method::from_bytes(m.to_uppercase().as_bytes()).unwrap()
}

/// Resources of one tenant, to aim requests at.
struct Fixture {
    queue: String,
    /// A sample of the queue (the one of `label`).
    sample: String,
    assignment: String,
    label: String,
    token_id: String,
    export: String,
    import: String,
}

async fn fixture(app: &TestApp, tenant: &str) -> Fixture {
    let admin = admin(tenant);
    let queue = app.queue(&admin, "secret queue", 1, simple_schema()).await;
    app.samples(&admin, &queue, 3).await;
    let ann = labeler(tenant, "ann");
    let c = app.claim(&queue, &ann).await.expect(StatusCode::OK);
    let done = assignment_id(&c);
    let sample = c["sample"]["id"].as_str().unwrap().to_string();
    let l = app.post("/v1/labels", &ann, json!({"assignment_id": done, "payload": {"label": "a"}})).await;
    let label = l.expect(StatusCode::CREATED)["id"].as_str().unwrap().to_string();
    let c = app.claim(&queue, &ann).await.expect(StatusCode::OK);
    let assignment = assignment_id(&c);
    let t = app
        .post("/v1/tokens", &admin, json!({"name": "n", "role": "labeler"}))
        .await
        .expect(StatusCode::CREATED);
    let (export, import) = export_and_import(app, &admin, &queue).await;
    Fixture {
        queue,
        sample,
        assignment,
        label,
        token_id: t["info"]["id"].as_str().unwrap().to_string(),
        export,
        import,
    }
}

async fn export_and_import(app: &TestApp, admin: &str, queue: &str) -> (String, String) {
    let e = app.post(&format!("/v1/queues/{queue}/exports"), admin, json!({"format": "jsonl"})).await;
    let i = app.post(&format!("/v1/queues/{queue}/imports"), admin, json!({"format": "jsonl"})).await;
    (
        e.expect(StatusCode::ACCEPTED)["id"].as_str().unwrap().to_string(),
        i.expect(StatusCode::CREATED)["id"].as_str().unwrap().to_string(),
    )
}

fn fill(path: &str, f: &Fixture) -> String {
    let id = if path.starts_with("/v1/queues/") {
        &f.queue
    } else if path.starts_with("/v1/assignments/") {
        &f.assignment
    } else if path.starts_with("/v1/labels/") {
        &f.label
    } else if path.starts_with("/v1/exports/") {
        &f.export
    } else if path.starts_with("/v1/imports/") {
        &f.import
    } else {
        &f.token_id
    };
    path.replace("{id}", id).replace("{sample_id}", &f.sample)
}

/// A body that would succeed if the caller were allowed to act on the target.
fn body_for(m: &str, path: &str, f: &Fixture) -> Option<Value> {
    match (m, path) {
        ("post", "/v1/queues") => {
            Some(json!({"name": format!("q-{}", uuid::Uuid::now_v7()), "schema": simple_schema()}))
        }
        ("patch", _) => Some(json!({"state": "paused"})),
        ("post", "/v1/queues/{id}/samples") => {
            Some(json!({"samples": [{"external_id": "zz", "payload": {"text": "t"}}]}))
        }
        ("post", "/v1/assignments/{id}/release") => Some(json!({"reason": "skip"})),
        ("post", "/v1/labels") => Some(json!({"assignment_id": f.assignment, "payload": {"label": "a"}})),
        ("post", "/v1/labels/{id}/review") => Some(json!({"verdict": "reject", "comment": "no"})),
        ("post", "/v1/tokens") => Some(json!({"name": "x", "role": "labeler"})),
        ("post", "/v1/queues/{id}/exports") => Some(json!({"format": "csv"})),
        ("post", "/v1/queues/{id}/gold") => Some(
            json!({"items": [{"external_id": "gold-zz", "payload": {"text": "t"}, "answer": {"label": "a"}}]}),
        ),
        ("put", "/v1/queues/{id}/gold/settings") => Some(json!({"rate": 0.1})),
        ("put", "/v1/queues/{id}/final/settings") => Some(json!({"method": "majority"})),
        ("post", "/v1/queues/{id}/adjudications/{sample_id}") => Some(json!({"answer": {"label": "a"}})),
        ("post", "/v1/queues/{id}/imports") => Some(json!({"format": "csv"})),
        _ => None,
    }
}

async fn every_route_is_in_the_openapi_document_and_mounted(app: TestApp) {
    let mut expected: BTreeSet<(String, String)> =
        ROUTES.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    expected.extend(SIGNED_ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())));
    assert_eq!(documented_routes(), expected, "OpenAPI document and route contract differ");
    let served = app.call(Method::GET, "/v1/openapi.json", None, None).await.expect(StatusCode::OK);
    assert_eq!(served["openapi"], "3.1.0");
    let f = fixture(&app, "t1").await;
    let admin = admin("t1");
    for (m, p, _) in ROUTES {
        let r = app.call(method(m), &fill(p, &f), Some(&admin), body_for(m, p, &f)).await;
        assert_ne!(r.body["error"]["message"], "no such route", "{m} {p} is documented but not mounted");
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{m} {p} is documented but not mounted");
    }
}

async fn another_tenant_gets_nothing_from_any_route(app: TestApp) {
    let a = fixture(&app, "tenant-a").await;
    let before = app.get(&format!("/v1/queues/{}", a.queue), &admin("tenant-a")).await.expect(StatusCode::OK);
    let a_ids = [&a.queue, &a.assignment, &a.label, &a.token_id, &a.export, &a.import];
    let mut successes = Vec::new();
    for role in [Role::Admin, Role::Auditor, Role::Labeler] {
        let tok = token("tenant-b", "mallory", role);
        for (m, p, _) in ROUTES {
            let r = app.call(method(m), &fill(p, &a), Some(&tok), body_for(m, p, &a)).await;
            let leaked = a_ids.iter().any(|id| r.body.to_string().contains(id.as_str()))
                || r.body.to_string().contains("secret queue");
            if p.contains("{id}") || *p == "/v1/labels" {
                if r.status != StatusCode::NOT_FOUND && r.status != StatusCode::FORBIDDEN {
                    successes.push(format!("{role:?} {m} {p} -> {}", r.status));
                }
                if r.status == StatusCode::FORBIDDEN && r.body.to_string().contains("secret") {
                    successes.push(format!("{role:?} {m} {p} leaked in a 403"));
                }
            }
            if leaked {
                successes.push(format!("{role:?} {m} {p} leaked tenant-a data: {}", r.body));
            }
        }
    }
    assert!(successes.is_empty(), "cross-tenant access: {successes:#?}");
    // and tenant-a's data is untouched
    let after = app.get(&format!("/v1/queues/{}", a.queue), &admin("tenant-a")).await.expect(StatusCode::OK);
    assert_eq!(before, after);
    let label = app.get(&format!("/v1/labels/{}", a.label), &admin("tenant-a")).await.expect(StatusCode::OK);
    assert!(label["reviews"].as_array().unwrap().is_empty());
    let toks = app.get("/v1/tokens", &admin("tenant-a")).await.expect(StatusCode::OK);
    assert!(toks["items"][0]["revoked_at"].is_null());
}

async fn the_role_matrix_matches_the_design(app: TestApp) {
    let mut wrong = Vec::new();
    for role in [Role::Labeler, Role::Auditor, Role::Admin] {
        // fresh resources per role, owned by the caller where ownership matters
        let tenant = format!("roles-{}", role.as_str());
        let admin_tok = admin(&tenant);
        let q = app.queue(&admin_tok, "q", 1, simple_schema()).await;
        app.samples(&admin_tok, &q, 5).await;
        let me = token(&tenant, "me", role);
        let c = app.claim(&q, &me).await.expect(StatusCode::OK);
        let sample = c["sample"]["id"].as_str().unwrap().to_string();
        let l = app
            .post("/v1/labels", &me, json!({"assignment_id": assignment_id(&c), "payload": {"label": "a"}}))
            .await;
        let label = l.expect(StatusCode::CREATED)["id"].as_str().unwrap().to_string();
        let c = app.claim(&q, &me).await.expect(StatusCode::OK);
        let t = app
            .post("/v1/tokens", &admin_tok, json!({"name": "n", "role": "labeler"}))
            .await
            .expect(StatusCode::CREATED);
        let (export, import) = export_and_import(&app, &admin_tok, &q).await;
        let f = Fixture {
            queue: q,
            sample,
            assignment: assignment_id(&c),
            label,
            token_id: t["info"]["id"].as_str().unwrap().into(),
            export,
            import,
        };
        for (m, p, min) in ROUTES {
            let Some(min) = min else { continue };
            // release last so the lease stays usable for the other routes
            let r = app.call(method(m), &fill(p, &f), Some(&me), body_for(m, p, &f)).await;
            let allowed = role >= *min;
            let ok = if allowed {
                r.status.is_success() || r.status == StatusCode::CONFLICT
            } else {
                r.status == StatusCode::FORBIDDEN
            };
            if !ok {
                wrong.push(format!("{role:?} {m} {p}: {} {}", r.status, r.body));
            }
        }
    }
    assert!(wrong.is_empty(), "role matrix violations: {wrong:#?}");
}

async fn every_private_route_needs_a_token(app: TestApp) {
    let id = || uuid::Uuid::now_v7().to_string();
    let f = Fixture {
        queue: id(),
        sample: id(),
        assignment: id(),
        label: id(),
        token_id: id(),
        export: id(),
        import: id(),
    };
    for (m, p, min) in ROUTES {
        let r = app.call(method(m), &fill(p, &f), None, body_for(m, p, &f)).await;
        match min {
            None => assert_eq!(r.status, StatusCode::OK, "{m} {p}"),
            Some(_) => r.expect_error(StatusCode::UNAUTHORIZED, "unauthorized"),
        }
    }
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn claims(over: Value) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut c = json!({"iss": "anvil", "aud": "anvil", "sub": "eve", "exp": now + 600, "tenant": "t1", "roles": ["admin"]});
    for (k, v) in over.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn hs(c: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), c, &EncodingKey::from_secret(secret)).unwrap()
}

async fn forged_and_malformed_jwts_are_rejected(app: TestApp) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let good = hs(&claims(json!({})), &SECRET);
    app.get("/v1/me", &good).await.expect(StatusCode::OK);

    let rsa_pub =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rsa-public.pem")).unwrap();
    let rsa_priv =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rsa-private.pem")).unwrap();
    let alg_none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims(json!({}))));
    let rs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims(json!({})),
        &EncodingKey::from_rsa_pem(&rsa_priv).unwrap(),
    )
    .unwrap();
    let cases = [
        ("alg none", alg_none),
        ("wrong key", hs(&claims(json!({})), &[9u8; 32])),
        ("HS256 signed with the RSA public key", hs(&claims(json!({})), &rsa_pub)),
        ("RS256 token on an HS256 deployment", rs256),
        ("expired", hs(&claims(json!({"exp": now - 3600})), &SECRET)),
        ("no exp", hs(&claims(json!({"exp": null})), &SECRET)),
        ("exp as a string", hs(&claims(json!({"exp": (now + 600).to_string()})), &SECRET)),
        ("wrong aud", hs(&claims(json!({"aud": "other"})), &SECRET)),
        ("no aud", hs(&claims(json!({"aud": null})), &SECRET)),
        ("wrong iss", hs(&claims(json!({"iss": "evil"})), &SECRET)),
        ("no iss", hs(&claims(json!({"iss": null})), &SECRET)),
        ("not yet valid", hs(&claims(json!({"nbf": now + 3600})), &SECRET)),
        ("no tenant", hs(&claims(json!({"tenant": null})), &SECRET)),
        ("bad tenant", hs(&claims(json!({"tenant": "a b/c"})), &SECRET)),
        ("tampered payload", {
            let parts: Vec<&str> = good.split('.').collect();
            format!("{}.{}.{}", parts[0], b64(&claims(json!({"tenant": "other"}))), parts[2])
        }),
        ("garbage", "not.a.jwt".to_string()),
        (
            "fake pat",
            "anvil_pat_00000000000000000000000000000000000000000000000000000000000000ff".to_string(),
        ),
    ];
    for (name, tok) in cases {
        let r = app.get("/v1/me", &tok).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name} was not refused: {}", r.body);
        r.expect_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // a valid token with no Anvil role is authenticated but may do nothing
    let r = app.get("/v1/me", &hs(&claims(json!({"roles": ["viewer"]})), &SECRET)).await;
    r.expect_error(StatusCode::FORBIDDEN, "forbidden");
    // the header must be a bearer
    let req =
        Request::get("/v1/me").header("authorization", format!("Basic {good}")).body(Body::empty()).unwrap();
    app.send(req).await.expect_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

async fn bad_input_gets_a_clear_4xx_and_writes_nothing(app: TestApp) {
    let admin = admin("t1");
    let q = app.queue(&admin, "q", 1, simple_schema()).await;
    let raw = |m: Method, path: &str, ct: Option<&str>, body: Vec<u8>| {
        let mut b = Request::builder().method(m).uri(path).header("authorization", format!("Bearer {admin}"));
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        b.body(Body::from(body)).unwrap()
    };
    let json_ct = Some("application/json");
    app.send(raw(Method::POST, "/v1/queues", json_ct, b"{\"name\": ".to_vec()))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "malformed_json");
    app.send(raw(Method::POST, "/v1/queues", Some("text/plain"), b"{}".to_vec()))
        .await
        .expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    app.send(raw(Method::POST, "/v1/queues", None, b"{}".to_vec()))
        .await
        .expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    app.send(raw(Method::POST, "/v1/queues", json_ct, b"[]".to_vec()))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    app.post("/v1/queues", &admin, json!({"name": "x", "schema": simple_schema(), "tenant_id": "other"}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    app.post("/v1/queues", &admin, json!({"name": "x", "overlap": "two", "schema": simple_schema()}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    app.post(
        "/v1/queues",
        &admin,
        json!({"name": "x", "schema": {"fields": [{"name": "a", "kind": "hologram"}]}}),
    )
    .await
    .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    let r = app
        .post(
            "/v1/queues",
            &admin,
            json!({"name": "", "overlap": 0, "lease_seconds": 1, "schema": {"fields": []}}),
        )
        .await;
    r.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let ptrs: Vec<&str> = r.body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(ptrs, ["/name", "/overlap", "/lease_seconds", "/schema/fields"]);
    // oversized body (the test limit is 256 KiB)
    let big = json!({"samples": [{"external_id": "x", "payload": {"text": "a".repeat(300 * 1024)}}]});
    app.post(&format!("/v1/queues/{q}/samples"), &admin, big)
        .await
        .expect_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    let chunked = Request::post(format!("/v1/queues/{q}/samples"))
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "application/json")
        .body(Body::from_stream(futures::stream::iter(
            (0..400).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024])),
        )))
        .unwrap();
    app.send(chunked).await.expect_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    // too many samples, duplicate external ids, non-object payloads
    let many: Vec<Value> =
        (0..1001).map(|i| json!({"external_id": format!("e{i}"), "payload": {"t": 1}})).collect();
    app.post(&format!("/v1/queues/{q}/samples"), &admin, json!({"samples": many}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = app
        .post(
            &format!("/v1/queues/{q}/samples"),
            &admin,
            json!({"samples": [
        {"external_id": "d", "payload": {"t": 1}}, {"external_id": "d", "payload": 5}]}),
        )
        .await;
    r.expect_error(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    // unknown ids and unparsable ids are 404; unknown routes and methods get the envelope
    let unknown = uuid::Uuid::now_v7();
    app.get(&format!("/v1/queues/{unknown}"), &admin).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    app.get("/v1/queues/not-a-uuid", &admin).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    app.get(&format!("/v1/labels/{unknown}"), &admin).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    app.claim(&unknown.to_string(), &admin).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    app.post("/v1/labels", &admin, json!({"assignment_id": unknown, "payload": {}}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    app.post("/v1/labels", &admin, json!({"assignment_id": "nope", "payload": {}}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    app.get("/v1/nothing-here", &admin).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    app.call(Method::DELETE, "/v1/queues", Some(&admin), None)
        .await
        .expect_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    app.get(&format!("/v1/queues/{q}/labels?limit=abc"), &admin)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "bad_query");
    // nothing was written by any of it
    let list = app.get("/v1/queues", &admin).await.expect(StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["sample_count"], 0);
}

/// Row-level security is a second wall: as the application role, a query without any tenant filter still
/// sees only the current tenant's rows, and nothing at all when no tenant is set.
async fn row_level_security_hides_other_tenants_rows_from_unfiltered_queries(app: TestApp) {
    let a = fixture(&app, "rls-a").await;
    fixture(&app, "rls-b").await;
    let Backend::Postgres(pool) = &app.backend else { panic!("a Postgres test") };
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE anvil_app").execute(&mut *tx).await.unwrap();
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM labels").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(none, 0, "no tenant set must show no rows");
    sqlx::query("SELECT set_config('app.tenant_id', 'rls-a', true)").execute(&mut *tx).await.unwrap();
    for table in ["queues", "samples", "assignments", "labels", "api_tokens", "audit_log", "lineage_records"]
    {
        let tenants: Vec<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT DISTINCT tenant_id FROM {table}")))
                .fetch_all(&mut *tx)
                .await
                .unwrap();
        assert_eq!(tenants, vec!["rls-a".to_string()], "{table}");
    }
    // the lineage view (security_invoker) gives each entity's provenance: who made it from which inputs
    let kinds: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT entity_kind, entity_id::text, actor FROM lineage_records
         WHERE entity_id IN ($1::uuid, $2::uuid, $3::uuid) ORDER BY entity_kind",
    )
    .bind(&a.assignment)
    .bind(&a.label)
    .bind(&a.export)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let kinds: Vec<(&str, &str, &str)> =
        kinds.iter().map(|(k, id, who)| (k.as_str(), id.as_str(), who.as_str())).collect();
    assert_eq!(
        kinds,
        vec![
            ("assignment", a.assignment.as_str(), "ann"),
            ("export", a.export.as_str(), "admin"),
            ("label", a.label.as_str(), "ann")
        ]
    );
    let inputs: Value = sqlx::query_scalar("SELECT inputs FROM lineage_records WHERE entity_id = $1::uuid")
        .bind(&a.label)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(inputs["schema_version"], 1, "{inputs}");
    assert!(inputs["assignment_id"].is_string(), "{inputs}");
    // writing a row of another tenant is refused by the policy
    let err = sqlx::query("INSERT INTO tenants (id) VALUES ('rls-b-2')").execute(&mut *tx).await;
    assert!(err.is_err());
}

conformance!(
    every_route_is_in_the_openapi_document_and_mounted,
    another_tenant_gets_nothing_from_any_route,
    the_role_matrix_matches_the_design,
    every_private_route_needs_a_token,
    forged_and_malformed_jwts_are_rejected,
    bad_input_gets_a_clear_4xx_and_writes_nothing,
);

/// Postgres only: SQLite has no row-level security.
#[sqlx::test(migrator = "anvil_core::store::postgres::MIGRATOR")]
async fn postgres_row_level_security_hides_other_tenants_rows(pool: sqlx::PgPool) {
    row_level_security_hides_other_tenants_rows_from_unfiltered_queries(TestApp::postgres(pool).await).await;
}
