//! `scale`: does a claim stay O(1) as a queue grows, as most of it gets labeled, and with overlap k = 3 when
//! one labeler runs far ahead of the others (DESIGN.md: the obvious claim is O(that labeler's backlog))?
//!
//! Queues are seeded straight in Anvil's schema with `generate_series` (as the connecting owner), then
//! claimed through the real store, `PgStore::claim`, by one labeler at a time (latency, not throughput);
//! each timed claim is followed by an untimed `PgStore::submit`, so the next claim is a new one and not the
//! idempotent answer of a live lease.

use std::time::{Duration, Instant};

use anvil_core::config::Config;
use anvil_core::domain::{Subject, TenantId};
use anvil_core::store::Store;
use anvil_core::store::postgres::{self, PgStore};
use serde::Serialize;
use serde_json::json;
use sqlx::{ConnectOptions, PgPool, Row};
use uuid::Uuid;

use super::{Check, Lat, f, histogram, print_json, print_table, record, seq_uuid_sql, uuid_prefix};

#[derive(Debug, Clone, clap::Args)]
pub struct ScaleArgs {
    /// Postgres (its owner or a superuser: the queues are seeded in SQL).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Queue sizes, in samples.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    pub sizes: Vec<i64>,
    /// Timed claims per case (after 10% untimed warm-up claims).
    #[arg(long, default_value_t = 300)]
    pub claims: usize,
    /// Share of the queue already labeled in the "mostly labeled" and "k = 3, one labeler ahead" cases.
    #[arg(long, default_value_t = 0.9)]
    pub labeled_share: f64,
    /// Also measure claims on a scratch database right after its first import, before any ANALYZE (needs
    /// CREATEDB; at most 20 s of claims per size).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub new_database: bool,
}

const TENANT: &str = "bench-scale";

/// How a queue is seeded.
#[derive(Debug, Clone, Copy, Serialize)]
enum Shape {
    /// overlap 1, nothing labeled
    Fresh,
    /// overlap 1, the first `labeled_share` of the queue labeled (by 7 earlier labelers)
    MostlyLabeled,
    /// overlap 3, labeler `ahead` labeled the first `labeled_share` while the two others did nothing yet
    OverlapOneAhead,
}

#[derive(Debug, Clone, Serialize)]
struct CaseResult {
    samples: i64,
    case: String,
    overlap: i32,
    labeled: i64,
    labeler: String,
    claim: Lat,
    seed_seconds: f64,
}

/// A seeded case waiting for its claims.
struct Pending {
    result: CaseResult,
    who: Subject,
    queue: Uuid,
    hist: hdrhistogram::Histogram<u64>,
}

/// `n` claims by `who`, each followed by an untimed submit; recorded into `into` when given.
async fn claims_into(
    store: &PgStore,
    t: &TenantId,
    who: &Subject,
    queue: Uuid,
    n: usize,
    mut into: Option<&mut hdrhistogram::Histogram<u64>>,
) -> anyhow::Result<()> {
    let payload = json!({"label": "a"});
    for _ in 0..n {
        let t0 = Instant::now();
        let c = store.claim(t, who, queue).await?;
        let took = t0.elapsed();
        let Some(c) = c else { break };
        if let Some(h) = into.as_deref_mut() {
            record(h, took);
        }
        store.submit(t, who, c.assignment.id, &payload, &anvil_core::schema::validate_label).await?;
    }
    Ok(())
}

pub async fn run_scale(cfg: &Config, a: ScaleArgs) -> anyhow::Result<()> {
    let url = super::postgres_url(a.database_url.as_deref(), cfg)?;
    postgres::migrate(&url).await?;
    // seeding statements take seconds: no slow-statement warnings for them
    let owner_opts = url.parse::<sqlx::postgres::PgConnectOptions>()?.disable_statement_logging();
    let owner = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_with(owner_opts).await?;
    let opts: sqlx::postgres::PgConnectOptions = url.parse()?;
    let store = PgStore::new(postgres::app_pool(opts, 4, Duration::from_secs(30)));
    let tenant = TenantId::parse(TENANT).ok_or_else(|| anyhow::anyhow!("tenant"))?;
    let load0 = super::load_avg();
    let mut results = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();
    let mut explains = Vec::new();
    let largest = a.sizes.iter().copied().max().unwrap_or(0);
    for &n in &a.sizes {
        if a.new_database {
            let t0 = Instant::now();
            match first_import(&url, n, a.claims).await {
                Ok((lat, plan)) => {
                    results.push(CaseResult {
                        samples: n,
                        case: "new database, first import, before ANALYZE".into(),
                        overlap: 1,
                        labeled: 0,
                        labeler: "fresh".into(),
                        claim: lat,
                        seed_seconds: t0.elapsed().as_secs_f64(),
                    });
                    explains.push((format!("{n} samples, new database, first import, before ANALYZE"), plan));
                }
                Err(e) => println!("  (new-database case skipped: {e:#})"),
            }
        }
        let labeled = ((n as f64) * a.labeled_share.clamp(0.0, 0.99)) as i64;
        for shape in [Shape::Fresh, Shape::MostlyLabeled, Shape::OverlapOneAhead] {
            let t0 = Instant::now();
            let (queue, overlap, done) = seed(&owner, n, labeled, shape).await?;
            let seed_seconds = t0.elapsed().as_secs_f64();
            let labelers: &[&str] = match shape {
                Shape::OverlapOneAhead => &["ahead", "behind"],
                _ => &["fresh"],
            };
            for who in labelers {
                let subject = Subject::parse(who).ok_or_else(|| anyhow::anyhow!("subject"))?;
                if n == largest {
                    let (case, plan) = explain(&owner, queue, who, shape).await?;
                    explains.push((format!("{n} samples, {case}"), plan));
                }
                let case = match (shape, *who) {
                    (Shape::Fresh, _) => "fresh queue, k=1".to_string(),
                    (Shape::MostlyLabeled, _) => format!("{:.0}% labeled, k=1", a.labeled_share * 100.0),
                    (Shape::OverlapOneAhead, "ahead") => {
                        format!("k=3, labeler {:.0}% ahead (cursor)", a.labeled_share * 100.0)
                    }
                    (Shape::OverlapOneAhead, _) => "k=3, a labeler behind it".to_string(),
                };
                pending.push(Pending {
                    result: CaseResult {
                        samples: n,
                        case,
                        overlap,
                        labeled: done,
                        labeler: who.to_string(),
                        claim: Lat::default(),
                        seed_seconds,
                    },
                    who: subject,
                    queue,
                    hist: histogram(),
                });
            }
        }
    }
    // Every queue is seeded; now the claims, interleaved: ROUNDS passes over all cases, each taking its
    // share of the claims. A claim's latency here is mostly its commit (fsync), whose cost on this disk
    // changes from one minute to the next; interleaving spreads those changes over every case alike, so the
    // ratios between sizes compare the claims and not the moments they ran at.
    const ROUNDS: usize = 10;
    let per_round = a.claims.div_ceil(ROUNDS);
    for p in &mut pending {
        claims_into(&store, &tenant, &p.who, p.queue, 2, None).await?; // warm-up
    }
    for _ in 0..ROUNDS {
        for p in &mut pending {
            claims_into(&store, &tenant, &p.who, p.queue, per_round, Some(&mut p.hist)).await?;
        }
    }
    for p in pending {
        let mut r = p.result;
        r.claim = Lat::of(&p.hist);
        results.push(r);
    }

    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                r.samples.to_string(),
                r.case.clone(),
                r.claim.count.to_string(),
                f(r.claim.p50_ms),
                f(r.claim.p95_ms),
                f(r.claim.p99_ms),
                f(r.claim.max_ms),
                format!("{:.1}", r.seed_seconds),
            ]
        })
        .collect();
    print_table(
        "anvil bench scale: PgStore::claim latency by queue size (one labeler at a time)",
        &["samples", "case", "claims", "p50 ms", "p95 ms", "p99 ms", "max ms", "seed s"],
        &rows,
    );
    // growth: each case's p50 on the largest queue against the same case on the smallest
    let smallest = a.sizes.iter().copied().min().unwrap_or(0);
    let mut growth = Vec::new();
    let mut check = Check::new();
    for r in results.iter().filter(|r| r.samples == largest) {
        if let Some(s) = results.iter().find(|s| s.samples == smallest && s.case == r.case) {
            let ratio = if s.claim.p50_ms > 0.0 { r.claim.p50_ms / s.claim.p50_ms } else { 0.0 };
            growth.push(json!({"case": r.case, "small": smallest, "large": largest, "p50_ratio": ratio}));
            println!("  p50 {} / {}: {:<40} {:.2}x", largest, smallest, r.case, ratio);
        }
    }
    for r in &results {
        let want = if r.case.starts_with("new database") { 1 } else { a.claims as u64 };
        check.that(
            r.claim.count >= want,
            format!("{} / {}: {} claims answered", r.samples, r.case, r.claim.count),
        );
    }
    for e in &explains {
        println!("\nEXPLAIN (ANALYZE, BUFFERS) of the claim, {}:\n{}", e.0, e.1);
    }
    print_json(
        "scale",
        json!({
            "ok": check.ok,
            "check": check,
            "cases": results,
            "p50_growth": growth,
            "explain": explains.iter().map(|(k, v)| json!({"case": k, "plan": v})).collect::<Vec<_>>(),
            "load_avg": [load0, super::load_avg()],
        }),
    );
    owner.close().await;
    Ok(())
}

/// Up to `n` timed claims (after 10% untimed warm-up ones), each followed by an untimed submit, stopping
/// early once `budget` has passed (a claim may take seconds before the first ANALYZE).
async fn claims_within(
    store: &PgStore,
    t: &TenantId,
    who: &Subject,
    queue: Uuid,
    n: usize,
    budget: Duration,
) -> anyhow::Result<Lat> {
    let mut h = histogram();
    let warmup = (n / 10).max(2);
    let payload = json!({"label": "a"});
    let start = Instant::now();
    for i in 0..warmup + n {
        if start.elapsed() > budget {
            break;
        }
        let t0 = Instant::now();
        let c = store.claim(t, who, queue).await?;
        let took = t0.elapsed();
        let Some(c) = c else { break };
        if i >= warmup {
            record(&mut h, took);
        }
        store.submit(t, who, c.assignment.id, &payload, &anvil_core::schema::validate_label).await?;
    }
    Ok(Lat::of(&h))
}

/// Seeds a queue of `n` samples in one transaction; returns (queue, overlap, labeled samples).
async fn seed(pool: &PgPool, n: i64, labeled: i64, shape: Shape) -> anyhow::Result<(Uuid, i32, i64)> {
    let out = seed_only(pool, n, labeled, shape).await?;
    // as autovacuum would have by then: fresh statistics and a visibility map
    sqlx::query("VACUUM (ANALYZE) samples").execute(pool).await?;
    sqlx::query("VACUUM (ANALYZE) assignments").execute(pool).await?;
    Ok(out)
}

/// Seeds without analyzing (the state right after an import, before autovacuum has looked at it).
async fn seed_only(pool: &PgPool, n: i64, labeled: i64, shape: Shape) -> anyhow::Result<(Uuid, i32, i64)> {
    let (overlap, labeled) = match shape {
        Shape::Fresh => (1, 0),
        Shape::MostlyLabeled => (1, labeled),
        Shape::OverlapOneAhead => (3, labeled),
    };
    let q = Uuid::now_v7();
    let schema = json!({"fields": [{"name": "label", "kind": "single_choice", "options": ["a", "b"]}]});
    let sid = seq_uuid_sql(&uuid_prefix(), "g");
    let aid = seq_uuid_sql(&uuid_prefix(), "s.order_key");
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(TENANT)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO queues (tenant_id, id, name, overlap, lease_seconds, policy, schema_version, sample_count)
         VALUES ($1, $2, $3, $4, 300, 'priority', 1, $5)",
    )
    .bind(TENANT)
    .bind(q)
    .bind(format!("scale {n} {shape:?} {}", q.simple()))
    .bind(overlap)
    .bind(n)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO schema_versions (tenant_id, queue_id, version, schema, hash, created_by)
         VALUES ($1, $2, 1, $3, 'bench', 'bench')",
    )
    .bind(TENANT)
    .bind(q)
    .bind(&schema)
    .execute(&mut *tx)
    .await?;
    // order_key = g: the first `labeled` samples in hand-out order are the labeled ones
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO samples (tenant_id, id, queue_id, external_id, payload, priority, rank, order_key, open_slots)
         SELECT $1, {sid}, $2, 's' || g, jsonb_build_object('text', 'sample text number ' || g), 0, 0, g,
                CASE WHEN g <= $4 THEN $3 - 1 ELSE $3 END
         FROM generate_series(1, $5) g"
    )))
    .bind(TENANT)
    .bind(q)
    .bind(overlap)
    .bind(labeled)
    .bind(n)
    .execute(&mut *tx)
    .await?;
    let labeler = match shape {
        Shape::OverlapOneAhead => "'ahead'",
        _ => "'earlier-' || (s.order_key % 7)",
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO assignments (tenant_id, id, queue_id, sample_id, labeler, state, schema_version, leased_at,
                                  expires_at, finished_at)
         SELECT $1, {aid}, $2, s.id, {labeler}, 'submitted', 1, now(), now(), now()
         FROM samples s WHERE s.queue_id = $2 AND s.order_key <= $3"
    )))
    .bind(TENANT)
    .bind(q)
    .bind(labeled)
    .execute(&mut *tx)
    .await?;
    if matches!(shape, Shape::OverlapOneAhead) && labeled > 0 {
        // what the claims that labeled those samples left behind: the labeler's cursor at the last of them
        sqlx::query(
            "INSERT INTO labeler_cursors (tenant_id, queue_id, labeler, rank, order_key, sample_id)
             SELECT $1, $2, 'ahead', s.rank, s.order_key, s.id FROM samples s
             WHERE s.queue_id = $2 AND s.order_key = $3",
        )
        .bind(TENANT)
        .bind(q)
        .bind(labeled)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok((q, overlap, labeled))
}

/// The candidate search of `anvil_claim` (migrations/0007): the statement whose plan decides what a
/// claim costs as a queue grows. $1 queue, $2 labeler, and after the cursor $3, $4, $5.
fn candidate_sql(after_cursor: bool) -> String {
    format!(
        "SELECT s.id FROM samples s
         WHERE s.queue_id = $1 AND s.open_slots > 0{}
           AND NOT EXISTS (SELECT 1 FROM assignments x WHERE x.sample_id = s.id AND x.labeler = $2 OFFSET 0)
         ORDER BY s.rank, s.order_key, s.id
         LIMIT 1
         FOR UPDATE OF s SKIP LOCKED",
        if after_cursor { "\n           AND (s.rank, s.order_key, s.id) > ($3, $4, $5)" } else { "" }
    )
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of the candidate search `who`'s next claim would run, as the application role
/// with the tenant and the claim function's planner settings, in a transaction that is rolled back.
async fn explain(pool: &PgPool, queue: Uuid, who: &str, shape: Shape) -> anyhow::Result<(String, String)> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL ROLE anvil_app").execute(&mut *tx).await?;
    // what anvil_claim sets: the tenant, and (its SET clause) sorts and bitmap scans off
    sqlx::query(
        "SELECT set_config('app.tenant_id', $1, true), set_config('enable_sort', 'off', true), \
         set_config('enable_bitmapscan', 'off', true)",
    )
    .bind(TENANT)
    .execute(&mut *tx)
    .await?;
    let cursor = sqlx::query(
        "SELECT rank, order_key, sample_id FROM labeler_cursors WHERE queue_id = $1 AND labeler = $2",
    )
    .bind(queue)
    .bind(who)
    .fetch_optional(&mut *tx)
    .await?;
    let overlap = match shape {
        Shape::OverlapOneAhead => 3,
        _ => 1,
    };
    let after_cursor = cursor.is_some() && overlap > 1;
    let path = if after_cursor { "after the labeler's cursor" } else { "from the front" };
    let sql = format!("EXPLAIN (ANALYZE, BUFFERS) {}", candidate_sql(after_cursor));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(queue).bind(who);
    if let (Some(c), true) = (&cursor, overlap > 1) {
        q = q
            .bind(c.try_get::<i32, _>("rank")?)
            .bind(c.try_get::<i64, _>("order_key")?)
            .bind(c.try_get::<Uuid, _>("sample_id")?);
    }
    let rows = q.fetch_all(&mut *tx).await?;
    tx.rollback().await?;
    let plan: Vec<String> = rows.iter().filter_map(|r| r.try_get::<String, _>(0).ok()).collect();
    let name = match shape {
        Shape::Fresh => "fresh queue",
        Shape::MostlyLabeled => "mostly labeled, k=1",
        Shape::OverlapOneAhead => "k=3",
    };
    Ok((format!("{name}, labeler `{who}`, search {path}"), plan.join("\n")))
}

/// A scratch database (`<db>_scale_<pid>`), migrated, with one queue of `n` open samples and no statistics
/// yet: a new deployment's first import before autovacuum's first ANALYZE. Returns the claim latency (at most
/// 20 s of claims) and the claim's plan; the database is dropped.
async fn first_import(url: &str, n: i64, claims_wanted: usize) -> anyhow::Result<(Lat, String)> {
    let mut scratch_url = reqwest::Url::parse(url)?;
    let base = scratch_url.path().trim_start_matches('/').to_string();
    let name = format!("{}_scale_{}", if base.is_empty() { "anvil" } else { &base }, std::process::id());
    scratch_url.set_path(&format!("/{name}"));
    let scratch_url = scratch_url.to_string();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut admin)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await?;
    let run = async {
        postgres::migrate(&scratch_url).await?;
        let opts = scratch_url.parse::<sqlx::postgres::PgConnectOptions>()?.disable_statement_logging();
        let owner =
            sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_with(opts.clone()).await?;
        // autovacuum would analyze the new tables within about a minute, at a moment of its choosing: keep it
        // away so that every claim here runs before any statistics exist
        for t in ["samples", "assignments", "labels", "lineage", "labeler_cursors"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("ALTER TABLE {t} SET (autovacuum_enabled = off)")))
                .execute(&owner)
                .await?;
        }
        let (queue, _, _) = seed_only(&owner, n, 0, Shape::Fresh).await?;
        let plan = explain(&owner, queue, "fresh", Shape::Fresh).await?.1;
        let store = PgStore::new(postgres::app_pool(opts, 2, Duration::from_secs(60)));
        let t = TenantId::parse(TENANT).ok_or_else(|| anyhow::anyhow!("tenant"))?;
        let who = Subject::parse("fresh").ok_or_else(|| anyhow::anyhow!("subject"))?;
        let lat = claims_within(&store, &t, &who, queue, claims_wanted, Duration::from_secs(20)).await?;
        store.pool().close().await;
        owner.close().await;
        Ok::<_, anyhow::Error>((lat, plan))
    }
    .await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut admin)
        .await?;
    run
}
