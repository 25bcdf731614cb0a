//! Process wiring for `anvil`: the parts from `Config` (through the composition root, `anvil_core::compose`),
//! the keys, the server with graceful shutdown, the in-process job pollers and the background lease reaper.

use std::sync::Arc;
use std::time::Duration;

use anvil_api::{AppState, Limits};
use anvil_core::auth::JwtVerifier;
use anvil_core::compose::{self, Database, Migrations, Parts};
use anvil_core::config::Config;
use anvil_core::files::{ensure_data_dir, read_or_create_secret};
use anvil_core::jobs;
use anvil_core::sqs::SqsDispatcher;
use anvil_core::store::Store;
use anyhow::Context;
use axum::serve::ListenerExt;

/// `anvil migrate`: the store's migrations, as the connecting user.
pub async fn migrate(cfg: &Config) -> anyhow::Result<()> {
    Database::from_config(cfg)?.migrate(cfg).await?;
    tracing::info!("migrations applied");
    Ok(())
}

/// The store (migrated) and the background ports, from the configuration: the composition root's.
async fn open_parts(cfg: &Config) -> anyhow::Result<Parts> {
    let db = Database::from_config(cfg)?;
    let aws = compose::aws_config(cfg).await?;
    Parts::open(cfg, &db, Migrations::Run, &public_url(cfg), aws.as_ref()).await
}

/// The JWT verifier: configured keys (or the OpenID provider's, from its discovery document), or the data
/// directory's generated local secret.
pub async fn verifier(cfg: &Config, discovered_jwks: Option<String>) -> anyhow::Result<Arc<JwtVerifier>> {
    let mut keys = cfg.key_config()?;
    keys.jwks_url = keys.jwks_url.or(discovered_jwks);
    if !cfg.has_explicit_keys() {
        ensure_data_dir(&cfg.data_dir)?;
        keys.hs256_secret = Some(read_or_create_secret(&cfg.data_dir.join("jwt-secret"))?);
    }
    let v = JwtVerifier::new(cfg.auth_settings(), keys)?;
    v.prefetch().await;
    Ok(Arc::new(v))
}

pub async fn serve(cfg: Config, demo: bool) -> anyhow::Result<()> {
    cfg.check_air_gap()?;
    if !cfg.bind.ip().is_loopback() && !cfg.has_explicit_keys() {
        anyhow::bail!(
            "refusing to listen on {} with the generated local signing secret: configure real keys \
             (ANVIL_JWT_HS256_SECRET_FILE, ANVIL_JWT_PUBLIC_KEY_FILE, ANVIL_JWT_JWKS_FILE or ANVIL_JWT_JWKS_URL) \
             or bind a loopback address",
            cfg.bind
        );
    }
    let oidc = cfg.oidc()?;
    let discovered = match &oidc {
        Some(o) => crate::oidc::discover(&cfg, o).await?,
        None => crate::oidc::Discovered::default(),
    };
    let parts = open_parts(&cfg).await?;
    let store = parts.stores.store.clone();
    let jwt = verifier(&cfg, discovered.jwks_uri.clone()).await?;
    let anvil = parts.anvil(jwt.clone());
    let state = AppState {
        anvil: anvil.clone(),
        probes: Arc::new(parts.probes()),
        limits: Limits { max_body_bytes: cfg.max_body_bytes, request_timeout: cfg.request_timeout() },
    };
    let listener =
        tokio::net::TcpListener::bind(cfg.bind).await.with_context(|| format!("binding {}", cfg.bind))?;
    let addr = listener.local_addr()?;
    if demo {
        crate::demo::seed_and_print(&anvil, &jwt, addr).await?;
    }
    let reaper = tokio::spawn(reap_expired_leases(store.clone()));
    let (stop_workers, stop_rx) = tokio::sync::watch::channel(false);
    let worker = parts.worker();
    let visibility = Duration::from_secs(cfg.job_visibility_secs.max(2));
    let pollers: Vec<_> = (0..cfg.workers)
        .map(|_| tokio::spawn(jobs::poll(worker.clone(), visibility, stop_rx.clone())))
        .collect();
    if cfg.workers > 0 {
        tracing::info!(workers = cfg.workers, "in-process job workers started");
    }
    let sweeper = parts.background.dispatcher.clone().map(|d| tokio::spawn(sweep_outbox(d)));
    let spa_dir = cfg.spa_dir.clone().or_else(|| {
        let d = std::path::PathBuf::from("spa/dist");
        d.join("index.html").exists().then_some(d)
    });
    let app = match &spa_dir {
        Some(dir) => {
            tracing::info!(dir = %dir.display(), "serving the labeling app");
            anvil_api::app_with_spa_connecting(state, dir, &discovered.connect_origins)
        }
        None => anvil_api::app(state),
    };
    // One-click demo sign-in only where nobody but this machine's own user can reach it.
    let demo_buttons = demo && addr.ip().is_loopback();
    if demo && !demo_buttons {
        tracing::info!(%addr, "demo sign-in buttons are off: the server does not listen on a loopback address");
    }
    let config = crate::oidc::runtime_config(spa_dir.as_deref(), oidc.as_ref(), demo_buttons);
    let app = app.route("/config.json", crate::oidc::config_route(config));
    let app = if demo_buttons {
        app.route(crate::demo::IDENTITIES_PATH, crate::demo::identities_route(jwt.clone()))
    } else {
        app
    };
    tracing::info!(%addr, store = store.backend(), "anvil listening");
    println!("Anvil is listening on http://{addr}");

    let (tx, rx) = tokio::sync::watch::channel(false);
    // Answers go out as soon as they are written: without TCP_NODELAY a response written in more than one
    // piece can wait for the client's delayed ACK (up to 40 ms on Linux).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = tx.send(true);
    });
    let grace = Duration::from_secs(cfg.shutdown_grace_secs);
    let server = tokio::spawn(async move { server.await });
    // After the signal, in-flight requests get `grace` to finish; then the process exits anyway.
    let mut rx2 = rx.clone();
    let drained = async move {
        let _ = rx2.wait_for(|s| *s).await;
        tracing::info!(grace_secs = grace.as_secs(), "shutting down: draining in-flight requests");
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        res = server => { res??; }
        _ = drained => { tracing::warn!("grace period over; exiting with requests still in flight"); }
    }
    reaper.abort();
    if let Some(s) = sweeper {
        s.abort();
    }
    // Workers finish the job in hand (an interrupted one is retried after its lock expires).
    let _ = stop_workers.send(true);
    let _ = tokio::time::timeout(grace, futures::future::join_all(pollers)).await;
    tracing::info!("anvil stopped");
    Ok(())
}

/// Base of the local blob directory's signed links: ANVIL_PUBLIC_URL, or this server's own address when it
/// listens on loopback, or relative links (`/v1/blobs/...`) when it listens on all interfaces (its public
/// name is not known here).
fn public_url(cfg: &Config) -> String {
    match &cfg.public_url {
        Some(u) if !u.is_empty() => u.trim_end_matches('/').to_string(),
        _ if cfg.bind.ip().is_unspecified() => String::new(),
        _ => format!("http://{}", cfg.bind),
    }
}

/// `anvil worker`: polls the job table until SIGTERM/SIGINT, then finishes the job in hand.
pub async fn worker(cfg: Config) -> anyhow::Result<()> {
    cfg.check_air_gap()?;
    let worker = open_parts(&cfg).await?.worker();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let n = cfg.workers.max(1);
    let visibility = Duration::from_secs(cfg.job_visibility_secs.max(2));
    let handles: Vec<_> =
        (0..n).map(|_| tokio::spawn(jobs::poll(worker.clone(), visibility, rx.clone()))).collect();
    tracing::info!(workers = n, "anvil worker polling the job table");
    shutdown_signal().await;
    tracing::info!("stopping: finishing the jobs in hand");
    let _ = stop.send(true);
    let _ = tokio::time::timeout(
        Duration::from_secs(cfg.shutdown_grace_secs),
        futures::future::join_all(handles),
    )
    .await;
    Ok(())
}

/// Hands jobs that were not sent right after their commit (a crash, an SQS hiccup) to SQS.
async fn sweep_outbox(d: SqsDispatcher) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        match d.dispatch_once(100).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sent = n, "outbox sweep sent jobs to SQS"),
            Err(e) => tracing::warn!(error = %e, "outbox sweep failed"),
        }
    }
}

/// `anvil healthcheck`: asks this host's `anvil serve` for `/health/ready` (for container HEALTHCHECKs in an
/// image with no shell or curl). Exit status 0 when ready.
pub async fn healthcheck(cfg: &Config) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut addr = cfg.bind;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let check = async {
        let mut conn = tokio::net::TcpStream::connect(addr).await?;
        conn.write_all(b"GET /health/ready HTTP/1.0\r\nHost: localhost\r\n\r\n").await?;
        let mut head = vec![0u8; 64];
        let n = conn.read(&mut head).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&head[..n]).to_string())
    };
    let head =
        tokio::time::timeout(Duration::from_secs(5), check).await.context("no answer within 5 s")??;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    anyhow::ensure!(status == "200", "not ready: {}", head.lines().next().unwrap_or(""));
    Ok(())
}

async fn reap_expired_leases(store: Arc<dyn Store>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.reclaim_expired(1000).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(reclaimed = n, "expired leases returned to the pool"),
            Err(e) => tracing::warn!(error = %e, "lease reaper failed"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
