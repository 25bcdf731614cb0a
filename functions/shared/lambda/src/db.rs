//! The database URL of a function: `DATABASE_URL` when set (local runs, `sam local`), otherwise built from
//! the database secret (RDS's JSON) with `ANVIL_DB_HOST`/`_PORT`/`_NAME` taking precedence over the secret's
//! own fields (so the template can point at the RDS Proxy endpoint).

use anyhow::Context;
use serde_json::Value;

use crate::LambdaConfig;
use crate::secrets::Secrets;

/// A `postgres://` URL that may hold a password; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Accepts `postgres://` and `postgresql://` URLs only.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self(url.to_string()))
        } else if url.starts_with("sqlite:") {
            anyhow::bail!(
                "DATABASE_URL: SQLite is not for Lambda (each instance would have its own file in /tmp); \
                 use Postgres (postgres://...) or ANVIL_DB_SECRET_ARN"
            )
        } else {
            anyhow::bail!("DATABASE_URL must start with postgres:// or postgresql://")
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(***)")
    }
}

/// Where the connection goes, after the secret and the environment are combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbParts {
    pub username: String,
    pub password: String,
    pub host: String,
    pub port: u16,
    pub dbname: String,
}

impl DbParts {
    /// From the secret's JSON (`username`, `password`, optional `host`, `port` as number or string,
    /// `dbname`), with the overrides applied. Errors never quote the secret.
    pub fn from_secret(
        raw: &str,
        host: Option<&str>,
        port: Option<u16>,
        dbname: Option<&str>,
    ) -> anyhow::Result<Self> {
        let v: Value = serde_json::from_str(raw).map_err(|_| {
            anyhow::anyhow!(
                "the database secret is not JSON (expected RDS's username/password/host/port/dbname)"
            )
        })?;
        let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let username = field("username").context("the database secret has no `username`")?;
        let password = field("password").context("the database secret has no `password`")?;
        let host = host
            .map(str::to_string)
            .or_else(|| field("host"))
            .context("no database host: set ANVIL_DB_HOST or put `host` in the database secret")?;
        let secret_port = match v.get("port") {
            Some(Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        let port = port.or(secret_port).unwrap_or(5432);
        let dbname =
            dbname.map(str::to_string).or_else(|| field("dbname")).unwrap_or_else(|| "postgres".into());
        Ok(Self { username, password, host, port, dbname })
    }

    /// The URL, with user, password and database name percent-encoded (RDS passwords may hold any printable
    /// character, `@`, `/` and `:` included).
    pub fn to_url(&self, sslmode: &str) -> DatabaseUrl {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        DatabaseUrl(format!(
            "postgres://{}:{}@{}:{}/{}?sslmode={}",
            encode(&self.username),
            encode(&self.password),
            host,
            self.port,
            encode(&self.dbname),
            encode(sslmode),
        ))
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) async fn resolve(cfg: &LambdaConfig, secrets: Option<&Secrets>) -> anyhow::Result<DatabaseUrl> {
    if let Some(url) = cfg.core.database_url.as_deref().filter(|u| !u.trim().is_empty()) {
        return DatabaseUrl::parse(url);
    }
    let arn = cfg.db_secret_arn.as_deref().context(
        "no database configured: set ANVIL_DB_SECRET_ARN (Secrets Manager, RDS JSON) or DATABASE_URL (postgres://...)",
    )?;
    let secrets = secrets.context("ANVIL_DB_SECRET_ARN is set but no Secrets Manager client")?;
    let raw = secrets.get(arn).await.context("ANVIL_DB_SECRET_ARN: cannot read the database secret")?;
    let parts =
        DbParts::from_secret(raw.expose(), cfg.db_host.as_deref(), cfg.db_port, cfg.db_name.as_deref())?;
    match cfg.db_sslmode.as_str() {
        "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full" => {}
        other => anyhow::bail!(
            "ANVIL_DB_SSLMODE must be disable, allow, prefer, require, verify-ca or verify-full, not `{other}`"
        ),
    }
    Ok(parts.to_url(&cfg.db_sslmode))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sqlx::postgres::PgConnectOptions;

    const RDS: &str = r#"{"username":"anvil","password":"p@ss:w/rd?#%é","engine":"postgres",
        "host":"db.internal","port":5432,"dbname":"anvil","dbInstanceIdentifier":"anvil-db"}"#;

    #[test]
    fn an_rds_secret_becomes_a_url_that_sqlx_reads_back_exactly() {
        let url = DbParts::from_secret(RDS, None, None, None).unwrap().to_url("require");
        let opts: PgConnectOptions = url.expose().parse().unwrap();
        assert_eq!(opts.get_username(), "anvil");
        assert_eq!(opts.get_host(), "db.internal");
        assert_eq!(opts.get_port(), 5432);
        assert_eq!(opts.get_database(), Some("anvil"));
        assert!(url.expose().contains("p%40ss%3Aw%2Frd%3F%23%25%C3%A9"));
    }

    #[test]
    fn the_environment_overrides_the_secrets_host_port_and_name() {
        let p = DbParts::from_secret(RDS, Some("proxy.internal"), Some(6432), Some("other")).unwrap();
        assert_eq!((p.host.as_str(), p.port, p.dbname.as_str()), ("proxy.internal", 6432, "other"));
    }

    #[test]
    fn a_managed_master_secret_needs_a_host_from_the_environment() {
        let managed = r#"{"username":"postgres","password":"x"}"#;
        let err = DbParts::from_secret(managed, None, None, None).unwrap_err();
        assert!(err.to_string().contains("ANVIL_DB_HOST"));
        let p = DbParts::from_secret(managed, Some("h"), None, None).unwrap();
        assert_eq!((p.port, p.dbname.as_str()), (5432, "postgres"));
    }

    #[test]
    fn a_port_may_be_a_string() {
        let s = r#"{"username":"u","password":"p","host":"h","port":"6543"}"#;
        assert_eq!(DbParts::from_secret(s, None, None, None).unwrap().port, 6543);
    }

    #[test]
    fn errors_never_quote_the_secret() {
        let err = DbParts::from_secret("hunter2-not-json", None, None, None).unwrap_err();
        assert!(!format!("{err:#}").contains("hunter2"));
    }

    #[test]
    fn sqlite_is_refused_with_the_reason() {
        let err = DatabaseUrl::parse("sqlite://x.db").unwrap_err();
        assert!(err.to_string().contains("not for Lambda"));
        assert!(DatabaseUrl::parse("postgresql://u@h/d").is_ok());
    }

    #[test]
    fn a_url_never_prints() {
        let url = DatabaseUrl::parse("postgres://u:hunter2@h/d").unwrap();
        assert_eq!(format!("{url:?}"), "DatabaseUrl(***)");
    }
}
