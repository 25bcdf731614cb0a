//! What a function test runs against: a fresh Postgres database (migrated, dropped at the end), an HS256
//! secret, tokens minted with it, and seeded queues.

use std::sync::Arc;
use std::time::Duration;

use anvil_core::auth::{AuthSettings, JwtVerifier, KeyConfig, Principal, Secret};
use anvil_core::domain::{Subject, TenantId};
use anvil_core::service::Anvil;
use anvil_core::store::postgres::{PgStore, app_pool, migrate};
use anvil_core::store::{ExportRecord, TaskStore};
use anvil_types::{CreateExport, FileFormat, Role, SubmitLabel};
use anyhow::Context;
use serde_json::{Value, json};
use sqlx::Connection;
use uuid::Uuid;

/// The server every test database is made on.
pub fn base_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, db: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").context("not a URL")? + 3;
    let mut out = match base[after_scheme..].find('/') {
        Some(i) => base[..after_scheme + i].to_string(),
        None => base.to_string(),
    };
    out.push('/');
    out.push_str(db);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

/// A fresh database, its HS256 secret, and an Anvil service over it for seeding.
pub struct TestEnv {
    pub db_name: String,
    /// The URL of the fresh database (as the owner).
    pub database_url: String,
    pub hs256_secret: String,
    verifier: Arc<JwtVerifier>,
    anvil: Anvil,
    tasks: Arc<dyn TaskStore>,
    pool: sqlx::PgPool,
}

impl TestEnv {
    /// Creates a database named after the test, migrated unless `migrated` is false.
    pub async fn new(label: &str, migrated: bool) -> anyhow::Result<Self> {
        let base = base_url();
        let label: String = label.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let db_name = format!("anvil_lambda_{label}_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&base).await.with_context(|| {
            "connecting to DATABASE_URL (Postgres on 127.0.0.1:5432 expected)".to_string()
        })?;
        // the name is ours: letters, digits and underscores only
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{db_name}\"")))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        let database_url = with_database(&base, &db_name)?;
        if migrated {
            migrate(&database_url).await.context("migrating the test database")?;
        }
        let hs256_secret = format!("lambda-test-secret-{}", Uuid::new_v4().simple());
        let verifier = Arc::new(JwtVerifier::new(
            AuthSettings::default(),
            KeyConfig {
                hs256_secret: Some(Secret::new(hs256_secret.as_bytes().to_vec())),
                ..Default::default()
            },
        )?);
        let opts: sqlx::postgres::PgConnectOptions = database_url.parse()?;
        let pool = app_pool(opts, 4, Duration::from_secs(10));
        let store = Arc::new(PgStore::new(pool.clone()));
        let anvil = Anvil::new(store.clone(), verifier.clone());
        Ok(Self { db_name, database_url, hs256_secret, verifier, anvil, tasks: store, pool })
    }

    /// The environment a function needs to reach this database with this secret (no Secrets Manager).
    pub fn function_env(&self) -> Vec<(String, String)> {
        vec![
            ("DATABASE_URL".into(), self.database_url.clone()),
            ("ANVIL_JWT_HS256_SECRET".into(), self.hs256_secret.clone()),
            ("ANVIL_DB_MAX_CONNECTIONS".into(), "2".into()),
        ]
    }

    /// This database's credentials as the JSON RDS keeps in Secrets Manager. Without a password in
    /// `DATABASE_URL` (trust authentication) the password is one full of URL-reserved characters, so the
    /// function's URL encoding is exercised end to end.
    pub fn rds_secret_json(&self) -> anyhow::Result<String> {
        let opts: sqlx::postgres::PgConnectOptions = self.database_url.parse()?;
        let password = url_password(&self.database_url).unwrap_or_else(|| "p@ss:w/rd?#%& é".into());
        Ok(json!({
            "username": opts.get_username(),
            "password": password,
            "engine": "postgres",
            "host": opts.get_host(),
            "port": opts.get_port(),
            "dbname": self.db_name,
            "dbInstanceIdentifier": "anvil-test",
        })
        .to_string())
    }

    /// A JWT for tenant/subject/role, signed with this environment's secret.
    pub fn token(&self, tenant: &str, subject: &str, role: Role) -> anyhow::Result<String> {
        self.verifier.mint(
            &TenantId::parse(tenant).context("tenant")?,
            &Subject::parse(subject).context("subject")?,
            role,
            Duration::from_secs(3600),
        )
    }

    async fn principal(&self, tenant: &str, subject: &str, role: Role) -> anyhow::Result<Principal> {
        Ok(self.anvil.authenticate(&self.token(tenant, subject, role)?).await?)
    }

    /// A queue with one required single-choice field `sentiment` (pos/neg) and `n` text samples.
    pub async fn queue_with_samples(&self, tenant: &str, name: &str, n: usize) -> anyhow::Result<Uuid> {
        let admin = self.principal(tenant, "admin", Role::Admin).await?;
        let create = serde_json::from_value(json!({
            "name": name,
            "lease_seconds": 300,
            "schema": sentiment_schema(),
        }))?;
        let queue = self.anvil.create_queue(&admin, &create).await?;
        let samples: Vec<Value> = (0..n)
            .map(|i| json!({"external_id": format!("s{i:04}"), "payload": {"text": format!("sample {i}")}}))
            .collect();
        let add = serde_json::from_value(json!({ "samples": samples }))?;
        self.anvil.add_samples(&admin, queue.id, &add).await?;
        Ok(queue.id)
    }

    /// Claims the next sample of `queue` for `subject` (a labeler) and returns the assignment id.
    pub async fn claim(&self, tenant: &str, subject: &str, queue: Uuid) -> anyhow::Result<Uuid> {
        let p = self.principal(tenant, subject, Role::Labeler).await?;
        let claim = self.anvil.claim(&p, queue).await?.context("nothing to claim")?;
        Ok(claim.assignment.id)
    }

    /// Claims and labels `n` samples of `queue` as `subject` (each with `sentiment: pos`).
    pub async fn label(&self, tenant: &str, subject: &str, queue: Uuid, n: usize) -> anyhow::Result<()> {
        let p = self.principal(tenant, subject, Role::Labeler).await?;
        for _ in 0..n {
            let claim = self.anvil.claim(&p, queue).await?.context("nothing to claim")?;
            let submit =
                SubmitLabel { assignment_id: claim.assignment.id, payload: json!({"sentiment": "pos"}) };
            self.anvil.submit(&p, &submit).await?;
        }
        Ok(())
    }

    /// Requests a JSONL export of `queue` through the store, as the API does (the export row and its job row
    /// in one transaction); nothing dispatches the job. Returns the export id.
    pub async fn create_export(&self, tenant: &str, queue: Uuid) -> anyhow::Result<Uuid> {
        let t = TenantId::parse(tenant).context("tenant")?;
        let req =
            CreateExport { format: FileFormat::Jsonl, filter: Default::default(), mode: Default::default() };
        let rec =
            self.tasks.create_export(&t, &Subject::parse("admin").context("subject")?, queue, &req).await?;
        Ok(rec.export.id)
    }

    /// An export as the store has it (with its object key).
    pub async fn export(&self, tenant: &str, id: Uuid) -> anyhow::Result<ExportRecord> {
        Ok(self.tasks.get_export(&TenantId::parse(tenant).context("tenant")?, id).await?)
    }

    /// The job of an export: its id, state, attempts and whether the dispatcher handed it to SQS (read as the
    /// owner, past row-level security).
    pub async fn export_job(&self, export: Uuid) -> anyhow::Result<JobRow> {
        let mut conn = sqlx::PgConnection::connect(&self.database_url).await?;
        let row: (Uuid, String, i32, bool) = sqlx::query_as(
            "SELECT id, state, attempts, dispatched_at IS NOT NULL FROM jobs WHERE payload->>'export_id' = $1",
        )
        .bind(export.to_string())
        .fetch_one(&mut conn)
        .await
        .context("no job for this export")?;
        conn.close().await?;
        Ok(JobRow { id: row.0, state: row.1, attempts: row.2, dispatched: row.3 })
    }

    /// The tables of the public schema (to see what a migration created).
    pub async fn tables(&self) -> anyhow::Result<Vec<String>> {
        let mut conn = sqlx::PgConnection::connect(&self.database_url).await?;
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await?;
        conn.close().await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Drops the database (call at the end of a test; a failed test leaves it for inspection).
    pub async fn close(self) -> anyhow::Result<()> {
        self.pool.close().await;
        let mut admin = sqlx::PgConnection::connect(&base_url()).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.db_name
        )))
        .execute(&mut admin)
        .await?;
        admin.close().await?;
        Ok(())
    }
}

/// A row of the jobs table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub id: Uuid,
    pub state: String,
    pub attempts: i32,
    pub dispatched: bool,
}

/// The percent-decoded password of a `scheme://user:password@host/...` URL.
fn url_password(url: &str) -> Option<String> {
    let rest = &url[url.find("://")? + 3..];
    let userinfo = &rest[..rest.find('@')?];
    let (_, pw) = userinfo.split_once(':')?;
    let bytes = pw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) =
                std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The label schema of the seeded queues.
pub fn sentiment_schema() -> Value {
    json!({"fields": [{"name": "sentiment", "kind": "single_choice", "required": true, "options": ["pos", "neg"]}]})
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_database_name_is_replaced_and_the_query_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "y").unwrap(),
            "postgres://u:p@h/y?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "z").unwrap(), "postgres://h/z");
    }

    #[test]
    fn a_url_password_is_decoded() {
        assert_eq!(url_password("postgres://u:p%40ss@h/d").as_deref(), Some("p@ss"));
        assert_eq!(url_password("postgres://u@h/d"), None);
    }
}
