//! `loop`, `compare` and `sqlite-loop`: virtual labelers over HTTP (reqwest, one keep-alive client each),
//! against a running Anvil or an `anvil serve` child started here.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anvil_core::auth::{JwtVerifier, KeyConfig, Secret};
use anvil_core::config::Config;
use anvil_core::domain::{Subject, TenantId};
use anvil_types::Role;
use anyhow::Context;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use uuid::Uuid;

use super::floor::{self, FloorSpec};
use super::{
    Check, CpuSnapshot, PgWorkSnapshot, RunResult, Stop, WorkerTally, f, print_json, print_table, record,
};

#[derive(Debug, Clone, clap::Args)]
pub struct LoopArgs {
    /// Base URL of a running Anvil. Without it, an `anvil serve` is started here on `--database-url`
    /// (or on a temporary SQLite data directory when that is not given either).
    #[arg(long)]
    pub url: Option<String>,
    /// Postgres for the `anvil serve` started here (ignored with `--url`).
    #[arg(long)]
    pub database_url: Option<String>,
    /// File holding the HS256 secret of the running Anvil, to mint the labelers' tokens. Default: the
    /// configured keys (ANVIL_JWT_HS256_SECRET[_FILE]) or the data directory's local secret.
    #[arg(long)]
    pub token_secret_file: Option<PathBuf>,
    /// Tenant the benchmark works in.
    #[arg(long, default_value = "bench")]
    pub tenant: String,
    /// Concurrent virtual labelers; a comma-separated list runs once per value.
    #[arg(long, value_delimiter = ',', default_value = "8")]
    pub labelers: Vec<usize>,
    /// Stop after this many labels in all (or at `--seconds`, whichever comes first).
    #[arg(long, default_value_t = 30_000)]
    pub labels: u64,
    /// Stop after this many seconds (or at `--labels`).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Labels wanted per sample in the queue created here.
    #[arg(long, default_value_t = 1)]
    pub overlap: i32,
    /// Samples in the queue created here (default: enough for `--labels`).
    #[arg(long)]
    pub samples: Option<u64>,
    /// Label this existing queue instead of creating one per run (the check then skips the comparisons with
    /// this run's own counts).
    #[arg(long)]
    pub queue: Option<Uuid>,
    /// Also run the floor (bare SQL, same concurrency) on this Postgres and report loop / floor.
    #[arg(long)]
    pub floor_database_url: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// The Postgres both the floor and the `anvil serve` started here use.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Labeler counts, each run as floor then loop.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub labelers: Vec<usize>,
    #[arg(long, default_value_t = 30_000)]
    pub labels: u64,
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    #[arg(long)]
    pub samples: Option<u64>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SqliteLoopArgs {
    #[arg(long, value_delimiter = ',', default_value = "8")]
    pub labelers: Vec<usize>,
    #[arg(long, default_value_t = 30_000)]
    pub labels: u64,
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    #[arg(long)]
    pub samples: Option<u64>,
}

// ------------------------------------------------------------------------------------------------------------
// Entry points
// ------------------------------------------------------------------------------------------------------------

pub async fn run_loop(cfg: &Config, a: LoopArgs) -> anyhow::Result<()> {
    loop_as(cfg, a, "loop", false).await
}

/// The runs of one labeler count: the floor, the store in-process (compare only), the loop over HTTP.
struct Row {
    n: usize,
    floor: Option<RunResult>,
    store: Option<RunResult>,
    lp: RunResult,
}

async fn loop_as(cfg: &Config, a: LoopArgs, mode: &str, with_store: bool) -> anyhow::Result<()> {
    let floor_url = a.floor_database_url.clone();
    let db =
        a.database_url.clone().or_else(|| cfg.database_url.clone()).filter(|u| u.starts_with("postgres"));
    let (mut target, _server) = match &a.url {
        Some(url) => (Target::existing(cfg, url, a.token_secret_file.as_deref()).await?, None),
        None => {
            let server = Server::start(db.as_deref()).await?;
            (server.target(cfg)?, Some(server))
        }
    };
    if let Some(u) = db.as_deref().or(floor_url.as_deref()) {
        target.postmaster = super::postmaster_pid(u).await;
    }
    target.database_url = db.clone();
    let mut rows = Vec::new();
    for &n in &a.labelers {
        let floor = match &floor_url {
            Some(url) => Some(floor::pg_floor(url, &spec(&a, n)).await?),
            None => None,
        };
        let store = match (&floor_url, with_store) {
            (Some(url), true) => Some(super::store::store_run(url, &spec(&a, n)).await?),
            _ => None,
        };
        let lp = http_run(&target, &a, n).await?;
        rows.push(Row { n, floor, store, lp });
    }
    report(mode, &target, &rows, "Postgres floor");
    Ok(())
}

pub async fn run_compare(cfg: &Config, c: CompareArgs) -> anyhow::Result<()> {
    let url = super::postgres_url(c.database_url.as_deref(), cfg)?;
    let a = LoopArgs {
        url: None,
        database_url: Some(url.clone()),
        token_secret_file: None,
        tenant: "bench".into(),
        labelers: c.labelers.clone(),
        labels: c.labels,
        seconds: c.seconds,
        overlap: 1,
        samples: c.samples,
        queue: None,
        floor_database_url: Some(url),
    };
    loop_as(cfg, a, "compare", true).await
}

pub async fn run_sqlite_loop(cfg: &Config, s: SqliteLoopArgs) -> anyhow::Result<()> {
    let server = Server::start(None).await?;
    let target = server.target(cfg)?;
    let a = LoopArgs {
        url: None,
        database_url: None,
        token_secret_file: None,
        tenant: "bench".into(),
        labelers: s.labelers.clone(),
        labels: s.labels,
        seconds: s.seconds,
        overlap: 1,
        samples: s.samples,
        queue: None,
        floor_database_url: None,
    };
    let mut rows = Vec::new();
    for &n in &s.labelers {
        let fl = floor::sqlite_floor(&spec(&a, n)).await?;
        let lp = http_run(&target, &a, n).await?;
        rows.push(Row { n, floor: Some(fl), store: None, lp });
    }
    report("sqlite-loop", &target, &rows, "SQLite floor");
    Ok(())
}

fn samples_for(a: &LoopArgs, labelers: usize) -> u64 {
    a.samples.unwrap_or_else(|| {
        // every label needs a slot; with fewer labelers than the overlap a sample gets at most one per labeler
        let per_sample = u64::try_from(a.overlap.max(1)).unwrap_or(1).min(labelers.max(1) as u64);
        a.labels.div_ceil(per_sample) + labelers as u64
    })
}

fn spec(a: &LoopArgs, labelers: usize) -> FloorSpec {
    FloorSpec { labelers, labels: a.labels, seconds: a.seconds, samples: samples_for(a, labelers) }
}

fn report(mode: &str, target: &Target, rows: &[Row], floor_name: &str) {
    let mut table = Vec::new();
    let mut json_rows = Vec::new();
    let cells = |n: usize, name: &str, r: &RunResult, ratio: Option<f64>| {
        vec![
            n.to_string(),
            name.to_string(),
            r.labels.to_string(),
            f(r.labels_per_sec),
            r.claim.cell(),
            r.submit.cell(),
            r.errors_cell(),
            r.check.cell(),
            ratio.map(|r| format!("{r:.2}")).unwrap_or_default(),
            r.cpu_cell(),
            r.pg_work_cell(),
            format!("{:.1}/{:.1}", r.load_avg[0], r.load_avg[1]),
        ]
    };
    for row in rows {
        let over_floor = |r: &RunResult| {
            row.floor
                .as_ref()
                .map(|fl| if fl.labels_per_sec > 0.0 { r.labels_per_sec / fl.labels_per_sec } else { 0.0 })
        };
        if let Some(fl) = &row.floor {
            table.push(cells(row.n, "floor", fl, None));
        }
        if let Some(st) = &row.store {
            table.push(cells(row.n, "store", st, over_floor(st)));
        }
        table.push(cells(row.n, "loop", &row.lp, over_floor(&row.lp)));
        json_rows.push(json!({
            "labelers": row.n,
            "floor": row.floor,
            "store": row.store,
            "loop": row.lp,
            "loop_over_floor": over_floor(&row.lp),
            "store_over_floor": row.store.as_ref().and_then(over_floor),
        }));
    }
    print_table(
        &format!("anvil bench {mode}: {} ({}), floor = {floor_name}", target.base, target.store),
        &[
            "labelers",
            "run",
            "labels",
            "labels/s",
            "claim ms p50/p95/p99/max",
            "submit ms p50/p95/p99/max",
            "errors",
            "check",
            "x floor",
            "CPU ms/label client/server/pg",
            "pg buffers / WAL rec / WAL B per label",
            "load 1m start/end",
        ],
        &table,
    );
    let ok = rows.iter().all(|r| {
        r.lp.check.ok
            && r.floor.as_ref().is_none_or(|f| f.check.ok)
            && r.store.as_ref().is_none_or(|s| s.check.ok)
    });
    print_json(mode, json!({ "url": target.base, "store": target.store, "ok": ok, "runs": json_rows }));
}

// ------------------------------------------------------------------------------------------------------------
// The Anvil under test
// ------------------------------------------------------------------------------------------------------------

/// An `anvil serve` child on a free loopback port, with a generated HS256 secret and its own data directory.
struct Server {
    child: tokio::process::Child,
    base: String,
    secret: String,
    store: &'static str,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(database_url: Option<&str>) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("anvil-bench-").tempdir()?;
        let secret = hex::encode(anvil_core::auth::random_secret()?);
        let exe = std::env::current_exe()?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.arg("serve")
            .env("ANVIL_BIND", "127.0.0.1:0")
            .env("ANVIL_DATA_DIR", dir.path())
            .env("ANVIL_SPA_DIR", dir.path().join("no-spa"))
            .env("ANVIL_JWT_HS256_SECRET", &secret)
            .env("ANVIL_SHUTDOWN_GRACE_SECS", "2")
            .env_remove("ANVIL_JWT_HS256_SECRET_FILE")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let store = match database_url.filter(|u| !u.is_empty()) {
            Some(u) => {
                cmd.env("DATABASE_URL", u);
                "postgres"
            }
            None => {
                cmd.env_remove("DATABASE_URL");
                "sqlite"
            }
        };
        let mut child = cmd.spawn().context("starting `anvil serve`")?;
        // The server logs at its configured level (what production pays per request); only its warnings
        // and errors are passed on, so the tables stay readable.
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.contains("\"level\":\"WARN")
                        || line.contains("\"level\":\"ERROR")
                        || !line.starts_with('{')
                    {
                        eprintln!("anvil serve: {line}");
                    }
                }
            });
        }
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let base = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("Anvil is listening on ") {
                    return Ok::<_, anyhow::Error>(url.trim().to_string());
                }
            }
            anyhow::bail!("`anvil serve` exited before listening")
        })
        .await
        .context("`anvil serve` did not start within 120 s")??;
        // keep draining its stdout so it never blocks on a full pipe
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child, base, secret, store, _dir: dir })
    }

    fn target(&self, cfg: &Config) -> anyhow::Result<Target> {
        let keys = KeyConfig {
            hs256_secret: Some(Secret::new(self.secret.as_bytes().to_vec())),
            ..KeyConfig::default()
        };
        let jwt = JwtVerifier::new(cfg.auth_settings(), keys)?;
        Ok(Target {
            base: self.base.clone(),
            store: self.store.into(),
            jwt: Arc::new(jwt),
            server_pid: self.child.id(),
            postmaster: None,
            database_url: None,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM for a graceful stop; kill_on_drop is the backstop
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Where the labelers go and how their tokens are minted.
struct Target {
    base: String,
    store: String,
    jwt: Arc<JwtVerifier>,
    /// For CPU accounting, when the processes run on this machine.
    server_pid: Option<u32>,
    postmaster: Option<u32>,
    /// The Postgres the server under test uses, when known: its work per label is counted.
    database_url: Option<String>,
}

impl Target {
    async fn existing(
        cfg: &Config,
        url: &str,
        secret_file: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let jwt = match secret_file {
            Some(p) => {
                let raw = std::fs::read(p).with_context(|| format!("--token-secret-file {}", p.display()))?;
                let secret = Secret::new(String::from_utf8_lossy(&raw).trim().as_bytes().to_vec());
                let keys = KeyConfig { hs256_secret: Some(secret), ..KeyConfig::default() };
                Arc::new(JwtVerifier::new(cfg.auth_settings(), keys)?)
            }
            None => crate::runtime::verifier(cfg, None).await?,
        };
        anyhow::ensure!(jwt.can_mint(), "no HS256 secret to mint tokens with: pass --token-secret-file");
        Ok(Self {
            base: url.trim_end_matches('/').to_string(),
            store: "remote".into(),
            jwt,
            server_pid: None,
            postmaster: None,
            database_url: None,
        })
    }

    fn token(&self, tenant: &str, subject: &str, role: Role) -> anyhow::Result<String> {
        let t = TenantId::parse(tenant).context("--tenant: 1..=64 characters of [A-Za-z0-9_.:@|-]")?;
        let s = Subject::parse(subject).context("subject")?;
        self.jwt.mint(&t, &s, role, Duration::from_secs(24 * 3600))
    }
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()?)
}

/// Sends a request and returns its status and JSON body (Null when empty), failing on transport errors.
async fn call(req: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
    let res = req.send().await?;
    let status = res.status().as_u16();
    let bytes = res.bytes().await?;
    let body =
        if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
    Ok((status, body))
}

async fn expect(req: reqwest::RequestBuilder, want: &[u16], what: &str) -> anyhow::Result<Value> {
    let (status, body) = call(req).await.with_context(|| what.to_string())?;
    anyhow::ensure!(want.contains(&status), "{what}: HTTP {status} (wanted {want:?}): {body}");
    Ok(body)
}

// ------------------------------------------------------------------------------------------------------------
// One run
// ------------------------------------------------------------------------------------------------------------

/// The queue a run labels, created through the API with its samples (admin token).
async fn create_queue(
    http: &reqwest::Client,
    t: &Target,
    admin: &str,
    overlap: i32,
    samples: u64,
) -> anyhow::Result<Uuid> {
    let body = json!({
        "name": format!("bench {}", Uuid::now_v7().simple()),
        "description": "created by anvil bench",
        "overlap": overlap,
        "lease_seconds": 300,
        "schema": {"fields": [{"name": "label", "kind": "single_choice", "options": ["a", "b"]}]},
    });
    let q = expect(
        http.post(format!("{}/v1/queues", t.base)).bearer_auth(admin).json(&body),
        &[201],
        "creating the queue",
    )
    .await?;
    let id: Uuid = serde_json::from_value(q["id"].clone()).context("queue id")?;
    let mut next = 0u64;
    while next < samples {
        let end = (next + anvil_types::MAX_SAMPLES_PER_BATCH as u64).min(samples);
        let batch: Vec<Value> = (next..end)
            .map(|i| json!({"external_id": format!("s{i}"), "payload": {"text": format!("sample text number {i}")}}))
            .collect();
        expect(
            http.post(format!("{}/v1/queues/{id}/samples", t.base))
                .bearer_auth(admin)
                .json(&json!({"samples": batch})),
            &[200, 201],
            "adding samples",
        )
        .await?;
        next = end;
    }
    let q = expect(
        http.get(format!("{}/v1/queues/{id}", t.base)).bearer_auth(admin),
        &[200],
        "reading the queue",
    )
    .await?;
    let have = q["sample_count"].as_u64().unwrap_or(0);
    anyhow::ensure!(have >= samples, "the queue has {have} samples, wanted {samples}");
    Ok(id)
}

#[derive(Deserialize)]
struct ClaimLite {
    assignment: AssignmentLite,
}

#[derive(Deserialize)]
struct AssignmentLite {
    id: Uuid,
    sample_id: Uuid,
}

/// Who held which sample, as the labelers saw it (the client side of the correctness check).
#[derive(Default)]
struct Handed {
    /// sample -> labelers it was handed to
    by_sample: HashMap<Uuid, Vec<u32>>,
    problems: Vec<String>,
}

async fn http_run(t: &Target, a: &LoopArgs, labelers: usize) -> anyhow::Result<RunResult> {
    let http = client()?;
    let admin = t.token(&a.tenant, "bench-admin", Role::Admin)?;
    let (queue, fresh) = match a.queue {
        Some(q) => (q, false),
        None => (create_queue(&http, t, &admin, a.overlap, samples_for(a, labelers)).await?, true),
    };
    let overlap = {
        let q = expect(
            http.get(format!("{}/v1/queues/{queue}", t.base)).bearer_auth(&admin),
            &[200],
            "reading the queue",
        )
        .await?;
        q["overlap"].as_u64().unwrap_or(1)
    };
    if let Some(u) = t.database_url.as_deref() {
        super::settle(u).await;
    }
    let stop = Arc::new(Stop::new(a.labels, a.seconds));
    let handed = Arc::new(Mutex::new(Handed::default()));
    let load0 = super::load_avg();
    let work0 = PgWorkSnapshot::take(t.database_url.as_deref()).await;
    let cpu0 = CpuSnapshot::take(t.server_pid, t.postmaster);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..labelers {
        let tok = t.token(&a.tenant, &format!("labeler-{i}"), Role::Labeler)?;
        let base = t.base.clone();
        let stop = stop.clone();
        let handed = handed.clone();
        let http = client()?;
        let who = u32::try_from(i).unwrap_or(u32::MAX);
        tasks.push(tokio::spawn(
            async move { labeler(http, base, queue, tok, who, overlap, stop, handed).await },
        ));
    }
    let mut tallies = Vec::new();
    for task in tasks {
        tallies.push(task.await?);
    }
    let elapsed = start.elapsed();
    let cpu1 = CpuSnapshot::take(t.server_pid, t.postmaster);
    let mut r = RunResult::from_tallies(labelers, tallies, elapsed, load0);
    r.set_cpu(&cpu0, &cpu1);
    r.set_pg_work(work0.as_ref(), PgWorkSnapshot::take(t.database_url.as_deref()).await.as_ref());
    let handed = std::mem::take(&mut *handed.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    r.check = check(&http, t, &admin, queue, overlap, fresh, r.labels, handed).await?;
    Ok(r)
}

/// One virtual labeler: claim, submit, until the run stops or the queue has nothing left for it.
#[allow(clippy::too_many_arguments)]
async fn labeler(
    http: reqwest::Client,
    base: String,
    queue: Uuid,
    tok: String,
    who: u32,
    overlap: u64,
    stop: Arc<Stop>,
    handed: Arc<Mutex<Handed>>,
) -> WorkerTally {
    let mut tally = WorkerTally::new();
    let next_url = format!("{base}/v1/queues/{queue}/assignments/next");
    let submit_url = format!("{base}/v1/labels");
    let mut consecutive_errors = 0;
    while !stop.over() && consecutive_errors < 50 {
        let t0 = Instant::now();
        let claim = match http.post(&next_url).bearer_auth(&tok).send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                let body = res.bytes().await;
                record(&mut tally.claim, t0.elapsed());
                match (status, body) {
                    (200, Ok(b)) => match serde_json::from_slice::<ClaimLite>(&b) {
                        Ok(c) => c.assignment,
                        Err(_) => {
                            tally.error("claim: bad body");
                            consecutive_errors += 1;
                            continue;
                        }
                    },
                    (204, _) => break, // nothing left for this labeler
                    (s, _) => {
                        tally.error(format!("claim {s}"));
                        consecutive_errors += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                }
            }
            Err(_) => {
                tally.error("claim: transport");
                consecutive_errors += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if let Ok(mut h) = handed.lock() {
            let holders = h.by_sample.entry(claim.sample_id).or_default();
            let again = holders.contains(&who);
            if !again {
                holders.push(who);
            }
            let n = holders.len();
            // the same lease twice in a row is the idempotent claim (an earlier submit failed); a second
            // sample for the same labeler, or more than k labelers on one sample, is a violation
            if n as u64 > overlap {
                h.problems
                    .push(format!("sample {} handed to {n} labelers (overlap {overlap})", claim.sample_id));
            }
        }
        let t1 = Instant::now();
        let body = json!({"assignment_id": claim.id, "payload": {"label": if who.is_multiple_of(2) { "a" } else { "b" }}});
        match http.post(&submit_url).bearer_auth(&tok).json(&body).send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                let _ = res.bytes().await;
                record(&mut tally.submit, t1.elapsed());
                if status == 201 {
                    tally.labels += 1;
                    stop.add();
                    consecutive_errors = 0;
                } else {
                    tally.error(format!("submit {status}"));
                    consecutive_errors += 1;
                }
            }
            Err(_) => {
                tally.error("submit: transport");
                consecutive_errors += 1;
            }
        }
    }
    tally
}

/// Checks the queue through the API after a run: no sample over k labels, no labeler twice on a sample, no
/// labeler holding two live leases, and (on a queue created by this run) exactly the acknowledged labels.
#[allow(clippy::too_many_arguments)]
async fn check(
    http: &reqwest::Client,
    t: &Target,
    admin: &str,
    queue: Uuid,
    overlap: u64,
    fresh: bool,
    acked: u64,
    handed: Handed,
) -> anyhow::Result<Check> {
    let mut c = Check::new();
    let stats = expect(
        http.get(format!("{}/v1/queues/{queue}/stats", t.base)).bearer_auth(admin),
        &[200],
        "queue stats",
    )
    .await?;
    let per = stats["per_labeler"].as_array().cloned().unwrap_or_default();
    let max_live = per.iter().map(|p| p["leased"].as_i64().unwrap_or(0)).max().unwrap_or(0);
    c.that(max_live <= 1, format!("at most one live lease per labeler (max {max_live})"));
    // page through every label of the queue
    let mut per_sample: HashMap<String, Vec<String>> = HashMap::new();
    let mut total = 0u64;
    let mut cursor: Option<String> = None;
    loop {
        let mut req = http
            .get(format!("{}/v1/queues/{queue}/labels", t.base))
            .bearer_auth(admin)
            .query(&[("limit", "500")]);
        if let Some(cur) = &cursor {
            req = req.query(&[("cursor", cur.as_str())]);
        }
        let page = expect(req, &[200], "listing labels").await?;
        for l in page["items"].as_array().into_iter().flatten() {
            total += 1;
            let sample = l["sample_id"].as_str().unwrap_or_default().to_string();
            let labeler = l["labeler"].as_str().unwrap_or_default().to_string();
            per_sample.entry(sample).or_default().push(labeler);
        }
        match page["next_cursor"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => break,
        }
    }
    let max_k = per_sample.values().map(Vec::len).max().unwrap_or(0) as u64;
    c.that(max_k <= overlap, format!("no sample over k = {overlap} labels (max {max_k})"));
    let twice = per_sample
        .values()
        .filter(|ls| {
            let mut v = (*ls).clone();
            v.sort();
            v.dedup();
            v.len() != ls.len()
        })
        .count();
    c.that(twice == 0, format!("no labeler labeled a sample twice ({twice} samples did)"));
    c.that(
        handed.problems.is_empty(),
        format!(
            "leases as seen by the labelers: {}",
            if handed.problems.is_empty() {
                "never over k".to_string()
            } else {
                handed.problems.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
            }
        ),
    );
    if fresh {
        let submitted = stats["submitted"].as_u64().unwrap_or(0);
        c.that(total == acked, format!("labels listed ({total}) = labels acknowledged 201 ({acked})"));
        c.that(submitted == acked, format!("stats.submitted ({submitted}) = labels acknowledged ({acked})"));
        let leased = stats["leased"].as_i64().unwrap_or(-1);
        c.that(leased == 0, format!("no lease left live after the run ({leased})"));
    }
    Ok(c)
}
