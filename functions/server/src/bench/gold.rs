//! `gold-claim`: the claim with gold injection on against the claim without it, in the same run. Two queues
//! of the same size on the same store, one with gold samples (a 5 % rate and an accuracy floor, so every
//! claim also reads the cached settings and the labeler's cached standing), the other without; N labelers
//! claim and submit through the service (`Anvil::claim`, `Anvil::submit`, in-process: no HTTP), in rounds
//! that alternate which queue goes first. Reports claim latency and labels/s of each and their ratio.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anvil_core::auth::{AuthMethod, Principal};
use anvil_core::domain::{Subject, TenantId};
use anvil_core::service::Anvil;
use anvil_core::store::Store;
use anvil_core::store::postgres::{self, PgStore};
use anvil_core::store::sqlite::{Durability, SqliteStore};
use anvil_types::{AddGold, CreateQueue, GoldFloor, GoldSettings, NewGold, NewSample, Role, SubmitLabel};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::{Check, Lat, f, histogram, print_json, print_table, record};

#[derive(Debug, Clone, clap::Args)]
pub struct GoldClaimArgs {
    /// Postgres; without it and without DATABASE_URL only the SQLite store runs.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Concurrent labelers.
    #[arg(long, default_value_t = 8)]
    pub labelers: usize,
    /// Ordinary samples in each queue.
    #[arg(long, default_value_t = 60_000)]
    pub samples: usize,
    /// Gold samples in the gold queue.
    #[arg(long, default_value_t = 200)]
    pub gold: usize,
    /// Share of claims that are gold.
    #[arg(long, default_value_t = 0.05)]
    pub rate: f64,
    /// Rounds; each runs both queues, alternating which goes first.
    #[arg(long, default_value_t = 6)]
    pub rounds: usize,
    /// Seconds per queue per round.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
}

const TENANT: &str = "bench-gold";

#[derive(Debug, Serialize)]
struct Variant {
    labels: u64,
    labels_per_sec: f64,
    gold_served: u64,
    claim: Lat,
    errors: u64,
}

#[derive(Debug, Serialize)]
struct StoreRun {
    store: &'static str,
    plain: Variant,
    gold: Variant,
    /// gold p50 / plain p50 of the claim.
    p50_ratio: f64,
    p99_ratio: f64,
    /// gold labels/s / plain labels/s.
    throughput_ratio: f64,
}

pub async fn run_gold_claim(cfg: &anvil_core::config::Config, a: GoldClaimArgs) -> anyhow::Result<()> {
    let mut check = Check::new();
    let mut runs = Vec::new();
    let pg =
        a.database_url.clone().or_else(|| cfg.database_url.clone()).filter(|u| u.starts_with("postgres"));
    if let Some(url) = pg {
        postgres::migrate(&url).await?;
        let opts: sqlx::postgres::PgConnectOptions = url.parse()?;
        let conns = u32::try_from(a.labelers.clamp(1, 16)).unwrap_or(16);
        let store: Arc<dyn Store> =
            Arc::new(PgStore::new(postgres::app_pool(opts, conns, Duration::from_secs(30))));
        runs.push(store_run("postgres", store, &a, &mut check).await?);
    }
    let dir = tempfile::Builder::new().prefix("anvil-bench-gold-").tempdir()?;
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("anvil.db"), Durability::Full).await?);
    runs.push(store_run("sqlite", store, &a, &mut check).await?);
    let rows: Vec<Vec<String>> = runs
        .iter()
        .flat_map(|r| {
            [("without gold", &r.plain), ("with gold", &r.gold)].map(|(name, v)| {
                vec![
                    r.store.to_string(),
                    name.to_string(),
                    v.labels.to_string(),
                    f(v.labels_per_sec),
                    v.gold_served.to_string(),
                    v.claim.cell(),
                ]
            })
        })
        .collect();
    print_table(
        &format!(
            "anvil bench gold-claim: {} labelers, gold rate {}, {} rounds × {} s per queue, alternating",
            a.labelers, a.rate, a.rounds, a.seconds
        ),
        &["store", "queue", "labels", "labels/s", "gold served", "claim ms p50 / p95 / p99 / max"],
        &rows,
    );
    for r in &runs {
        println!(
            "  {}: claim p50 with gold / without = {:.3}, p99 {:.3}; labels/s with / without = {:.3} (target: p50 ≤ 1.10)",
            r.store, r.p50_ratio, r.p99_ratio, r.throughput_ratio
        );
    }
    println!("  check: {}", check.cell());
    print_json("gold-claim", json!({"ok": check.ok, "check": check, "runs": runs}));
    Ok(())
}

fn principal(name: &str, role: Role) -> anyhow::Result<Principal> {
    Ok(Principal {
        tenant: TenantId::parse(TENANT).ok_or_else(|| anyhow::anyhow!("tenant"))?,
        subject: Subject::parse(name).ok_or_else(|| anyhow::anyhow!("subject"))?,
        role,
        method: AuthMethod::Jwt,
    })
}

async fn make_queue(svc: &Anvil, admin: &Principal, name: &str, samples: usize) -> anyhow::Result<Uuid> {
    let q = svc
        .create_queue(
            admin,
            &CreateQueue {
                name: format!("{name} {}", Uuid::now_v7().simple()),
                description: String::new(),
                overlap: 1,
                lease_seconds: 300,
                policy: Default::default(),
                schema: serde_json::from_value(
                    json!({"fields": [{"name": "label", "kind": "single_choice", "options": ["a", "b"]}]}),
                )?,
            },
        )
        .await?;
    let mut next = 0;
    while next < samples {
        let end = (next + 1000).min(samples);
        let batch: Vec<NewSample> = (next..end)
            .map(|i| NewSample {
                external_id: format!("s{i}"),
                payload: json!({"text": format!("sample text number {i}")}),
                priority: 0,
            })
            .collect();
        svc.store.add_samples(&admin.tenant, &admin.subject, q.id, &batch).await?;
        next = end;
    }
    Ok(q.id)
}

async fn store_run(
    name: &'static str,
    store: Arc<dyn Store>,
    a: &GoldClaimArgs,
    check: &mut Check,
) -> anyhow::Result<StoreRun> {
    let svc = super::quality::anvil(store)?;
    let admin = principal("bench-admin", Role::Admin)?;
    let plain = make_queue(&svc, &admin, "plain", a.samples).await?;
    let gold = make_queue(&svc, &admin, "gold", a.samples).await?;
    for chunk in (0..a.gold).collect::<Vec<_>>().chunks(1000) {
        let items = chunk
            .iter()
            .map(|i| NewGold {
                external_id: format!("gold-{i}"),
                payload: json!({"text": format!("check item {i}")}),
                answer: json!({"label": "a"}),
            })
            .collect();
        svc.add_gold(&admin, gold, &AddGold { items }).await?;
    }
    let settings = GoldSettings {
        rate: a.rate,
        floor: Some(GoldFloor { min_accuracy: 0.5, after: 5 }),
        exempt: Vec::new(),
    };
    svc.put_gold_settings(&admin, gold, &settings).await?;
    let labelers: Vec<Principal> = (0..a.labelers)
        .map(|i| principal(&format!("labeler-{i}"), Role::Labeler))
        .collect::<anyhow::Result<_>>()?;
    let (mut p, mut g) = (Tally::default(), Tally::default());
    // one short warm-up of each (pools, caches, plans) outside the figures
    round(&svc, &labelers, plain, 0.1).await?;
    round(&svc, &labelers, gold, 0.1).await?;
    for r in 0..a.rounds {
        if r % 2 == 0 {
            p.add(round(&svc, &labelers, plain, a.seconds).await?);
            g.add(round(&svc, &labelers, gold, a.seconds).await?);
        } else {
            g.add(round(&svc, &labelers, gold, a.seconds).await?);
            p.add(round(&svc, &labelers, plain, a.seconds).await?);
        }
    }
    let (plain_v, gold_v) = (p.variant(), g.variant());
    check.that(plain_v.errors == 0 && gold_v.errors == 0, format!("{name}: no claim or submit failed"));
    check.that(plain_v.gold_served == 0, format!("{name}: the queue without gold served none"));
    let share = gold_v.gold_served as f64 / (gold_v.labels.max(1)) as f64;
    check.that(
        gold_v.labels < 400 || (a.rate * 0.5..=a.rate * 1.5).contains(&share),
        format!("{name}: gold share of claims {share:.3} near the rate {}", a.rate),
    );
    check.that(
        gold_v.gold_served <= (a.gold * a.labelers) as u64,
        format!("{name}: no labeler got a gold sample twice ({} served)", gold_v.gold_served),
    );
    let ratio = |x: f64, y: f64| if y > 0.0 { x / y } else { 0.0 };
    Ok(StoreRun {
        store: name,
        p50_ratio: ratio(gold_v.claim.p50_ms, plain_v.claim.p50_ms),
        p99_ratio: ratio(gold_v.claim.p99_ms, plain_v.claim.p99_ms),
        throughput_ratio: ratio(gold_v.labels_per_sec, plain_v.labels_per_sec),
        plain: plain_v,
        gold: gold_v,
    })
}

#[derive(Default)]
struct Tally {
    claim: Option<Histogram<u64>>,
    labels: u64,
    gold: u64,
    errors: u64,
    seconds: f64,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        match (&mut self.claim, o.claim) {
            (Some(h), Some(x)) => {
                let _ = h.add(&x);
            }
            (None, x) => self.claim = x,
            _ => {}
        }
        self.labels += o.labels;
        self.gold += o.gold;
        self.errors += o.errors;
        self.seconds += o.seconds;
    }

    fn variant(&self) -> Variant {
        Variant {
            labels: self.labels,
            labels_per_sec: if self.seconds > 0.0 { self.labels as f64 / self.seconds } else { 0.0 },
            gold_served: self.gold,
            claim: self.claim.as_ref().map(Lat::of).unwrap_or_default(),
            errors: self.errors,
        }
    }
}

/// All labelers claim and submit on `queue` for `seconds`.
async fn round(svc: &Anvil, labelers: &[Principal], queue: Uuid, seconds: f64) -> anyhow::Result<Tally> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for who in labelers {
        let (svc, who) = (svc.clone(), who.clone());
        tasks.push(tokio::spawn(async move {
            let mut t = Tally { claim: Some(histogram()), ..Tally::default() };
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let c = svc.claim(&who, queue).await;
                if let Some(h) = &mut t.claim {
                    record(h, t0.elapsed());
                }
                let c = match c {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    Err(_) => {
                        t.errors += 1;
                        continue;
                    }
                };
                t.gold += u64::from(c.sample.external_id.starts_with("gold-"));
                let req = SubmitLabel { assignment_id: c.assignment.id, payload: json!({"label": "a"}) };
                match svc.submit(&who, &req).await {
                    Ok(_) => t.labels += 1,
                    Err(_) => t.errors += 1,
                }
            }
            t
        }));
    }
    let mut out = Tally::default();
    for task in tasks {
        out.add(task.await?);
    }
    out.seconds = start.elapsed().as_secs_f64();
    Ok(out)
}
