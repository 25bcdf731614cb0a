//! `anvil bench`: measurements an operator can run to size a deployment, and that CI smoke-tests for
//! correctness (functions/server/tests/bench_smoke.rs). Every mode prints a table for people and one JSON line
//! (`{"bench": "<mode>", ...}`) for scripts; every mode that writes labels ends with a correctness check.
//!
//! - `loop`: N virtual labelers over HTTP against a running Anvil (or one this command starts).
//! - `floor`: the same claim + submit work as bare SQL on scratch tables: what Postgres alone can do.
//! - `compare`: `floor`, the store in-process (no HTTP) and `loop` on the same Postgres, per labeler count,
//!   and each as a ratio of the floor.
//! - `scale`: `PgStore::claim` latency on queues of 10k..1M samples, mostly labeled, and overlap 3 with a
//!   labeler far ahead of the others; `EXPLAIN (ANALYZE, BUFFERS)` of the claim on the largest.
//! - `export`: a 1M-label export by a child `anvil worker`: rows/s and the worker's peak RSS.
//! - `sqlite-loop`: the embedded default (SQLite) over HTTP, and the same two transactions on bare SQLite.
//! - `gold-claim`: the claim with gold injection on and off, alternating, through the service on both stores.
//! - `quality`: the quality report of a 100k × 3-label queue on both stores, beside a bare read of its labels.
//!
//! Disk and CPU speed here vary a lot from day to day (fsync by ~20x), so absolute figures only mean
//! something next to a floor measured in the same run: hence the ratios.

mod export;
mod floor;
mod gold;
mod http;
mod quality;
mod scale;
mod store;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anvil_core::config::Config;
use hdrhistogram::Histogram;
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// Virtual labelers over HTTP against a running Anvil (`--url`), or against one started here on
    /// `--database-url` (or on a temporary SQLite data directory when neither is given).
    Loop(http::LoopArgs),
    /// The same claim + submit work as bare SQL against Postgres, on scratch tables in a scratch schema.
    Floor(floor::FloorArgs),
    /// `floor` then `loop` (an `anvil serve` started here) on the same Postgres, for each labeler count.
    Compare(http::CompareArgs),
    /// Claim latency through `PgStore::claim` on queues of growing size (seeded in SQL).
    Scale(scale::ScaleArgs),
    /// Export labels with a child `anvil worker`: rows/s and the worker's peak RSS.
    Export(export::ExportArgs),
    /// The embedded default (SQLite in a temporary data directory) over HTTP, with its bare-SQLite floor.
    SqliteLoop(http::SqliteLoopArgs),
    /// The quality report of a queue of N samples × 3 labels on Postgres and SQLite, beside a bare read of
    /// the same labels.
    Quality(quality::QualityArgs),
    /// The claim with gold injection on against the claim without it (two queues, same run, alternating).
    GoldClaim(gold::GoldClaimArgs),
}

pub async fn run(cfg: Config, args: BenchArgs) -> anyhow::Result<()> {
    match args.mode {
        Mode::Loop(a) => http::run_loop(&cfg, a).await,
        Mode::Floor(a) => floor::run_floor(&cfg, a).await,
        Mode::Compare(a) => http::run_compare(&cfg, a).await,
        Mode::Scale(a) => scale::run_scale(&cfg, a).await,
        Mode::Export(a) => export::run_export(&cfg, a).await,
        Mode::SqliteLoop(a) => http::run_sqlite_loop(&cfg, a).await,
        Mode::Quality(a) => quality::run_quality(&cfg, a).await,
        Mode::GoldClaim(a) => gold::run_gold_claim(&cfg, a).await,
    }
}

/// `--database-url`, else the configured `DATABASE_URL`; must be Postgres.
fn postgres_url(given: Option<&str>, cfg: &Config) -> anyhow::Result<String> {
    let url = given.map(str::to_string).or_else(|| cfg.database_url.clone()).unwrap_or_default();
    anyhow::ensure!(
        url.starts_with("postgres://") || url.starts_with("postgresql://"),
        "this mode needs --database-url postgres://... (or DATABASE_URL)"
    );
    Ok(url)
}

// ------------------------------------------------------------------------------------------------------------
// Latency, stop condition, machine
// ------------------------------------------------------------------------------------------------------------

/// A latency histogram in microseconds (1 µs .. 10 min, 3 significant digits).
pub(crate) fn histogram() -> Histogram<u64> {
    #[allow(clippy::expect_used)] // constant, valid bounds
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

pub(crate) fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).clamp(1, 600_000_000);
    h.saturating_record(us);
}

/// Percentiles of a histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Lat {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Lat {
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }

    /// `p50 / p95 / p99 / max` for a table cell.
    pub fn cell(&self) -> String {
        format!("{} / {} / {} / {}", f(self.p50_ms), f(self.p95_ms), f(self.p99_ms), f(self.max_ms))
    }
}

/// A compact number for tables: 3 significant digits below 100, integers above.
pub(crate) fn f(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// When a labeling run stops: after `target` labels in all, or at the deadline, whichever comes first.
pub(crate) struct Stop {
    target: u64,
    deadline: Instant,
    done: std::sync::atomic::AtomicU64,
}

impl Stop {
    pub fn new(target: u64, seconds: f64) -> Self {
        Self {
            target,
            deadline: Instant::now() + Duration::from_secs_f64(seconds.max(0.1)),
            done: std::sync::atomic::AtomicU64::new(0),
        }
    }
    pub fn over(&self) -> bool {
        self.done.load(std::sync::atomic::Ordering::Relaxed) >= self.target || Instant::now() >= self.deadline
    }
    pub fn add(&self) {
        self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What one virtual labeler did.
pub(crate) struct WorkerTally {
    pub labels: u64,
    pub claim: Histogram<u64>,
    pub submit: Histogram<u64>,
    pub errors: BTreeMap<String, u64>,
}

impl WorkerTally {
    pub fn new() -> Self {
        Self { labels: 0, claim: histogram(), submit: histogram(), errors: BTreeMap::new() }
    }
    pub fn error(&mut self, what: impl Into<String>) {
        *self.errors.entry(what.into()).or_default() += 1;
    }
}

/// The outcome of one labeling run (loop or floor) at one concurrency.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunResult {
    pub labelers: usize,
    pub labels: u64,
    pub seconds: f64,
    pub labels_per_sec: f64,
    pub claim: Lat,
    pub submit: Lat,
    pub errors: BTreeMap<String, u64>,
    pub check: Check,
    pub load_avg: [f64; 2],
    /// CPU time per label of each process involved (None where it could not be read).
    pub cpu_ms_per_label: Option<CpuPerLabel>,
    /// Postgres's work per label (None when the run is not on Postgres).
    pub pg_work_per_label: Option<PgWorkPerLabel>,
}

impl RunResult {
    pub fn from_tallies(labelers: usize, tallies: Vec<WorkerTally>, elapsed: Duration, load0: f64) -> Self {
        let mut claim = histogram();
        let mut submit = histogram();
        let mut errors = BTreeMap::new();
        let mut labels = 0;
        for t in tallies {
            labels += t.labels;
            let _ = claim.add(&t.claim);
            let _ = submit.add(&t.submit);
            for (k, v) in t.errors {
                *errors.entry(k).or_default() += v;
            }
        }
        let seconds = elapsed.as_secs_f64();
        Self {
            labelers,
            labels,
            seconds,
            labels_per_sec: if seconds > 0.0 { labels as f64 / seconds } else { 0.0 },
            claim: Lat::of(&claim),
            submit: Lat::of(&submit),
            errors,
            check: Check::default(),
            load_avg: [load0, load_avg()],
            cpu_ms_per_label: None,
            pg_work_per_label: None,
        }
    }

    /// Attributes the Postgres work between `before` and `after` to this run's labels.
    pub fn set_pg_work(&mut self, before: Option<&PgWorkSnapshot>, after: Option<&PgWorkSnapshot>) {
        let n = self.labels.max(1) as f64;
        if let (Some(a), Some(b)) = (before, after) {
            self.pg_work_per_label = Some(PgWorkPerLabel {
                buffers: (b.buffers - a.buffers) as f64 / n,
                wal_records: (b.wal_records - a.wal_records) as f64 / n,
                wal_bytes: (b.wal_bytes - a.wal_bytes) / n,
            });
        }
    }

    pub fn pg_work_cell(&self) -> String {
        match &self.pg_work_per_label {
            Some(w) => format!("{:.0} / {:.1} / {:.0}", w.buffers, w.wal_records, w.wal_bytes),
            None => "-".into(),
        }
    }

    /// Attributes the CPU used between `before` and now to this run's labels.
    pub fn set_cpu(&mut self, before: &CpuSnapshot, after: &CpuSnapshot) {
        let n = self.labels.max(1) as f64;
        let per = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some((b - a) / n),
            _ => None,
        };
        self.cpu_ms_per_label = Some(CpuPerLabel {
            client: (after.client - before.client) / n,
            server: per(before.server, after.server),
            postgres: per(before.postgres, after.postgres),
        });
    }

    pub fn cpu_cell(&self) -> String {
        let o = |v: Option<f64>| v.map_or("-".to_string(), f);
        match &self.cpu_ms_per_label {
            Some(c) => format!("{} / {} / {}", f(c.client), o(c.server), o(c.postgres)),
            None => String::new(),
        }
    }

    pub fn errors_cell(&self) -> String {
        if self.errors.is_empty() {
            "0".into()
        } else {
            self.errors.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(" ")
        }
    }
}

/// CPU milliseconds per label: this process (the virtual labelers), the Anvil server, Postgres.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CpuPerLabel {
    pub client: f64,
    pub server: Option<f64>,
    pub postgres: Option<f64>,
}

/// Postgres's work per label: shared buffers touched in the run's database (hits and reads, autovacuum's
/// included), WAL records and WAL bytes written by the cluster. Unlike CPU time and latency these do not
/// depend on what else the machine is doing, so two designs compare exactly even on a busy machine.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PgWorkPerLabel {
    pub buffers: f64,
    pub wal_records: f64,
    pub wal_bytes: f64,
}

/// Cumulative Postgres counters (see [`PgWorkPerLabel`]). WAL bytes are the exact WAL position; buffers and
/// WAL records come from the statistics that each backend flushes at most once a second, so the snapshot
/// waits a little over a second for the ones still pending.
#[derive(Debug, Clone)]
pub(crate) struct PgWorkSnapshot {
    buffers: i64,
    wal_records: i64,
    wal_bytes: f64,
}

impl PgWorkSnapshot {
    pub async fn take(url: Option<&str>) -> Option<Self> {
        use sqlx::{Connection, Row};
        let url = url?;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let mut c = sqlx::PgConnection::connect(url).await.ok()?;
        let row = sqlx::query(
            "SELECT (SELECT blks_hit + blks_read FROM pg_stat_database WHERE datname = current_database())::int8
                        AS buffers,
                    (SELECT wal_records FROM pg_stat_wal)::int8 AS wal_records,
                    pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8 AS wal_bytes",
        )
        .fetch_one(&mut c)
        .await
        .ok()?;
        let _ = c.close().await;
        Some(Self {
            buffers: row.try_get("buffers").ok()?,
            wal_records: row.try_get("wal_records").ok()?,
            wal_bytes: row.try_get("wal_bytes").ok()?,
        })
    }
}

/// Cumulative CPU milliseconds of the processes of a run, from /proc (loopback deployments only).
#[derive(Debug, Clone)]
pub(crate) struct CpuSnapshot {
    pub client: f64,
    pub server: Option<f64>,
    pub postgres: Option<f64>,
}

impl CpuSnapshot {
    /// `server`: the Anvil process; `postmaster`: Postgres's main process (its children, live and exited,
    /// are counted: every backend is its child).
    pub fn take(server: Option<u32>, postmaster: Option<u32>) -> Self {
        Self {
            client: proc_cpu_ms("self", false).unwrap_or(0.0),
            server: server.and_then(|p| proc_cpu_ms(&p.to_string(), false)),
            postgres: postmaster.and_then(|p| {
                let own = proc_cpu_ms(&p.to_string(), true)?;
                let children: f64 =
                    children_of(p).iter().filter_map(|c| proc_cpu_ms(&c.to_string(), false)).sum();
                Some(own + children)
            }),
        }
    }
}

/// utime + stime (and, with `reaped`, cutime + cstime: children already waited for) in ms. USER_HZ is 100 on
/// every Linux platform Anvil targets.
fn proc_cpu_ms(pid: &str, reaped: bool) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name may hold spaces: the fields start after its closing parenthesis
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is state (field 3); utime is field 14, stime 15, cutime 16, cstime 17
    let get = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok());
    let mut ticks = get(14)? + get(15)?;
    if reaped {
        ticks += get(16)? + get(17)?;
    }
    Some(ticks * 10.0)
}

fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/status")).ok().and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("PPid:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            }) == Some(pid)
        })
        .collect()
}

/// Brings the database to the same state before every timed run (floor, store and loop alike), so that no
/// run pays for the maintenance left behind by the one before it: `VACUUM (ANALYZE)` of the database (the
/// samples just loaded and the dead rows of the previous run; pgbench vacuums its tables before a run for the
/// same reason), a `CHECKPOINT` (every run starts with its first change of each page logging the whole page),
/// and a wait of up to 30 s for autovacuum workers still busy in the database. Best effort: a role without
/// the rights skips a step, and the run still happens.
pub(crate) async fn settle(url: &str) {
    use sqlx::{Connection, Executor};
    let Ok(mut c) = sqlx::PgConnection::connect(url).await else { return };
    for step in ["VACUUM (ANALYZE)", "CHECKPOINT"] {
        if let Err(e) = c.execute(step).await {
            tracing::debug!(step, error = %e, "bench: settling the database");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let busy: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE backend_type = 'autovacuum worker' AND datname = current_database()",
        )
        .fetch_one(&mut c)
        .await
        .unwrap_or(0);
        if busy == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = c.close().await;
}

/// The pid of the Postgres server behind `url` when it runs on this machine (the parent of our backend).
pub(crate) async fn postmaster_pid(url: &str) -> Option<u32> {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await.ok()?;
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut c).await.ok()?;
    let status = std::fs::read_to_string(format!("/proc/{backend}/status")).ok()?;
    let _ = c.close().await;
    status.lines().find(|l| l.starts_with("PPid:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// A correctness check: passes when `problems` is empty.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Check {
    pub ok: bool,
    pub checked: Vec<String>,
    pub problems: Vec<String>,
}

impl Check {
    pub fn new() -> Self {
        Self { ok: true, checked: Vec::new(), problems: Vec::new() }
    }
    /// Records a checked property; a false `holds` is a problem described by `what`.
    pub fn that(&mut self, holds: bool, what: impl Into<String>) {
        let what = what.into();
        if holds {
            self.checked.push(what);
        } else {
            self.ok = false;
            self.problems.push(what);
        }
    }
    pub fn cell(&self) -> String {
        if self.ok {
            format!("ok ({})", self.checked.len())
        } else {
            format!("FAILED: {}", self.problems.join("; "))
        }
    }
}

/// The 1-minute load average (0 when unknown).
pub(crate) fn load_avg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

pub(crate) fn nproc() -> usize {
    std::thread::available_parallelism().map(std::num::NonZeroUsize::get).unwrap_or(1)
}

/// The machine, for every JSON line.
pub(crate) fn machine() -> serde_json::Value {
    serde_json::json!({ "nproc": nproc(), "load_avg_1m": load_avg() })
}

/// Prints a table with aligned columns.
pub(crate) fn print_table(title: &str, header: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.chars().count());
            }
        }
    }
    println!("\n{title}");
    let line = |cells: Vec<String>| {
        let s: Vec<String> =
            cells.iter().enumerate().map(|(i, c)| format!("{c:<width$}", width = w[i])).collect();
        println!("  {}", s.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    line(w.iter().map(|n| "-".repeat(*n)).collect());
    for r in rows {
        line(r.clone());
    }
}

/// Prints the machine-readable line of a mode (last line of its output).
pub(crate) fn print_json(mode: &str, mut body: serde_json::Value) {
    if let Some(o) = body.as_object_mut() {
        o.insert("bench".into(), mode.into());
        o.insert("machine".into(), machine());
    }
    println!("{body}");
}

/// A UUID in SQL whose order follows `g` (a UUIDv7 layout: time prefix, then the sequence), so seeded rows
/// have the index locality of the application's own time-ordered ids. `prefix` is 16 hex digits unique to
/// the seeding call.
pub(crate) fn seq_uuid_sql(prefix: &str, g: &str) -> String {
    format!("('{prefix}' || '8' || lpad(to_hex({g}), 15, '0'))::uuid")
}

/// 16 hex digits: milliseconds since the epoch, a version nibble 7, and 12 random bits.
pub(crate) fn uuid_prefix() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let rand = uuid::Uuid::new_v4().as_u128() & 0xfff;
    format!("{:012x}7{:03x}", ms & 0xffff_ffff_ffff, rand)
}

/// Peak resident memory (VmHWM) and current (VmRSS) of a process, in KiB.
pub(crate) fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Asks a child process to stop (SIGTERM) and waits up to 10 s before killing it.
pub(crate) async fn stop_child(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
    }
    if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}
