//! anvil-lambda: what every Anvil Lambda function does before `run`, written once.
//!
//! A function's `main` is three calls: [`init`] (JSON tracing + [`LambdaConfig`] from the environment),
//! [`app_state`] (Postgres pool, JWT verifier, probes: built once per cold start, never per request), then
//! `lambda_http::run(anvil_api::group_app(group, state))`. The same handlers run in `anvil serve`; nothing here
//! knows about Lambda request context. The worker function builds [`jobs`] instead (no JWT key, no router).
//! The store and the background ports come from the composition root (`anvil_core::compose`), as in `anvil`.
//!
//! Features: `http` (the HTTP functions: [`app_state`], anvil-api) and `jobs` (S3 and SQS: the worker, and the
//! HTTP groups that create exports and imports). The migrate function takes neither.
//!
//! - [`aws`]: the AWS configuration (one load per cold start, only when the function calls AWS; the
//!   root certificates compiled in).
//! - [`secrets`]: Secrets Manager by ARN (database credentials as RDS writes them, JWT keys), fetched once.
//! - [`db`]: the database URL from `DATABASE_URL` or the secret; Postgres only (SQLite is not for Lambda: its
//!   file would live in one instance's /tmp and vanish with it).

pub mod aws;
pub mod db;
#[cfg(feature = "http")]
mod http;
pub mod secrets;

use std::sync::Arc;
use std::time::Duration;

use anvil_core::auth::{JwtVerifier, KeyConfig};
#[cfg(feature = "jobs")]
use anvil_core::compose::Parts;
use anvil_core::compose::{self, Database, Migrations, Stores};
use anvil_core::config::Config;
#[cfg(feature = "jobs")]
use anvil_core::jobs::Worker;
#[cfg(feature = "jobs")]
use anvil_core::sqs::SqsDispatcher;
use anvil_core::store::Store;
use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser};

pub use db::DatabaseUrl;
#[cfg(feature = "http")]
pub use http::{app_state, needs_background};
pub use secrets::Secrets;

/// A Lambda function's settings: Anvil's [`Config`] plus where the AWS-only secrets live. Read from the
/// environment only (a function has no command line); the template sets every variable.
#[derive(Debug, Clone, Parser)]
#[command(name = "anvil-lambda", no_binary_name = true)]
pub struct LambdaConfig {
    #[command(flatten)]
    pub core: Config,

    /// ARN of a Secrets Manager secret with the database credentials, as JSON the way RDS writes it
    /// (`username`, `password`, and optionally `host`, `port`, `dbname`). Used when `DATABASE_URL` is empty.
    #[arg(long, env = "ANVIL_DB_SECRET_ARN")]
    pub db_secret_arn: Option<String>,

    /// Database host; overrides the secret's `host` (e.g. the RDS Proxy endpoint, or an RDS-managed master
    /// secret, which holds only `username` and `password`).
    #[arg(long, env = "ANVIL_DB_HOST")]
    pub db_host: Option<String>,

    /// Database port; overrides the secret's `port` (default 5432).
    #[arg(long, env = "ANVIL_DB_PORT")]
    pub db_port: Option<u16>,

    /// Database name; overrides the secret's `dbname` (default `postgres`).
    #[arg(long, env = "ANVIL_DB_NAME")]
    pub db_name: Option<String>,

    /// `sslmode` of a URL built from the secret: `prefer`, `require`, `verify-ca` or `verify-full`.
    #[arg(long, env = "ANVIL_DB_SSLMODE", default_value = "prefer")]
    pub db_sslmode: String,

    /// ARN of a Secrets Manager secret with the JWT keys: either the HS256 secret itself (a plain string,
    /// as `GenerateSecretString` makes it) or JSON with any of `hs256_secret`, `public_key_pem`, `jwks`.
    #[arg(long, env = "ANVIL_JWT_SECRET_ARN")]
    pub jwt_secret_arn: Option<String>,
}

impl LambdaConfig {
    /// Parses the environment. A variable set to the empty string counts as unset (the template declares
    /// `DATABASE_URL` and `ANVIL_JWT_HS256_SECRET` blank so `sam local --env-vars env.json` can fill them).
    /// Errors name the variable.
    pub fn from_env() -> anyhow::Result<Self> {
        let mut cmd = Self::command();
        let blank: Vec<clap::Id> = cmd
            .get_arguments()
            .filter(|a| a.get_env().and_then(std::env::var_os).is_some_and(|v| v.is_empty()))
            .map(|a| a.get_id().clone())
            .collect();
        for id in blank {
            cmd = cmd.mut_arg(id, |a| a.env(None::<&str>));
        }
        let parsed = cmd
            .try_get_matches_from_mut(std::iter::empty::<String>())
            .and_then(|m| Self::from_arg_matches(&m));
        parsed.map_err(|e| anyhow::anyhow!("{}", config_error(&cmd, &e)))
    }
}

/// A clap error in terms of environment variables: `ANVIL_DB_PORT: invalid value ''` rather than
/// `--db-port <DB_PORT>` and a pointer to `--help` that a function does not have.
fn config_error(cmd: &clap::Command, e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let var = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => cmd
            .get_arguments()
            .find(|a| a.get_long().is_some_and(|l| arg.split_whitespace().next() == Some(&format!("--{l}"))))
            .and_then(|a| a.get_env())
            .map(|v| v.to_string_lossy().into_owned()),
        _ => None,
    };
    let value = match e.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(v)) => format!(" `{v}`"),
        _ => String::new(),
    };
    let first = e.to_string();
    let first = first.lines().next().unwrap_or_default().trim_start_matches("error: ");
    match var {
        Some(var) => format!("configuration: {var}: invalid value{value} ({first})"),
        None => format!("configuration: {first}"),
    }
}

/// JSON tracing to stderr, which Lambda sends to CloudWatch (the same set-up as `anvil`).
pub use anvil_core::telemetry::init_tracing;

/// Tracing and configuration: the first thing a function's `main` does. A configuration error is logged as
/// JSON (so it reaches CloudWatch in the same shape as everything else) and returned.
pub fn init() -> anyhow::Result<LambdaConfig> {
    match LambdaConfig::from_env() {
        Ok(cfg) => {
            init_tracing(&cfg.core.log_format);
            Ok(cfg)
        }
        Err(e) => {
            init_tracing("json");
            tracing::error!(error = %format!("{e:#}"), "cold start failed");
            Err(e)
        }
    }
}

/// Whether a secret lives in Secrets Manager.
pub(crate) fn has_secret_arns(cfg: &LambdaConfig) -> bool {
    cfg.db_secret_arn.is_some() || cfg.jwt_secret_arn.is_some()
}

/// The AWS configuration, loaded only when something needs it.
pub(crate) async fn aws_config_if(needed: bool) -> anyhow::Result<Option<aws_config::SdkConfig>> {
    Ok(if needed { Some(aws::sdk_config().await?) } else { None })
}

/// The Secrets Manager client, built only when a secret ARN is configured.
pub(crate) fn secrets_client(cfg: &LambdaConfig, aws: Option<&aws_config::SdkConfig>) -> Option<Secrets> {
    aws.filter(|_| has_secret_arns(cfg)).map(Secrets::new)
}

/// The database URL: `DATABASE_URL`, or one built from the database secret (fetched once, here).
pub async fn database_url(cfg: &LambdaConfig) -> anyhow::Result<DatabaseUrl> {
    logged(
        async {
            let aws = aws_config_if(has_secret_arns(cfg)).await?;
            db::resolve(cfg, secrets_client(cfg, aws.as_ref()).as_ref()).await
        }
        .await,
    )
}

/// The JWT verifier from the configured keys and/or the JWT secret (fetched once, here).
pub async fn jwt_verifier(cfg: &LambdaConfig, secrets: Option<&Secrets>) -> anyhow::Result<Arc<JwtVerifier>> {
    let mut keys = cfg.core.key_config()?;
    if let Some(arn) = &cfg.jwt_secret_arn {
        let secrets = secrets.context("ANVIL_JWT_SECRET_ARN is set but no Secrets Manager client")?;
        let raw = secrets.get(arn).await.context("ANVIL_JWT_SECRET_ARN: cannot read the JWT secret")?;
        secrets::merge_jwt_secret(&mut keys, raw.expose())?;
    }
    if !has_keys(&keys) {
        anyhow::bail!(
            "no JWT verification key: set ANVIL_JWT_SECRET_ARN (Secrets Manager), ANVIL_JWT_JWKS_URL, \
             ANVIL_JWT_HS256_SECRET or ANVIL_JWT_PUBLIC_KEY_FILE (a Lambda function has no local secret)"
        );
    }
    let v = JwtVerifier::new(cfg.core.auth_settings(), keys)?;
    v.prefetch().await;
    Ok(Arc::new(v))
}

fn has_keys(k: &KeyConfig) -> bool {
    k.hs256_secret.is_some() || !k.public_key_pems.is_empty() || k.jwks_json.is_some() || k.jwks_url.is_some()
}

/// A function that creates exports or runs jobs keeps its files in S3 and hands its jobs to SQS: it has no
/// disk that outlives the instance and no poller. Refused at init, naming the variable, rather than at the
/// first export.
#[cfg(feature = "jobs")]
pub(crate) fn check_background(cfg: &LambdaConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        compose::s3_bucket(&cfg.core).is_some(),
        "ANVIL_S3_BUCKET is not set: exports and imports are kept in S3 (a function has no lasting disk)"
    );
    anyhow::ensure!(
        compose::sqs_queue_url(&cfg.core).is_some(),
        "ANVIL_SQS_QUEUE_URL is not set: the worker function runs jobs from SQS (a function polls no table)"
    );
    Ok(())
}

/// The Postgres store over a pool that runs as the application role (the composition root's), with the
/// function's pool settings. No connection is opened here; migrations are the `migrate` function's.
pub async fn pg_store(cfg: &LambdaConfig, url: &DatabaseUrl) -> anyhow::Result<Stores> {
    let db = Database::postgres(url.expose())?;
    Stores::open(&cfg.core, &db, Migrations::Skip).await
}

/// Opens one connection during init (Lambda gives init a full CPU and does not bill the first 10 s the same
/// way); a database that is down now is reported, not fatal: /health/ready says so per request, and a job
/// fails and comes back.
pub async fn warm(store: &dyn Store) {
    match tokio::time::timeout(Duration::from_secs(3), store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "database not reachable at init"),
        Err(_) => tracing::warn!("database did not answer within 3 s at init"),
    }
}

/// What the worker function needs, built once per cold start: the job runner (Postgres, S3) and the SQS
/// dispatcher of the outbox sweep.
#[cfg(feature = "jobs")]
#[derive(Clone)]
pub struct Jobs {
    pub worker: Worker,
    pub dispatcher: SqsDispatcher,
}

/// The worker function's state: the database (URL or secret), S3 and SQS from the environment; no JWT key.
#[cfg(feature = "jobs")]
pub async fn jobs(cfg: &LambdaConfig) -> anyhow::Result<Jobs> {
    logged(build_jobs(cfg).await)
}

#[cfg(feature = "jobs")]
async fn build_jobs(cfg: &LambdaConfig) -> anyhow::Result<Jobs> {
    check_background(cfg)?;
    let aws = aws::sdk_config().await?;
    let url = db::resolve(cfg, secrets_client(cfg, Some(&aws)).as_ref()).await?;
    let parts = Parts::over(&cfg.core, pg_store(cfg, &url).await?, "", Some(&aws))?;
    warm(parts.stores.store.as_ref()).await;
    let dispatcher = parts.background.dispatcher.clone().context("ANVIL_SQS_QUEUE_URL is not set")?;
    Ok(Jobs { worker: parts.worker(), dispatcher })
}

/// Logs an init failure as one JSON line (with its cause chain, never a secret) before it ends the process.
pub(crate) fn logged<T>(res: anyhow::Result<T>) -> anyhow::Result<T> {
    if let Err(e) = &res {
        tracing::error!(error = %format!("{e:#}"), "cold start failed");
    }
    res
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_bad_value_is_reported_by_its_environment_variable() {
        let mut cmd = LambdaConfig::command();
        let err = cmd.try_get_matches_from_mut(["--db-port", "x"]).unwrap_err();
        let msg = config_error(&cmd, &err);
        assert!(msg.starts_with("configuration: ANVIL_DB_PORT: invalid value `x`"), "{msg}");
        assert!(!msg.contains("--help"), "{msg}");
    }

    #[test]
    fn the_settings_have_their_defaults_without_any_variable() {
        let cfg = LambdaConfig::try_parse_from(std::iter::empty::<String>()).unwrap();
        assert_eq!(cfg.db_sslmode, "prefer");
        assert!(cfg.db_secret_arn.is_none() && cfg.jwt_secret_arn.is_none());
    }
}
