//! The middle row of `compare`: the real store (`PgStore::claim` + `PgStore::submit`, with label validation)
//! called in-process by N tasks, with no HTTP, no JSON and no authentication. Between the floor (bare SQL)
//! and the loop (the whole server) it splits the gap in two: what the store's SQL design costs
//! (store / floor), and what HTTP, auth and serialization cost (loop / store).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anvil_core::domain::{Subject, TenantId};
use anvil_core::store::Store;
use anvil_core::store::postgres::{self, PgStore};
use anvil_types::{CreateQueue, LabelSchema, NewSample};
use serde_json::json;
use sqlx::Row;

use super::floor::FloorSpec;
use super::{Check, CpuSnapshot, PgWorkSnapshot, RunResult, Stop, WorkerTally, record};

const TENANT: &str = "bench-store";

/// One run: a fresh queue of `spec.samples`, `spec.labelers` concurrent labelers, a pool of as many
/// connections (at most the server's default, 16, as `anvil serve` would have).
pub async fn store_run(url: &str, spec: &FloorSpec) -> anyhow::Result<RunResult> {
    postgres::migrate(url).await?;
    let opts: sqlx::postgres::PgConnectOptions = url.parse()?;
    let conns = u32::try_from(spec.labelers.clamp(1, 16)).unwrap_or(16);
    let store = Arc::new(PgStore::new(postgres::app_pool(opts, conns, Duration::from_secs(30))));
    let t = TenantId::parse(TENANT).ok_or_else(|| anyhow::anyhow!("tenant"))?;
    let admin = Subject::parse("bench-admin").ok_or_else(|| anyhow::anyhow!("subject"))?;
    let schema: LabelSchema = serde_json::from_value(
        json!({"fields": [{"name": "label", "kind": "single_choice", "options": ["a", "b"]}]}),
    )?;
    let q = store
        .create_queue(
            &t,
            &admin,
            &CreateQueue {
                name: format!("store {}", uuid::Uuid::now_v7().simple()),
                description: String::new(),
                overlap: 1,
                lease_seconds: 300,
                policy: Default::default(),
                schema,
            },
        )
        .await?;
    let mut next = 0u64;
    while next < spec.samples {
        let end = (next + 1000).min(spec.samples);
        let batch: Vec<NewSample> = (next..end)
            .map(|i| NewSample {
                external_id: format!("s{i}"),
                payload: json!({"text": format!("sample text number {i}")}),
                priority: 0,
            })
            .collect();
        store.add_samples(&t, &admin, q.id, &batch).await?;
        next = end;
    }
    super::settle(url).await;
    // open the pool's connections outside the clock
    let warm: Vec<_> = (0..conns).map(|_| store.pool().acquire()).collect();
    for c in futures::future::join_all(warm).await {
        drop(c?);
    }
    let postmaster = super::postmaster_pid(url).await;
    let work0 = PgWorkSnapshot::take(Some(url)).await;
    let stop = Arc::new(Stop::new(spec.labels, spec.seconds));
    let load0 = super::load_avg();
    let cpu0 = CpuSnapshot::take(None, postmaster);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..spec.labelers {
        let (store, stop, t) = (store.clone(), stop.clone(), t.clone());
        let queue = q.id;
        tasks.push(tokio::spawn(async move {
            let mut tally = WorkerTally::new();
            let Some(who) = Subject::parse(&format!("labeler-{i}")) else { return tally };
            let payload = json!({"label": if i.is_multiple_of(2) { "a" } else { "b" }});
            while !stop.over() {
                let t0 = Instant::now();
                let claim = store.claim(&t, &who, queue).await;
                record(&mut tally.claim, t0.elapsed());
                let c = match claim {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    Err(e) => {
                        tally.error(format!("claim: {}", short(&e)));
                        continue;
                    }
                };
                let t1 = Instant::now();
                let res = store
                    .submit(&t, &who, c.assignment.id, &payload, &anvil_core::schema::validate_label)
                    .await;
                record(&mut tally.submit, t1.elapsed());
                match res {
                    Ok(_) => {
                        tally.labels += 1;
                        stop.add();
                    }
                    Err(e) => tally.error(format!("submit: {}", short(&e))),
                }
            }
            tally
        }));
    }
    let mut tallies = Vec::new();
    for task in tasks {
        tallies.push(task.await?);
    }
    let elapsed = start.elapsed();
    let cpu1 = CpuSnapshot::take(None, postmaster);
    let mut r = RunResult::from_tallies(spec.labelers, tallies, elapsed, load0);
    r.set_cpu(&cpu0, &cpu1);
    r.set_pg_work(work0.as_ref(), PgWorkSnapshot::take(Some(url)).await.as_ref());
    // the check, as the owner (no row-level security in the way)
    let mut owner = <sqlx::PgConnection as sqlx::Connection>::connect(url).await?;
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM labels WHERE queue_id = $1) AS labels,
                (SELECT count(DISTINCT sample_id) FROM labels WHERE queue_id = $1) AS samples,
                (SELECT count(*) FROM assignments WHERE queue_id = $1 AND state = 'leased') AS leased,
                (SELECT count(*) FROM samples WHERE queue_id = $1 AND open_slots < 0) AS negative",
    )
    .bind(q.id)
    .fetch_one(&mut owner)
    .await?;
    let (labels, samples, leased): (i64, i64, i64) =
        (row.try_get("labels")?, row.try_get("samples")?, row.try_get("leased")?);
    let acked = i64::try_from(r.labels).unwrap_or(-1);
    let mut c = Check::new();
    c.that(labels == acked, format!("labels stored ({labels}) = labels acknowledged ({acked})"));
    c.that(samples == labels, format!("one label per sample at k = 1 ({samples} samples, {labels} labels)"));
    c.that(leased == 0, format!("no lease left live after the run ({leased})"));
    r.check = c;
    store.pool().close().await;
    Ok(r)
}

/// An error's first words, as an error-count key.
fn short(e: &anvil_core::Error) -> String {
    e.to_string().chars().take(40).collect()
}
