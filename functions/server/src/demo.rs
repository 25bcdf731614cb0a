//! `anvil serve --demo`: a demo tenant with a queue of a few hundred product reviews to label, seeded once
//! (idempotent: the queue is found by name and samples by external_id), and tokens printed for each role.

use std::net::SocketAddr;
use std::time::Duration;

use anvil_core::auth::{AuthMethod, JwtVerifier, Principal};
use anvil_core::domain::{Subject, TenantId};
use anvil_core::service::Anvil;
use anvil_types::{AddSamples, CreateQueue, NewSample, Role};
use anyhow::Context;
use serde_json::json;

pub const DEMO_TENANT: &str = "demo";
pub const DEMO_QUEUE: &str = "Product reviews";

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
    println!("  admin    {}", mint("demo-admin", Role::Admin)?);
    println!("  auditor  {}", mint("demo-auditor", Role::Auditor)?);
    println!("  alice    {}", mint("alice", Role::Labeler)?);
    println!("  bob      {}", mint("bob", Role::Labeler)?);
    println!(
        "  e.g. curl -X POST -H \"Authorization: Bearer <alice's token>\" http://{addr}/v1/queues/{}/assignments/next",
        queue.id
    );
    println!();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_data_is_valid_and_has_distinct_ids() {
        let samples = demo_samples();
        assert!(samples.len() >= 300);
        anvil_core::domain::check_samples(&samples).unwrap();
        anvil_core::domain::check_create_queue(&demo_queue().unwrap()).unwrap();
    }
}
