//! `anvil serve --demo`: a demo tenant with a queue of a few hundred product reviews to label, seeded once
//! (idempotent: the queue is found by name and samples by external_id), and tokens printed for each role.
//!
//! On a loopback address the demo also answers `GET /v1/demo/identities` (each demo person with a freshly
//! minted one-hour token) for the sign-in page's one-click buttons. Anyone who can reach that route can act
//! as the demo admin, so it exists only for a loopback listener and answers only requests that name this
//! machine in `Host` (a DNS-rebinding page names its own host) and come from no other site (`Origin`,
//! `Sec-Fetch-Site`). It sends no CORS headers, so another origin's script cannot read it either.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anvil_api::ApiError;
use anvil_core::auth::{AuthMethod, JwtVerifier, Principal};
use anvil_core::domain::{Subject, TenantId};
use anvil_core::service::Anvil;
use anvil_types::{AddSamples, CreateQueue, DemoIdentities, DemoIdentity, NewSample, Role};
use anyhow::Context;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde_json::json;

pub const DEMO_TENANT: &str = "demo";
pub const DEMO_QUEUE: &str = "Product reviews";

/// The demo's people: the name on the sign-in button (and in the printed list), their subject and role.
const PEOPLE: [(&str, &str, Role); 4] = [
    ("admin", "demo-admin", Role::Admin),
    ("auditor", "demo-auditor", Role::Auditor),
    ("alice", "alice", Role::Labeler),
    ("bob", "bob", Role::Labeler),
];

/// Path of the one-click sign-in route.
pub const IDENTITIES_PATH: &str = "/v1/demo/identities";

/// Lifetime of the tokens the sign-in buttons get: an hour of labeling, then "sign in again".
const BUTTON_TOKEN_TTL: Duration = Duration::from_secs(3600);

const PRODUCTS: [&str; 12] = [
    "the AeroPress coffee maker",
    "these noise-cancelling headphones",
    "the trail running shoes",
    "this budget laptop",
    "the cast-iron skillet",
    "the smart thermostat",
    "this ergonomic office chair",
    "the electric toothbrush",
    "the 4K monitor",
    "this camping tent",
    "the robot vacuum",
    "the mechanical keyboard",
];

const OPENINGS: [&str; 5] = [
    "Bought {p} for my partner's birthday.",
    "I have used {p} every day for three months.",
    "Ordered {p} after reading a review in Wirecutter.",
    "Our office switched to {p} last spring.",
    "Second time buying {p}; the first one lasted four years.",
];

const VERDICTS: [(&str, &str); 10] = [
    ("Setup took five minutes and it has worked flawlessly since.", "positive"),
    ("It broke after two weeks and support never answered my emails.", "negative"),
    ("Does the job, nothing more. The price is fair for what you get.", "neutral"),
    ("Battery life is half of what Acme Corp advertises, which is disappointing.", "negative"),
    ("Honestly the best purchase I made this year; Maria at the Berlin store was very helpful.", "positive"),
    (
        "Shipping from Rotterdam took nine days and the box arrived dented, but the product itself is fine.",
        "neutral",
    ),
    ("Loud, flimsy and the app keeps crashing. Returned it.", "negative"),
    ("Build quality is excellent and it looks great on my desk.", "positive"),
    ("Works as described. I would buy it again if it went on sale.", "neutral"),
    ("Customer service from Globex replaced it within a day when the switch failed. Impressed.", "positive"),
];

fn demo_samples() -> Vec<NewSample> {
    let mut out = Vec::new();
    let mut n = 0usize;
    for (pi, p) in PRODUCTS.iter().enumerate() {
        for (oi, o) in OPENINGS.iter().enumerate() {
            for k in 0..5 {
                let (v, hint) = VERDICTS[(pi * 7 + oi * 3 + k) % VERDICTS.len()];
                n += 1;
                let text = format!("{} {}", o.replace("{p}", p), v);
                out.push(NewSample {
                    external_id: format!("review-{n:04}"),
                    payload: json!({"text": text, "product": p.trim_start_matches("the ").trim_start_matches("these ")
                        .trim_start_matches("this "), "source": "demo", "hint": hint}),
                    priority: 0,
                });
            }
        }
    }
    out
}

fn demo_queue() -> anyhow::Result<CreateQueue> {
    Ok(serde_json::from_value(json!({
        "name": DEMO_QUEUE,
        "description": "Classify the sentiment of product reviews and mark the organisations and people mentioned.",
        "overlap": 2,
        "lease_seconds": 300,
        "schema": {
            "instructions": "Read the review. Pick its sentiment, tick the aspects it talks about, mark every person (PER), organisation (ORG) and place (LOC) in the text, and rate how useful the review is.",
            "fields": [
                {"name": "sentiment", "title": "Sentiment", "kind": "single_choice",
                 "options": ["positive", "neutral", "negative"]},
                {"name": "aspects", "title": "Aspects mentioned", "kind": "multi_choice", "required": false,
                 "options": ["quality", "price", "shipping", "support", "durability"]},
                {"name": "entities", "title": "Entities", "kind": "span", "source": "text", "required": false,
                 "labels": ["PER", "ORG", "LOC"]},
                {"name": "helpfulness", "title": "Helpfulness", "kind": "rating", "max": 5},
                {"name": "would_recommend", "title": "Reviewer would recommend", "kind": "boolean", "required": false},
                {"name": "note", "title": "Note for auditors", "kind": "text", "max_len": 500, "required": false}
            ]
        }
    }))?)
}

/// Seeds the demo data (once) and prints the URL and tokens.
pub async fn seed_and_print(anvil: &Anvil, jwt: &JwtVerifier, addr: SocketAddr) -> anyhow::Result<()> {
    let tenant = TenantId::parse(DEMO_TENANT).context("demo tenant id")?;
    let admin = Principal {
        tenant: tenant.clone(),
        subject: Subject::parse("demo-admin").context("subject")?,
        role: Role::Admin,
        method: AuthMethod::Jwt,
    };
    let existing = anvil.list_queues(&admin).await?;
    let queue = match existing.into_iter().find(|q| q.name == DEMO_QUEUE) {
        Some(q) => q,
        None => anvil.create_queue(&admin, &demo_queue()?).await?,
    };
    let mut created = 0;
    for chunk in demo_samples().chunks(anvil_types::MAX_SAMPLES_PER_BATCH) {
        created +=
            anvil.add_samples(&admin, queue.id, &AddSamples { samples: chunk.to_vec() }).await?.created;
    }
    tracing::info!(queue_id = %queue.id, created, "demo data ready");

    let ttl = Duration::from_secs(7 * 24 * 3600);
    let mint = |sub: &str, role: Role| -> anyhow::Result<String> {
        jwt.mint(&tenant, &Subject::parse(sub).context("subject")?, role, ttl)
    };
    println!();
    println!("Anvil demo is ready: http://{addr}/");
    println!(
        "  queue \"{DEMO_QUEUE}\" ({}) with {} samples, 2 labels per sample",
        queue.id,
        demo_samples().len()
    );
    println!("  Sign in with one of these tokens (valid 7 days):");
    for (name, subject, role) in PEOPLE {
        println!("  {name:<8} {}", mint(subject, role)?);
    }
    println!(
        "  e.g. curl -X POST -H \"Authorization: Bearer <alice's token>\" http://{addr}/v1/queues/{}/assignments/next",
        queue.id
    );
    println!();
    Ok(())
}

/// `GET /v1/demo/identities`, for a loopback listener in demo mode only (see the module doc).
pub fn identities_route(jwt: Arc<JwtVerifier>) -> MethodRouter {
    get(identities).with_state(jwt)
}

async fn identities(State(jwt): State<Arc<JwtVerifier>>, uri: Uri, headers: HeaderMap) -> Response {
    if let Err(why) = from_this_machine(&uri, &headers) {
        tracing::warn!(reason = why, "demo identities refused");
        return ApiError::new(StatusCode::FORBIDDEN, "forbidden", why).into_response();
    }
    match people(&jwt) {
        Ok(body) => {
            let mut res = axum::Json(body).into_response();
            let h = res.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            res
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "minting demo tokens failed");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error").into_response()
        }
    }
}

/// The demo's people, each with a token minted now.
fn people(jwt: &JwtVerifier) -> anyhow::Result<DemoIdentities> {
    let tenant = TenantId::parse(DEMO_TENANT).context("demo tenant id")?;
    let identities = PEOPLE
        .iter()
        .map(|&(name, subject, role)| {
            let sub = Subject::parse(subject).context("subject")?;
            Ok(DemoIdentity {
                name: name.into(),
                subject: subject.into(),
                role,
                token: jwt.mint(&tenant, &sub, role, BUTTON_TOKEN_TTL)?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(DemoIdentities { tenant_id: DEMO_TENANT.into(), expires_in: BUTTON_TOKEN_TTL.as_secs(), identities })
}

/// Whether a host name (with or without a port) names this machine: `localhost`, `127.0.0.1` or `[::1]`.
fn is_loopback_host(host_port: &str) -> bool {
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, port)) if port.is_empty() || port.starts_with(':') => h,
            _ => return false,
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, _port)) => h,
            None => host_port,
        }
    };
    host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" || host == "::1"
}

/// Refuses a request that names another host or comes from another site; says why.
fn from_this_machine(uri: &Uri, headers: &HeaderMap) -> Result<(), &'static str> {
    let text = |name: header::HeaderName| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    // HTTP/1.1 names the host in `Host`; HTTP/2 in the request's authority.
    let host = text(header::HOST).or_else(|| uri.authority().map(|a| a.as_str()));
    if !host.is_some_and(is_loopback_host) {
        return Err("the demo identities answer only requests to localhost, 127.0.0.1 or [::1]");
    }
    if let Some(origin) = text(header::ORIGIN)
        && !origin.strip_prefix("http://").is_some_and(is_loopback_host)
    {
        return Err("the demo identities answer only pages of this machine");
    }
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
        && site != "same-origin"
        && site != "none"
    {
        return Err("the demo identities answer only the labeling app itself");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_are_this_machine() {
        for ok in
            ["localhost", "localhost:8080", "LOCALHOST:1", "127.0.0.1", "127.0.0.1:8080", "[::1]", "[::1]:80"]
        {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.nip.io:8080",
            "127.0.0.2:8080",
            "[::1]x",
            "[::2]:80",
            "",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn requests_from_other_hosts_or_sites_are_refused() {
        let uri: Uri = "/v1/demo/identities".parse().unwrap();
        let with = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_str(v).unwrap());
            }
            from_this_machine(&uri, &h)
        };
        assert!(with(&[("host", "127.0.0.1:8080")]).is_ok());
        assert!(with(&[("host", "localhost:8080"), ("sec-fetch-site", "same-origin")]).is_ok());
        assert!(with(&[("host", "localhost:8080"), ("origin", "http://localhost:8080")]).is_ok());
        assert!(with(&[]).is_err(), "no Host at all");
        assert!(with(&[("host", "rebound.evil.example:8080")]).is_err());
        assert!(with(&[("host", "127.0.0.1:8080"), ("origin", "http://evil.example")]).is_err());
        assert!(with(&[("host", "127.0.0.1:8080"), ("origin", "null")]).is_err());
        assert!(with(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")]).is_err());
        assert!(with(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "same-site")]).is_err());
    }

    #[test]
    fn the_demo_data_is_valid_and_has_distinct_ids() {
        let samples = demo_samples();
        assert!(samples.len() >= 300);
        anvil_core::domain::check_samples(&samples).unwrap();
        anvil_core::domain::check_create_queue(&demo_queue().unwrap()).unwrap();
    }
}
