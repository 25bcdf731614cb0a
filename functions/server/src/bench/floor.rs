//! The floor: the two transactions any labeling system must run per label, as bare SQL with no HTTP and no
//! application logic, on scratch tables — what the database itself can do on this machine right now.
//!
//! - claim: one autocommit statement, `UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1)
//!   RETURNING`, served by a partial index of the open samples (DESIGN.md: ordering by the primary key makes
//!   every claim re-read the claimed rows);
//! - submit: one autocommit statement that marks the sample done and inserts the label (a unique key on the
//!   sample: never two labels), durable (synchronous_commit on) before it answers.
//!
//! Each virtual labeler has its own connection, as an application's pool would give it.

use std::sync::Arc;
use std::time::Instant;

use anvil_core::config::Config;
use serde_json::json;
use sqlx::{Connection, Executor, Row};

use super::{
    Check, CpuSnapshot, PgWorkSnapshot, RunResult, Stop, WorkerTally, f, print_json, print_table, record,
};

#[derive(Debug, Clone, clap::Args)]
pub struct FloorArgs {
    /// Postgres to run against (scratch schema `anvil_bench_floor_<pid>`, dropped at the end).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Concurrent virtual labelers (connections); a comma-separated list runs once per value.
    #[arg(long, value_delimiter = ',', default_value = "8")]
    pub labelers: Vec<usize>,
    #[arg(long, default_value_t = 30_000)]
    pub labels: u64,
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Samples in the scratch queue (default: `--labels` + labelers).
    #[arg(long)]
    pub samples: Option<u64>,
}

/// The shape of one floor run.
#[derive(Debug, Clone)]
pub struct FloorSpec {
    pub labelers: usize,
    pub labels: u64,
    pub seconds: f64,
    pub samples: u64,
}

pub async fn run_floor(cfg: &Config, a: FloorArgs) -> anyhow::Result<()> {
    let url = super::postgres_url(a.database_url.as_deref(), cfg)?;
    let mut rows = Vec::new();
    let mut runs = Vec::new();
    for &n in &a.labelers {
        let spec = FloorSpec {
            labelers: n,
            labels: a.labels,
            seconds: a.seconds,
            samples: a.samples.unwrap_or(a.labels + n as u64),
        };
        let r = pg_floor(&url, &spec).await?;
        rows.push(vec![
            n.to_string(),
            r.labels.to_string(),
            f(r.labels_per_sec),
            r.claim.cell(),
            r.submit.cell(),
            r.errors_cell(),
            r.check.cell(),
            r.cpu_cell(),
            r.pg_work_cell(),
            format!("{:.1}/{:.1}", r.load_avg[0], r.load_avg[1]),
        ]);
        runs.push(r);
    }
    print_table(
        "anvil bench floor: bare claim + submit SQL on Postgres",
        &[
            "labelers",
            "labels",
            "labels/s",
            "claim ms p50/p95/p99/max",
            "submit ms p50/p95/p99/max",
            "errors",
            "check",
            "CPU ms/label client/-/pg",
            "pg buffers / WAL rec / WAL B per label",
            "load 1m start/end",
        ],
        &rows,
    );
    let ok = runs.iter().all(|r| r.check.ok);
    print_json("floor", json!({ "ok": ok, "runs": runs }));
    Ok(())
}

/// One floor run on Postgres at `spec.labelers` connections.
pub async fn pg_floor(url: &str, spec: &FloorSpec) -> anyhow::Result<RunResult> {
    let opts: sqlx::postgres::PgConnectOptions = url.parse()?;
    let schema = format!("anvil_bench_floor_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect_with(&opts).await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE;
             CREATE SCHEMA {schema};
             CREATE TABLE {schema}.samples (
                 id bigint PRIMARY KEY,
                 priority integer NOT NULL DEFAULT 0,
                 payload jsonb NOT NULL,
                 state smallint NOT NULL DEFAULT 0, -- 0 open, 1 leased, 2 done
                 labeler text,
                 lease_expires_at timestamptz
             );
             CREATE TABLE {schema}.labels (
                 id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                 sample_id bigint NOT NULL UNIQUE,
                 labeler text NOT NULL,
                 payload jsonb NOT NULL,
                 created_at timestamptz NOT NULL DEFAULT now()
             );"
        )))
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {schema}.samples (id, payload)
         SELECT g, jsonb_build_object('text', 'sample text number ' || g) FROM generate_series(1, $1) g"
    )))
    .bind(i64::try_from(spec.samples).unwrap_or(i64::MAX))
    .execute(&mut admin)
    .await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "CREATE INDEX ON {schema}.samples (priority, id) WHERE state = 0; ANALYZE {schema}.samples;"
        )))
        .await?;

    let claim_sql: &'static str = Box::leak(
        format!(
            "UPDATE {schema}.samples s SET state = 1, labeler = $1, lease_expires_at = now() + interval '5 minutes'
             WHERE s.id = (SELECT id FROM {schema}.samples WHERE state = 0 ORDER BY priority, id
                           LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING s.id, s.payload"
        )
        .into_boxed_str(),
    );
    let submit_sql: &'static str = Box::leak(
        format!(
            "WITH done AS (UPDATE {schema}.samples SET state = 2 WHERE id = $1 AND labeler = $2 AND state = 1
                           RETURNING id)
             INSERT INTO {schema}.labels (sample_id, labeler, payload) SELECT id, $2, $3 FROM done RETURNING id"
        )
        .into_boxed_str(),
    );
    super::settle(url).await;
    // connections first, outside the clock
    let mut conns = Vec::new();
    for _ in 0..spec.labelers {
        conns.push(sqlx::PgConnection::connect_with(&opts).await?);
    }
    let postmaster = super::postmaster_pid(url).await;
    let work0 = PgWorkSnapshot::take(Some(url)).await;
    let stop = Arc::new(Stop::new(spec.labels, spec.seconds));
    let load0 = super::load_avg();
    let cpu0 = CpuSnapshot::take(None, postmaster);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, mut conn) in conns.into_iter().enumerate() {
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let who = format!("labeler-{i}");
            let mut tally = WorkerTally::new();
            while !stop.over() {
                let t0 = Instant::now();
                let got =
                    sqlx::query(sqlx::AssertSqlSafe(claim_sql)).bind(&who).fetch_optional(&mut conn).await;
                record(&mut tally.claim, t0.elapsed());
                let id: i64 = match got {
                    Ok(Some(row)) => match row.try_get("id") {
                        Ok(id) => id,
                        Err(_) => {
                            tally.error("claim: bad row");
                            continue;
                        }
                    },
                    Ok(None) => break,
                    Err(_) => {
                        tally.error("claim: sql");
                        continue;
                    }
                };
                let t1 = Instant::now();
                let payload = json!({"label": if i.is_multiple_of(2) { "a" } else { "b" }});
                let done = sqlx::query(sqlx::AssertSqlSafe(submit_sql))
                    .bind(id)
                    .bind(&who)
                    .bind(&payload)
                    .fetch_optional(&mut conn)
                    .await;
                record(&mut tally.submit, t1.elapsed());
                match done {
                    Ok(Some(_)) => {
                        tally.labels += 1;
                        stop.add();
                    }
                    Ok(None) => tally.error("submit: lease gone"),
                    Err(_) => tally.error("submit: sql"),
                }
            }
            let _ = conn.close().await;
            tally
        }));
    }
    let mut tallies = Vec::new();
    for t in tasks {
        tallies.push(t.await?);
    }
    let elapsed = start.elapsed();
    let cpu1 = CpuSnapshot::take(None, postmaster);
    let mut r = RunResult::from_tallies(spec.labelers, tallies, elapsed, load0);
    r.set_cpu(&cpu0, &cpu1);
    r.set_pg_work(work0.as_ref(), PgWorkSnapshot::take(Some(url)).await.as_ref());
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT (SELECT count(*) FROM {schema}.labels) AS labels,
                (SELECT count(DISTINCT sample_id) FROM {schema}.labels) AS samples,
                (SELECT count(*) FROM {schema}.samples WHERE state = 1) AS leased,
                (SELECT count(*) FROM {schema}.samples WHERE state = 2) AS done"
    )))
    .fetch_one(&mut admin)
    .await?;
    let (labels, samples, leased, done): (i64, i64, i64, i64) =
        (row.try_get("labels")?, row.try_get("samples")?, row.try_get("leased")?, row.try_get("done")?);
    let acked = i64::try_from(r.labels).unwrap_or(-1);
    let mut c = Check::new();
    c.that(labels == acked, format!("labels stored ({labels}) = labels acknowledged ({acked})"));
    c.that(samples == labels, format!("one label per sample ({samples} samples, {labels} labels)"));
    c.that(done == labels, format!("samples done ({done}) = labels ({labels})"));
    c.that(leased == 0, format!("no lease left after the run ({leased})"));
    r.check = c;
    admin.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).await?;
    let _ = admin.close().await;
    Ok(r)
}

/// One floor run on SQLite with the embedded default's settings (WAL, `ANVIL_SQLITE_SYNCHRONOUS`, full by
/// default) and its architecture: every write through one writer connection, in turn.
pub async fn sqlite_floor(spec: &FloorSpec) -> anyhow::Result<RunResult> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    let dir = tempfile::Builder::new().prefix("anvil-bench-sqlite-").tempdir()?;
    let normal = std::env::var("ANVIL_SQLITE_SYNCHRONOUS").is_ok_and(|v| v.eq_ignore_ascii_case("normal"));
    let opts = SqliteConnectOptions::new()
        .filename(dir.path().join("floor.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(if normal { SqliteSynchronous::Normal } else { SqliteSynchronous::Full })
        .busy_timeout(std::time::Duration::from_secs(10));
    let mut conn = sqlx::SqliteConnection::connect_with(&opts).await?;
    conn.execute(
        "CREATE TABLE samples (id INTEGER PRIMARY KEY, priority INTEGER NOT NULL DEFAULT 0, payload TEXT NOT NULL,
                               state INTEGER NOT NULL DEFAULT 0, labeler TEXT, lease_expires_at INTEGER);
         CREATE TABLE labels (id INTEGER PRIMARY KEY, sample_id INTEGER NOT NULL UNIQUE, labeler TEXT NOT NULL,
                              payload TEXT NOT NULL, created_at INTEGER NOT NULL);",
    )
    .await?;
    sqlx::query(
        "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?)
         INSERT INTO samples (id, payload) SELECT n, json_object('text', 'sample text number ' || n) FROM g",
    )
    .bind(i64::try_from(spec.samples).unwrap_or(i64::MAX))
    .execute(&mut conn)
    .await?;
    conn.execute("CREATE INDEX samples_open ON samples (priority, id) WHERE state = 0").await?;
    let writer = Arc::new(tokio::sync::Mutex::new(conn));
    let stop = Arc::new(Stop::new(spec.labels, spec.seconds));
    let load0 = super::load_avg();
    let cpu0 = CpuSnapshot::take(None, None);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..spec.labelers {
        let stop = stop.clone();
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            let who = format!("labeler-{i}");
            let mut tally = WorkerTally::new();
            while !stop.over() {
                let t0 = Instant::now();
                let got: Result<Option<(i64, String)>, _> = {
                    let mut w = writer.lock().await;
                    sqlx::query_as(
                        "UPDATE samples SET state = 1, labeler = ?, lease_expires_at = unixepoch() + 300
                         WHERE id = (SELECT id FROM samples WHERE state = 0 ORDER BY priority, id LIMIT 1)
                         RETURNING id, payload",
                    )
                    .bind(&who)
                    .fetch_optional(&mut *w)
                    .await
                };
                record(&mut tally.claim, t0.elapsed());
                let id = match got {
                    Ok(Some((id, _))) => id,
                    Ok(None) => break,
                    Err(_) => {
                        tally.error("claim: sql");
                        continue;
                    }
                };
                let t1 = Instant::now();
                let payload = json!({"label": if i.is_multiple_of(2) { "a" } else { "b" }}).to_string();
                let done: Result<bool, sqlx::Error> = async {
                    let mut w = writer.lock().await;
                    let mut tx = w.begin().await?;
                    let n = sqlx::query("UPDATE samples SET state = 2 WHERE id = ? AND labeler = ? AND state = 1")
                        .bind(id)
                        .bind(&who)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if n == 1 {
                        sqlx::query("INSERT INTO labels (sample_id, labeler, payload, created_at) VALUES (?, ?, ?, unixepoch())")
                            .bind(id)
                            .bind(&who)
                            .bind(&payload)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(n == 1)
                }
                .await;
                record(&mut tally.submit, t1.elapsed());
                match done {
                    Ok(true) => {
                        tally.labels += 1;
                        stop.add();
                    }
                    Ok(false) => tally.error("submit: lease gone"),
                    Err(_) => tally.error("submit: sql"),
                }
            }
            tally
        }));
    }
    let mut tallies = Vec::new();
    for t in tasks {
        tallies.push(t.await?);
    }
    let elapsed = start.elapsed();
    let cpu1 = CpuSnapshot::take(None, None);
    let mut r = RunResult::from_tallies(spec.labelers, tallies, elapsed, load0);
    r.set_cpu(&cpu0, &cpu1);
    let mut w = writer.lock().await;
    let (labels, samples, leased): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM labels), (SELECT count(DISTINCT sample_id) FROM labels),
                (SELECT count(*) FROM samples WHERE state = 1)",
    )
    .fetch_one(&mut *w)
    .await?;
    let acked = i64::try_from(r.labels).unwrap_or(-1);
    let mut c = Check::new();
    c.that(labels == acked, format!("labels stored ({labels}) = labels acknowledged ({acked})"));
    c.that(samples == labels, format!("one label per sample ({samples} samples, {labels} labels)"));
    c.that(leased == 0, format!("no lease left after the run ({leased})"));
    r.check = c;
    Ok(r)
}
