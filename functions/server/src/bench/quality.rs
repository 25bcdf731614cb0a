//! `quality`: the quality report (`GET /v1/queues/{id}/quality`, here `Anvil::queue_quality` in-process) of a
//! queue of N samples × 3 labels, on Postgres and on the embedded SQLite store, next to its floor: reading the
//! same labels with one bare `SELECT` and nothing else, in the same run. The labels are seeded in SQL: 20
//! labelers, a choice field answered right 70 % of the time, a rating and a multi choice.
//!
//! The report is computed from the stored labels on each call (not kept incrementally): one keyset scan of
//! the queue's labels, page by page, into compact per-field arrays, then every measure in O(labels).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anvil_core::auth::{AuthMethod, AuthSettings, JwtVerifier, KeyConfig, Principal, Secret, random_secret};
use anvil_core::config::Config;
use anvil_core::domain::{Subject, TenantId};
use anvil_core::quality::Collector;
use anvil_core::service::Anvil;
use anvil_core::store::Store;
use anvil_core::store::postgres::{self, PgStore};
use anvil_core::store::sqlite::{Durability, SqliteStore};
use anvil_types::{CreateQueue, QualityReport, Role};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::{Check, f, print_json, print_table, seq_uuid_sql, uuid_prefix};

#[derive(Debug, Clone, clap::Args)]
pub struct QualityArgs {
    /// Postgres (its owner or a superuser: the labels are seeded in SQL); without it and without
    /// DATABASE_URL only the SQLite store runs.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Samples in the queue; each gets 3 labels.
    #[arg(long, default_value_t = 100_000)]
    pub samples: i64,
    /// Timed runs of the report and of its floor (alternating); the medians are reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
}

const TENANT: &str = "bench-quality";
const OVERLAP: i64 = 3;
const LABELERS: i64 = 20;

#[derive(Debug, Serialize)]
struct StoreRun {
    store: &'static str,
    samples: i64,
    labels: u64,
    seed_seconds: f64,
    floor_ms: f64,
    report_ms: f64,
    report_over_floor: f64,
    /// The report's two halves: reading its pages through the store, and computing on rows in memory.
    read_ms: f64,
    compute_ms: f64,
    target_ms: f64,
    within_target: bool,
    sentiment_alpha: Option<f64>,
}

pub async fn run_quality(cfg: &Config, a: QualityArgs) -> anyhow::Result<()> {
    let mut check = Check::new();
    let mut runs = Vec::new();
    let pg_url =
        a.database_url.clone().or_else(|| cfg.database_url.clone()).filter(|u| u.starts_with("postgres"));
    if let Some(url) = pg_url {
        runs.push(postgres_run(&url, &a, &mut check).await?);
    }
    runs.push(sqlite_run(&a, &mut check).await?);
    if let [pg, lite] = runs.as_slice() {
        // The same seeded labels through either store give the same report.
        check.that(pg.sentiment_alpha == lite.sentiment_alpha, "postgres and sqlite: the same α");
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.store.to_string(),
                r.labels.to_string(),
                f(r.floor_ms),
                f(r.report_ms),
                format!("{:.2}", r.report_over_floor),
                format!("{} + {}", f(r.read_ms), f(r.compute_ms)),
                format!("{} ({})", f(r.target_ms), if r.within_target { "met" } else { "MISSED" }),
            ]
        })
        .collect();
    print_table(
        &format!(
            "anvil bench quality: report of {} samples × {OVERLAP} labels (median of {})",
            a.samples, a.runs
        ),
        &[
            "store",
            "labels",
            "floor ms (bare SELECT)",
            "report ms",
            "report / floor",
            "read + compute ms",
            "target ms",
        ],
        &rows,
    );
    println!("  check: {}", check.cell());
    print_json("quality", json!({"ok": check.ok, "check": check, "runs": runs}));
    Ok(())
}

fn schema() -> serde_json::Value {
    json!({"fields": [
        {"name": "sentiment", "kind": "single_choice", "options": ["pos", "neg", "neu"]},
        {"name": "stars", "kind": "rating", "max": 5},
        {"name": "tags", "kind": "multi_choice", "options": ["x", "y", "z"], "required": false}
    ]})
}

/// A pseudo-random digit 0..9 of the integer SQL expression `x` (the same in Postgres and SQLite).
fn digit(x: &str) -> String {
    format!("((({x}) * 2654435761) % 1000003 % 10)")
}

/// The three answers of label `k` (0..3) of the sample with `order_key` `n`, as SQL expressions:
/// (sentiment, stars, tags as JSON text). The true class is n % 3; a labeler gives it 7 times in 10.
fn answers(n: &str, k: &str) -> (String, String, String) {
    let x = format!("{n} * 3 + {k}");
    let cls =
        format!("(CASE WHEN {} < 7 THEN {n} % 3 ELSE {} % 3 END)", digit(&x), digit(&format!("{x} + 7")));
    let sentiment = format!("(CASE {cls} WHEN 0 THEN 'pos' WHEN 1 THEN 'neg' ELSE 'neu' END)");
    let stars = format!("(1 + ({n} % 5 + {} % 2) % 5)", digit(&format!("{x} + 11")));
    let tags = format!(
        "(CASE {} % 4 WHEN 0 THEN '[]' WHEN 1 THEN '[\"x\"]' WHEN 2 THEN '[\"x\",\"y\"]' ELSE '[\"z\"]' END)",
        digit(&format!("{n} * 5 + {k} % 2"))
    );
    (sentiment, stars, tags)
}

fn labeler_sql(n: &str, k: &str) -> String {
    format!("'labeler-' || (({n} + {k} * 7) % {LABELERS})")
}

fn principal() -> anyhow::Result<Principal> {
    Ok(Principal {
        tenant: TenantId::parse(TENANT).ok_or_else(|| anyhow::anyhow!("tenant"))?,
        subject: Subject::parse("bench-auditor").ok_or_else(|| anyhow::anyhow!("subject"))?,
        role: Role::Auditor,
        method: AuthMethod::Jwt,
    })
}

pub(super) fn anvil(store: Arc<dyn Store>) -> anyhow::Result<Anvil> {
    let keys = KeyConfig { hs256_secret: Some(Secret::new(random_secret()?)), ..Default::default() };
    Ok(Anvil::new(store, Arc::new(JwtVerifier::new(AuthSettings::default(), keys)?)))
}

async fn create_queue(store: &dyn Store, n: i64) -> anyhow::Result<Uuid> {
    let p = principal()?;
    let q = store
        .create_queue(
            &p.tenant,
            &p.subject,
            &CreateQueue {
                name: format!("quality {n} {}", Uuid::now_v7().simple()),
                description: String::new(),
                overlap: OVERLAP as i32,
                lease_seconds: 300,
                policy: Default::default(),
                schema: serde_json::from_value(schema())?,
            },
        )
        .await?;
    Ok(q.id)
}

/// Alternates the floor and the report `runs` times after one warm-up of each; answers the medians (ms) and
/// the last report.
async fn measure<F, R>(
    runs: usize,
    mut floor: impl FnMut() -> F,
    mut report: impl FnMut() -> R,
) -> anyhow::Result<(f64, f64, QualityReport)>
where
    F: std::future::Future<Output = anyhow::Result<usize>>,
    R: std::future::Future<Output = anyhow::Result<QualityReport>>,
{
    floor().await?;
    let mut last = report().await?;
    let (mut fl, mut rep) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        floor().await?;
        fl.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        last = report().await?;
        rep.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok((median(&mut fl), median(&mut rep), last))
}

/// The report's parts, each the median of `runs`: the store's scan as the service reads it (into memory),
/// and the collector over those rows.
async fn split(store: &dyn Store, q: Uuid, runs: usize) -> anyhow::Result<(f64, f64)> {
    let p = principal()?;
    let queue = store.get_queue(&p.tenant, q).await?;
    let (mut read, mut compute) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let mut rows = Vec::new();
        store.quality_scan(&p.tenant, q, false, &mut |r| rows.push(r)).await?;
        read.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let mut c = Collector::new(&queue.schema);
        for r in &rows {
            c.add(r);
        }
        let report = c.report(q, queue.overlap, queue.schema_version, &Default::default());
        compute.push(t.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(report.labels == rows.len() as u64, "the collector counted every row");
    }
    Ok((median(&mut read), median(&mut compute)))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn verify(store: &'static str, n: i64, r: &QualityReport, check: &mut Check) -> Option<f64> {
    let labels = u64::try_from(n * OVERLAP).unwrap_or(0);
    check.that(r.labels == labels, format!("{store}: {labels} labels read ({})", r.labels));
    check.that(r.samples == u64::try_from(n).unwrap_or(0), format!("{store}: {n} samples ({})", r.samples));
    check.that(
        r.labelers.len() as i64 == LABELERS.min(n * OVERLAP),
        format!("{store}: {} labelers", r.labelers.len()),
    );
    let alpha = r.fields.first().and_then(|f| f.value);
    // 70 % right of 3 classes: α nominal near 0.4; a broken measure lands far from it.
    check.that(
        alpha.is_some_and(|a| (0.1..0.8).contains(&a)) || n < 100,
        format!("{store}: sentiment α nominal plausible ({alpha:?})"),
    );
    check.that(r.fields.iter().all(|f| f.measure.is_some()), format!("{store}: every field measured"));
    alpha
}

async fn postgres_run(url: &str, a: &QualityArgs, check: &mut Check) -> anyhow::Result<StoreRun> {
    use sqlx::ConnectOptions;
    postgres::migrate(url).await?;
    let owner_opts = url.parse::<sqlx::postgres::PgConnectOptions>()?.disable_statement_logging();
    let owner = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_with(owner_opts).await?;
    let opts: sqlx::postgres::PgConnectOptions = url.parse()?;
    let store = Arc::new(PgStore::new(postgres::app_pool(opts, 4, Duration::from_secs(60))));
    let n = a.samples;
    let q = create_queue(store.as_ref(), n).await?;
    let t0 = Instant::now();
    let prefix = uuid_prefix();
    let sid = seq_uuid_sql(&prefix, "g");
    let aid = seq_uuid_sql(&uuid_prefix(), "s.order_key * 3 + k");
    let lid = seq_uuid_sql(&uuid_prefix(), "s.order_key * 3 + k");
    let (sentiment, stars, tags) = answers("s.order_key", "k");
    let who = labeler_sql("s.order_key", "k");
    let mut tx = owner.begin().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO samples (tenant_id, id, queue_id, external_id, payload, priority, rank, order_key, open_slots)
         SELECT $1, {sid}, $2, 's' || g, jsonb_build_object('text', 'sample text number ' || g), 0, 0, g, 0
         FROM generate_series(1, $3) g"
    )))
    .bind(TENANT)
    .bind(q)
    .bind(n)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE queues SET sample_count = $2 WHERE id = $1")
        .bind(q)
        .bind(n)
        .execute(&mut *tx)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO assignments (tenant_id, id, queue_id, sample_id, labeler, state, schema_version, expires_at,
                                  finished_at)
         SELECT $1, {aid}, $2, s.id, {who}, 'submitted', 1, now(), now()
         FROM samples s CROSS JOIN generate_series(0, {}) k WHERE s.queue_id = $2",
        OVERLAP - 1
    )))
    .bind(TENANT)
    .bind(q)
    .execute(&mut *tx)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO labels (tenant_id, id, queue_id, sample_id, assignment_id, labeler, schema_version, payload)
         SELECT $1, {lid}, s.queue_id, s.id, {aid}, {who}, 1,
                jsonb_build_object('sentiment', {sentiment}, 'stars', {stars}, 'tags', ({tags})::jsonb)
         FROM samples s CROSS JOIN generate_series(0, {}) k WHERE s.queue_id = $2",
        OVERLAP - 1
    )))
    .bind(TENANT)
    .bind(q)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    for table in ["samples", "assignments", "labels"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM (ANALYZE) {table}"))).execute(&owner).await?;
    }
    let seed_seconds = t0.elapsed().as_secs_f64();
    let svc = anvil(store.clone())?;
    let p = principal()?;
    // The floor as the owner: a bare read of the same labels, no row-level security in the way.
    let pool = owner.clone();
    let (floor_ms, report_ms, report) = measure(
        a.runs,
        || {
            let pool = pool.clone();
            async move {
                let rows = sqlx::query(
                    "SELECT id, sample_id, labeler, payload FROM labels WHERE queue_id = $1 AND tenant_id = $2",
                )
                .bind(q)
                .bind(TENANT)
                .fetch_all(&pool)
                .await?;
                Ok(rows.len())
            }
        },
        || async { Ok(svc.queue_quality(&p, q).await?) },
    )
    .await?;
    let (read_ms, compute_ms) = split(store.as_ref(), q, a.runs).await?;
    owner.close().await;
    let alpha = verify("postgres", n, &report, check);
    Ok(StoreRun {
        store: "postgres",
        samples: n,
        labels: report.labels,
        seed_seconds,
        floor_ms,
        report_ms,
        report_over_floor: report_ms / floor_ms.max(1e-6),
        read_ms,
        compute_ms,
        target_ms: 1000.0,
        within_target: report_ms <= 1000.0,
        sentiment_alpha: alpha,
    })
}

async fn sqlite_run(a: &QualityArgs, check: &mut Check) -> anyhow::Result<StoreRun> {
    let dir = tempfile::Builder::new().prefix("anvil-bench-quality-").tempdir()?;
    let store = Arc::new(SqliteStore::open(&dir.path().join("anvil.db"), Durability::Full).await?);
    let n = a.samples;
    let q = create_queue(store.as_ref(), n).await?;
    let t0 = Instant::now();
    // Ids as the application writes them (hyphenated UUIDs), time-ordered by the sequence number.
    let p = uuid_prefix();
    let base = format!("{}-{}-{}", &p[0..8], &p[8..12], &p[12..16]);
    let id = |kind: u32, seq: &str| format!("printf('{base}-8%03x-%012x', {kind}, {seq})");
    let (sid, aid, lid) = (id(0, "g.n"), id(1, "s.order_key * 3 + k.k"), id(2, "s.order_key * 3 + k.k"));
    let (sentiment, stars, tags) = answers("s.order_key", "k.k");
    let who = labeler_sql("s.order_key", "k.k");
    let now = anvil_core::store::sqlite::now_ms();
    let ks = format!("(SELECT value AS k FROM json_each('{}'))", json!((0..OVERLAP).collect::<Vec<_>>()));
    let mut tx = store.writer().begin().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?3)
         INSERT INTO samples (tenant_id, id, queue_id, external_id, payload, priority, rank, order_key, open_slots,
                              created_at)
         SELECT ?1, {sid}, ?2, 's' || g.n, json_object('text', 'sample text number ' || g.n), 0, 0, g.n, 0, ?4
         FROM g"
    )))
    .bind(TENANT)
    .bind(q.to_string())
    .bind(n)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE queues SET sample_count = ?2 WHERE id = ?1")
        .bind(q.to_string())
        .bind(n)
        .execute(&mut *tx)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO assignments (tenant_id, id, queue_id, sample_id, labeler, state, schema_version, leased_at,
                                  expires_at, finished_at)
         SELECT ?1, {aid}, ?2, s.id, {who}, 'submitted', 1, ?3, ?3, ?3
         FROM samples s, {ks} k WHERE s.queue_id = ?2"
    )))
    .bind(TENANT)
    .bind(q.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO labels (tenant_id, id, queue_id, sample_id, assignment_id, labeler, schema_version, payload,
                             created_at)
         SELECT ?1, {lid}, ?2, s.id, {aid}, {who}, 1,
                json_object('sentiment', {sentiment}, 'stars', {stars}, 'tags', json({tags})), ?3
         FROM samples s, {ks} k WHERE s.queue_id = ?2"
    )))
    .bind(TENANT)
    .bind(q.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("ANALYZE").execute(store.writer()).await?;
    let seed_seconds = t0.elapsed().as_secs_f64();
    let svc = anvil(store.clone())?;
    let p = principal()?;
    let (floor_ms, report_ms, report) = measure(
        a.runs,
        || {
            let store = store.clone();
            async move {
                let rows = sqlx::query(
                    "SELECT id, sample_id, labeler, payload FROM labels WHERE queue_id = ?1 AND tenant_id = ?2",
                )
                .bind(q.to_string())
                .bind(TENANT)
                .fetch_all(store.readers())
                .await?;
                Ok(rows.len())
            }
        },
        || async { Ok(svc.queue_quality(&p, q).await?) },
    )
    .await?;
    let (read_ms, compute_ms) = split(store.as_ref(), q, a.runs).await?;
    let alpha = verify("sqlite", n, &report, check);
    Ok(StoreRun {
        store: "sqlite",
        samples: n,
        labels: report.labels,
        seed_seconds,
        floor_ms,
        report_ms,
        report_over_floor: report_ms / floor_ms.max(1e-6),
        read_ms,
        compute_ms,
        target_ms: 3000.0,
        within_target: report_ms <= 3000.0,
        sentiment_alpha: alpha,
    })
}
