//! The composition root: the one place that turns a parsed [`Config`] into Anvil's parts — the store
//! (Postgres, or the embedded SQLite file), the blob store (S3, or a local directory behind signed links),
//! the job dispatcher (SQS, or the job table's pollers), the job runner and the services. `anvil serve`,
//! `anvil worker`, `anvil migrate`, every Lambda function and the tests build through here; a process differs
//! from another only in which parts it asks for.
//!
//! Which adapters a binary contains is chosen by this crate's Cargo features: `postgres`, `sqlite` and `aws`
//! (S3 and SQS). The Lambda functions take `postgres` + `aws` (no SQLite: each instance would have its own
//! file), `anvil` takes all three. A setting that names an adapter the binary was built without is refused
//! here, naming the setting.

use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "sqlite")]
use std::path::PathBuf;

use anyhow::Context;

use crate::auth::JwtVerifier;
use crate::blob::{BlobStore, FsBlobStore, UrlSigner};
use crate::config::Config;
use crate::files::{ensure_data_dir, read_or_create_secret};
use crate::health::{BlobProbe, Probe, StoreProbe};
use crate::jobs::Worker;
use crate::service::{Anvil, Background, MAX_URL_TTL};
use crate::store::{Store, TaskStore};

/// The AWS configuration S3 and SQS clients are built from. Without the `aws` feature it is an empty type:
/// signatures stay the same and no value of it can exist.
#[cfg(feature = "aws")]
pub type AwsConfig = aws_config::SdkConfig;
/// The AWS configuration S3 and SQS clients are built from (this build has no AWS support).
#[cfg(not(feature = "aws"))]
#[derive(Debug)]
pub enum AwsConfig {}

/// Where the store lives, from `DATABASE_URL` (or the data directory's SQLite file when it is empty).
#[derive(Clone)]
pub enum Database {
    /// A Postgres server; the URL may hold a password and is never printed.
    #[cfg(feature = "postgres")]
    Postgres(Box<sqlx::postgres::PgConnectOptions>),
    /// The embedded SQLite file.
    #[cfg(feature = "sqlite")]
    Sqlite(PathBuf),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(o) => {
                write!(f, "Postgres({}:{}/{})", o.get_host(), o.get_port(), o.get_database().unwrap_or(""))
            }
            #[cfg(feature = "sqlite")]
            Self::Sqlite(p) => write!(f, "Sqlite({})", p.display()),
        }
    }
}

impl Database {
    /// `DATABASE_URL` picks the store; without it, the embedded SQLite file `<data dir>/anvil.db` (created
    /// empty and private to its owner on first use).
    pub fn from_config(cfg: &Config) -> anyhow::Result<Self> {
        match cfg.database_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => Self::postgres(u),
            Some(u) if u.starts_with("sqlite:") => Self::sqlite_url(u),
            Some(_) => anyhow::bail!("DATABASE_URL must start with postgres://, postgresql:// or sqlite://"),
            None => Self::embedded(cfg),
        }
    }

    /// A Postgres URL (`postgres://` or `postgresql://`).
    pub fn postgres(url: &str) -> anyhow::Result<Self> {
        #[cfg(feature = "postgres")]
        {
            let opts = url.parse().context("the database URL does not parse")?;
            Ok(Self::Postgres(Box::new(opts)))
        }
        #[cfg(not(feature = "postgres"))]
        {
            let _ = url;
            anyhow::bail!("DATABASE_URL names Postgres, but this build of Anvil has no Postgres store")
        }
    }

    fn sqlite_url(url: &str) -> anyhow::Result<Self> {
        #[cfg(feature = "sqlite")]
        {
            Ok(Self::Sqlite(crate::store::sqlite::SqliteStore::path_from_url(url)?))
        }
        #[cfg(not(feature = "sqlite"))]
        {
            let _ = url;
            anyhow::bail!("DATABASE_URL names SQLite, but this build of Anvil has no SQLite store")
        }
    }

    fn embedded(cfg: &Config) -> anyhow::Result<Self> {
        #[cfg(feature = "sqlite")]
        {
            ensure_data_dir(&cfg.data_dir)?;
            let db = cfg.data_dir.join("anvil.db");
            if !db.exists() {
                // SQLite gives its -wal and -shm files the permissions of the database file.
                crate::files::write_private(&db, b"")?;
            }
            Ok(Self::Sqlite(db))
        }
        #[cfg(not(feature = "sqlite"))]
        {
            let _ = cfg;
            anyhow::bail!("DATABASE_URL is not set, and this build of Anvil has no embedded SQLite store")
        }
    }

    /// Applies the migrations: Postgres as the connecting user (the tables' owner), SQLite on open.
    pub async fn migrate(&self, cfg: &Config) -> anyhow::Result<()> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(opts) => crate::store::postgres::migrate_with(opts.as_ref().clone())
                .await
                .context("migrating Postgres")?,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(path) => {
                Stores::sqlite(path, durability(cfg)?).await?;
            }
        }
        let _ = cfg;
        Ok(())
    }
}

/// Whether [`Stores::open`] applies the Postgres migrations first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// Apply them (as the connecting user): `anvil serve`, `anvil worker`.
    Run,
    /// The schema is someone else's job (the AWS `migrate` function, run as the owner before any other).
    Skip,
}

/// The store, as the two ports the rest of Anvil sees.
#[derive(Clone)]
pub struct Stores {
    pub store: Arc<dyn Store>,
    pub tasks: Arc<dyn TaskStore>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").field("backend", &self.store.backend()).finish()
    }
}

impl Stores {
    /// Opens the store. Postgres: a pool whose connections run as the application role (`anvil_app`, a
    /// non-owner role row-level security applies to), opened lazily; SQLite: the file, migrated, with one
    /// writer connection and a pool of readers.
    pub async fn open(cfg: &Config, db: &Database, migrations: Migrations) -> anyhow::Result<Self> {
        match db {
            #[cfg(feature = "postgres")]
            Database::Postgres(opts) => {
                if migrations == Migrations::Run {
                    db.migrate(cfg).await?;
                }
                Ok(Self::postgres(
                    opts.as_ref().clone(),
                    cfg.db_max_connections,
                    Duration::from_secs(cfg.db_acquire_timeout_secs),
                ))
            }
            // The SQLite file is migrated whenever it is opened: it has no separate owner.
            #[cfg(feature = "sqlite")]
            Database::Sqlite(path) => {
                let _ = migrations;
                Self::sqlite(path, durability(cfg)?).await
            }
        }
    }

    /// The Postgres store over a pool of at most `max_connections` (at least 1), running as the application
    /// role; no connection is opened here.
    #[cfg(feature = "postgres")]
    pub fn postgres(
        opts: sqlx::postgres::PgConnectOptions,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Self {
        use crate::store::postgres::{PgStore, app_pool};
        let pool = app_pool(opts, max_connections.max(1), acquire_timeout.max(Duration::from_secs(1)));
        let store = Arc::new(PgStore::new(pool));
        Self { store: store.clone(), tasks: store }
    }

    /// The embedded SQLite store in the file at `path` (created and migrated when new).
    #[cfg(feature = "sqlite")]
    pub async fn sqlite(
        path: &std::path::Path,
        durability: crate::store::sqlite::Durability,
    ) -> anyhow::Result<Self> {
        let store = crate::store::sqlite::SqliteStore::open(path, durability)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        tracing::info!(path = %path.display(), "embedded SQLite store");
        let store = Arc::new(store);
        Ok(Self { store: store.clone(), tasks: store })
    }

    /// The services over this store, with no background work (a process that serves no export or import).
    pub fn anvil(&self, jwt: Arc<JwtVerifier>) -> Anvil {
        Anvil::new(self.store.clone(), jwt)
    }
}

/// `ANVIL_SQLITE_SYNCHRONOUS`: `full` (the default: a commit survives a power cut) or `normal`.
#[cfg(feature = "sqlite")]
pub fn durability(cfg: &Config) -> anyhow::Result<crate::store::sqlite::Durability> {
    use crate::store::sqlite::Durability;
    match cfg.sqlite_synchronous.to_ascii_lowercase().as_str() {
        "full" => Ok(Durability::Full),
        "normal" => Ok(Durability::Normal),
        other => anyhow::bail!("ANVIL_SQLITE_SYNCHRONOUS must be `full` or `normal`, not `{other}`"),
    }
}

/// Whether the configuration names S3 or SQS (and so needs an AWS configuration).
pub fn needs_aws(cfg: &Config) -> bool {
    s3_bucket(cfg).is_some() || sqs_queue_url(cfg).is_some()
}

/// `ANVIL_S3_BUCKET`, when set to something other than blanks.
pub fn s3_bucket(cfg: &Config) -> Option<&str> {
    cfg.s3_bucket.as_deref().map(str::trim).filter(|b| !b.is_empty())
}

/// `ANVIL_SQS_QUEUE_URL`, when set to something other than blanks.
pub fn sqs_queue_url(cfg: &Config) -> Option<&str> {
    cfg.sqs_queue_url.as_deref().map(str::trim).filter(|u| !u.is_empty())
}

/// The AWS configuration when S3 or SQS is configured, else `None` (nothing is read). The configured region
/// goes into the loader itself: left to the default chain, the region is looked up on the instance-metadata
/// endpoint (never acceptable on an air-gapped site). Loading opens no connection.
pub async fn aws_config(cfg: &Config) -> anyhow::Result<Option<AwsConfig>> {
    if !needs_aws(cfg) {
        return Ok(None);
    }
    #[cfg(feature = "aws")]
    {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(r) = cfg.s3_region.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
            loader = loader.region(aws_config::Region::new(r.to_string()));
        }
        Ok(Some(loader.load().await))
    }
    #[cfg(not(feature = "aws"))]
    anyhow::bail!("ANVIL_S3_BUCKET / ANVIL_SQS_QUEUE_URL are set, but this build of Anvil has no AWS support")
}

impl Background {
    /// The ports of background work as configured. Blobs: S3 when `ANVIL_S3_BUCKET` is set (with the
    /// S3-compatible endpoint, path-style and region settings), else the local directory `<data dir>/blobs`,
    /// whose links are signed for `public_url`. Jobs: handed to SQS when `ANVIL_SQS_QUEUE_URL` is set, else
    /// left in the job table for the pollers. `aws` is the configuration [`aws_config`] loaded (a Lambda
    /// function brings its own, with its own HTTP client); building the clients opens no connection.
    pub fn from_config(
        cfg: &Config,
        tasks: Arc<dyn TaskStore>,
        public_url: &str,
        aws: Option<&AwsConfig>,
    ) -> anyhow::Result<Self> {
        let bucket = s3_bucket(cfg);
        if needs_aws(cfg) && aws.is_none() {
            anyhow::bail!("ANVIL_S3_BUCKET / ANVIL_SQS_QUEUE_URL need an AWS configuration");
        }
        let (blobs, local): (Arc<dyn BlobStore>, Option<FsBlobStore>) = match (bucket, aws) {
            #[cfg(feature = "aws")]
            (Some(bucket), Some(aws)) => {
                let s3 = crate::blob_s3::S3BlobStore::from_sdk_config(
                    aws,
                    bucket,
                    cfg.s3_endpoint.as_deref().filter(|e| !e.is_empty()),
                    cfg.s3_path_style,
                    cfg.s3_region.as_deref().filter(|r| !r.is_empty()),
                );
                tracing::info!(bucket, "blob store: S3");
                (Arc::new(s3), None)
            }
            _ => {
                ensure_data_dir(&cfg.data_dir)?;
                let secret = read_or_create_secret(&cfg.data_dir.join("blob-secret"))?;
                let fs = FsBlobStore::new(
                    cfg.data_dir.join("blobs"),
                    UrlSigner::new(secret, public_url.trim_end_matches('/')),
                )?;
                tracing::info!(dir = %cfg.data_dir.join("blobs").display(), "blob store: local directory");
                (Arc::new(fs.clone()), Some(fs))
            }
        };
        #[cfg(feature = "aws")]
        let dispatcher: Option<crate::service::Dispatcher> = match (sqs_queue_url(cfg), aws) {
            (Some(url), Some(aws)) => {
                Some(crate::sqs::SqsDispatcher::new(aws_sdk_sqs::Client::new(aws), url, tasks.clone()))
            }
            _ => None,
        };
        #[cfg(not(feature = "aws"))]
        let dispatcher = None;
        Ok(Self {
            tasks,
            blobs,
            local,
            download_ttl: Duration::from_secs(cfg.export_url_ttl_secs.clamp(60, MAX_URL_TTL.as_secs())),
            upload_ttl: Duration::from_secs(3600),
            dispatcher,
        })
    }
}

/// A process's store and background ports together: what `anvil serve`, `anvil worker`, the exports and
/// queues functions and the worker function are made of.
#[derive(Clone)]
pub struct Parts {
    pub stores: Stores,
    pub background: Background,
}

impl Parts {
    /// The store (migrated first when `migrations` says so) and the background ports, from the configuration.
    pub async fn open(
        cfg: &Config,
        db: &Database,
        migrations: Migrations,
        public_url: &str,
        aws: Option<&AwsConfig>,
    ) -> anyhow::Result<Self> {
        let stores = Stores::open(cfg, db, migrations).await?;
        Self::over(cfg, stores, public_url, aws)
    }

    /// The background ports over a store already open.
    pub fn over(
        cfg: &Config,
        stores: Stores,
        public_url: &str,
        aws: Option<&AwsConfig>,
    ) -> anyhow::Result<Self> {
        let background = Background::from_config(cfg, stores.tasks.clone(), public_url, aws)?;
        Ok(Self { stores, background })
    }

    /// The job runner over these ports.
    pub fn worker(&self) -> Worker {
        Worker {
            store: self.stores.store.clone(),
            tasks: self.stores.tasks.clone(),
            blobs: self.background.blobs.clone(),
        }
    }

    /// The services, with exports, imports and jobs.
    pub fn anvil(&self, jwt: Arc<JwtVerifier>) -> Anvil {
        self.stores.anvil(jwt).with_background(self.background.clone())
    }

    /// Readiness probes: the store and the blob store.
    pub fn probes(&self) -> Vec<Arc<dyn Probe>> {
        vec![
            Arc::new(StoreProbe(self.stores.store.clone())),
            Arc::new(BlobProbe(self.background.blobs.clone())),
        ]
    }
}
