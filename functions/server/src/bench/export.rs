//! `export`: a queue of N labeled samples (seeded in SQL, time-ordered ids as the application makes them)
//! exported by the real worker — a child `anvil worker` process (Worker over PgStore + the local blob
//! directory in a temporary data directory), so its peak RSS (VmHWM from /proc) is the export's alone.
//! A smaller export first, in its own worker, shows whether memory grows with the row count.

use std::time::{Duration, Instant};

use anvil_core::config::Config;
use anvil_core::domain::{Subject, TenantId};
use anvil_core::store::TaskStore;
use anvil_core::store::postgres::{self, PgStore};
use anvil_types::{CreateExport, ExportFilter, FileFormat, TaskState};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{ConnectOptions, PgPool};
use uuid::Uuid;

use super::{Check, f, print_json, print_table, rss_kib, seq_uuid_sql, stop_child, uuid_prefix};

#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// Postgres (its owner or a superuser: the labels are seeded in SQL).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Labels in the big export; a first export of a tenth of that shows the memory trend.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: i64,
    /// Export format: jsonl or csv.
    #[arg(long, default_value = "jsonl")]
    pub format: String,
    /// Export mode: labels (one row per label) or final (one row per sample, with its final answer).
    #[arg(long, default_value = "labels")]
    pub mode: String,
}

const TENANT: &str = "bench-export";

#[derive(Debug, Serialize)]
struct ExportRun {
    rows: i64,
    bytes: i64,
    seconds: f64,
    rows_per_sec: f64,
    mb_per_sec: f64,
    worker_idle_rss_mib: f64,
    worker_peak_rss_mib: f64,
    seed_seconds: f64,
}

pub async fn run_export(cfg: &Config, a: ExportArgs) -> anyhow::Result<()> {
    let url = super::postgres_url(a.database_url.as_deref(), cfg)?;
    let mode = anvil_types::ExportMode::parse(&a.mode)
        .ok_or_else(|| anyhow::anyhow!("--mode is labels or final, not {}", a.mode))?;
    let format = match a.format.as_str() {
        "csv" => FileFormat::Csv,
        _ => FileFormat::Jsonl,
    };
    postgres::migrate(&url).await?;
    // seeding statements take seconds: no slow-statement warnings for them
    let owner_opts = url.parse::<sqlx::postgres::PgConnectOptions>()?.disable_statement_logging();
    let owner = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_with(owner_opts).await?;
    let opts: sqlx::postgres::PgConnectOptions = url.parse()?;
    let store = PgStore::new(postgres::app_pool(opts, 2, Duration::from_secs(30)));
    let load0 = super::load_avg();
    let mut runs = Vec::new();
    let mut check = Check::new();
    let small = (a.rows / 10).max(1);
    for n in [small, a.rows] {
        let t0 = Instant::now();
        let queue = seed(&owner, n).await?;
        let seed_seconds = t0.elapsed().as_secs_f64();
        runs.push(export_once(&url, &store, queue, n, (format, mode), seed_seconds, &mut check).await?);
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.rows.to_string(),
                format!("{:.1}", r.bytes as f64 / 1e6),
                format!("{:.2}", r.seconds),
                f(r.rows_per_sec),
                f(r.mb_per_sec),
                format!("{:.1}", r.worker_idle_rss_mib),
                format!("{:.1}", r.worker_peak_rss_mib),
            ]
        })
        .collect();
    print_table(
        &format!(
            "anvil bench export ({}, {} mode): child `anvil worker`, local blob directory",
            format.as_str(),
            mode.as_str()
        ),
        &["rows", "MB", "seconds", "rows/s", "MB/s", "worker idle RSS MiB", "worker peak RSS MiB"],
        &rows,
    );
    let growth = match (runs.first(), runs.last()) {
        (Some(s), Some(b)) => b.worker_peak_rss_mib - s.worker_peak_rss_mib,
        _ => 0.0,
    };
    println!(
        "  peak RSS growth from {} to {} rows: {growth:+.1} MiB; check: {}",
        small,
        a.rows,
        check.cell()
    );
    print_json(
        "export",
        json!({
            "ok": check.ok,
            "check": check,
            "format": format.as_str(),
            "mode": mode.as_str(),
            "runs": runs,
            "peak_rss_growth_mib": growth,
            "load_avg": [load0, super::load_avg()],
        }),
    );
    owner.close().await;
    Ok(())
}

async fn export_once(
    url: &str,
    store: &PgStore,
    queue: Uuid,
    n: i64,
    (format, mode): (FileFormat, anvil_types::ExportMode),
    seed_seconds: f64,
    check: &mut Check,
) -> anyhow::Result<ExportRun> {
    let t = TenantId::parse(TENANT).ok_or_else(|| anyhow::anyhow!("tenant"))?;
    let actor = Subject::parse("bench-admin").ok_or_else(|| anyhow::anyhow!("subject"))?;
    let data = tempfile::Builder::new().prefix("anvil-bench-export-").tempdir()?;
    let mut worker = tokio::process::Command::new(std::env::current_exe()?)
        .arg("worker")
        .env("DATABASE_URL", url)
        .env("ANVIL_DATA_DIR", data.path())
        .env("ANVIL_WORKERS", "1")
        .env("ANVIL_SHUTDOWN_GRACE_SECS", "2")
        .env_remove("ANVIL_S3_BUCKET")
        .env_remove("ANVIL_SQS_QUEUE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let pid = worker.id().ok_or_else(|| anyhow::anyhow!("the worker exited at once"))?;
    // let it start (migrations, pool) before the export exists, so the clock measures the export alone
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let idle = rss_kib(pid).1;
    let req = CreateExport { format, filter: ExportFilter::default(), mode };
    let id = store.create_export(&t, &actor, queue, &req).await?.export.id;
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut peak = 0;
    let mut started: Option<Instant> = None;
    let rec = loop {
        peak = peak.max(rss_kib(pid).0);
        let rec = store.get_export(&t, id).await?;
        match rec.export.state {
            TaskState::Running if started.is_none() => started = Some(Instant::now()),
            TaskState::Succeeded => break rec,
            TaskState::Failed => anyhow::bail!("the export failed: {:?}", rec.export.error),
            _ => {}
        }
        anyhow::ensure!(Instant::now() < deadline, "the export did not finish in 30 min");
        if let Ok(Some(status)) = worker.try_wait() {
            anyhow::bail!("the worker exited ({status}) before the export finished");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let seconds = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    peak = peak.max(rss_kib(pid).0);
    stop_child(&mut worker).await;
    let rows = rec.export.rows.unwrap_or(-1);
    let bytes = rec.export.bytes.unwrap_or(-1);
    check.that(rows == n, format!("{n} labels exported ({rows})"));
    // the file as written, against the recorded size and digest
    let path = data.path().join("blobs").join(&rec.object_key);
    let (size, sha) = file_digest(&path).await?;
    check.that(i64::try_from(size).unwrap_or(-1) == bytes, format!("file size {size} = recorded {bytes}"));
    check.that(rec.export.sha256.as_deref() == Some(sha.as_str()), "file sha256 = recorded sha256");
    let mib = |k: u64| k as f64 / 1024.0;
    Ok(ExportRun {
        rows,
        bytes,
        seconds,
        rows_per_sec: if seconds > 0.0 { rows as f64 / seconds } else { 0.0 },
        mb_per_sec: if seconds > 0.0 { bytes as f64 / 1e6 / seconds } else { 0.0 },
        worker_idle_rss_mib: mib(idle),
        worker_peak_rss_mib: mib(peak),
        seed_seconds,
    })
}

async fn file_digest(path: &std::path::Path) -> anyhow::Result<(u64, String)> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// A queue of `n` samples, each with one submitted assignment and its label (as tests/aws.rs seeds them,
/// with time-ordered ids).
async fn seed(pool: &PgPool, n: i64) -> anyhow::Result<Uuid> {
    let q = Uuid::now_v7();
    let schema = json!({"fields": [{"name": "label", "kind": "single_choice", "options": ["a", "b"]}]});
    let sid = seq_uuid_sql(&uuid_prefix(), "g");
    let aid = seq_uuid_sql(&uuid_prefix(), "s.order_key");
    let lid = seq_uuid_sql(&uuid_prefix(), "s.order_key");
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(TENANT)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO queues (tenant_id, id, name, overlap, lease_seconds, policy, schema_version, sample_count)
         VALUES ($1, $2, $3, 1, 300, 'priority', 1, $4)",
    )
    .bind(TENANT)
    .bind(q)
    .bind(format!("export {n} {}", q.simple()))
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
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO assignments (tenant_id, id, queue_id, sample_id, labeler, state, schema_version, expires_at,
                                  finished_at)
         SELECT $1, {aid}, $2, s.id, 'labeler-' || (s.order_key % 7), 'submitted', 1, now(), now()
         FROM samples s WHERE s.queue_id = $2"
    )))
    .bind(TENANT)
    .bind(q)
    .execute(&mut *tx)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO labels (tenant_id, id, queue_id, sample_id, assignment_id, labeler, schema_version, payload,
                             created_at)
         SELECT $1, {lid}, s.queue_id, s.id, a.id, a.labeler, 1,
                jsonb_build_object('label', CASE WHEN s.order_key % 2 = 0 THEN 'a' ELSE 'b' END),
                now() - interval '1 minute'
         FROM samples s JOIN assignments a ON a.sample_id = s.id WHERE s.queue_id = $2"
    )))
    .bind(TENANT)
    .bind(q)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("VACUUM (ANALYZE) labels").execute(pool).await?;
    sqlx::query("VACUUM (ANALYZE) samples").execute(pool).await?;
    Ok(q)
}
