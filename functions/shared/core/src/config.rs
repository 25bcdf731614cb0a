//! Configuration, parsed once from the environment (and `anvil` flags, which take the same names).
//! Every variable is listed in `.env.sample`. Secrets are read from env or files and never printed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::auth::{AuthSettings, KeyConfig, Secret};

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Store: `postgres://user@host/db` or `sqlite://path`. Empty: the embedded SQLite store in the data dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// SQLite durability: `full` (default; an acknowledged write survives a power cut) or `normal` (about 10x
    /// faster; survives a crash of the process but may lose the last writes on power loss).
    #[arg(long, env = "ANVIL_SQLITE_SYNCHRONOUS", default_value = "full")]
    pub sqlite_synchronous: String,

    /// Largest number of database connections of this process.
    #[arg(long, env = "ANVIL_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// How long a request waits for a database connection before answering 503.
    #[arg(long, env = "ANVIL_DB_ACQUIRE_TIMEOUT_SECS", default_value_t = 5)]
    pub db_acquire_timeout_secs: u64,

    /// Address `anvil serve` listens on.
    #[arg(long, env = "ANVIL_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Directory of the embedded default (SQLite file, blobs, generated secret).
    #[arg(long, env = "ANVIL_DATA_DIR", default_value = "./anvil-data")]
    pub data_dir: PathBuf,

    /// Largest accepted request body, in bytes (larger bodies get 413).
    #[arg(long, env = "ANVIL_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Longest time one request may take before it is answered 503.
    #[arg(long, env = "ANVIL_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// How long `anvil serve` waits for in-flight requests after SIGTERM/SIGINT.
    #[arg(long, env = "ANVIL_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,

    /// Expected `iss` of JWTs. Default: ANVIL_OIDC_ISSUER when set, else `anvil`.
    #[arg(long, env = "ANVIL_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Expected `aud` of JWTs.
    #[arg(long, env = "ANVIL_JWT_AUDIENCE", default_value = "anvil")]
    pub jwt_audience: String,

    /// Claim carrying the tenant id.
    #[arg(long, env = "ANVIL_JWT_TENANT_CLAIM", default_value = "tenant")]
    pub jwt_tenant_claim: String,

    /// Claim carrying the roles (labeler, auditor, admin).
    #[arg(long, env = "ANVIL_JWT_ROLES_CLAIM", default_value = "roles")]
    pub jwt_roles_claim: String,

    /// Clock skew tolerated on exp/nbf, in seconds.
    #[arg(long, env = "ANVIL_JWT_LEEWAY_SECS", default_value_t = 30)]
    pub jwt_leeway_secs: u64,

    /// HS256 secret (at least 32 bytes). Prefer the _FILE variant.
    #[arg(long, env = "ANVIL_JWT_HS256_SECRET", hide_env_values = true)]
    pub jwt_hs256_secret: Option<String>,

    /// File holding the HS256 secret.
    #[arg(long, env = "ANVIL_JWT_HS256_SECRET_FILE")]
    pub jwt_hs256_secret_file: Option<PathBuf>,

    /// PEM file of an RS256 or ES256 public key.
    #[arg(long, env = "ANVIL_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,

    /// JWKS document file (the IdP's keys, for air-gapped sites).
    #[arg(long, env = "ANVIL_JWT_JWKS_FILE")]
    pub jwt_jwks_file: Option<PathBuf>,

    /// JWKS URL of the IdP (fetched at start and when a token names an unknown key id).
    #[arg(long, env = "ANVIL_JWT_JWKS_URL")]
    pub jwt_jwks_url: Option<String>,

    /// OpenID provider the labeling app signs in with (authorization code + PKCE), exactly as its discovery
    /// document's `issuer`. `anvil serve` reads `<issuer>/.well-known/openid-configuration` at start for the
    /// JWKS URL (unless ANVIL_JWT_JWKS_URL, _JWKS_FILE or _PUBLIC_KEY_FILE is set), tells the app through
    /// `/config.json`, and expects this `iss` unless ANVIL_JWT_ISSUER says otherwise.
    #[arg(long, env = "ANVIL_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,

    /// Client id of the labeling app at the OpenID provider (a public client: no secret, PKCE S256).
    #[arg(long, env = "ANVIL_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,

    /// Scopes the labeling app asks for (space-separated; `openid` is always included).
    #[arg(long, env = "ANVIL_OIDC_SCOPES", default_value = "openid")]
    pub oidc_scopes: String,

    /// Resource indicator (RFC 8707) sent with the authorization and token requests, for providers that
    /// issue JWT access tokens per resource; the token's `aud` must then be ANVIL_JWT_AUDIENCE.
    #[arg(long, env = "ANVIL_OIDC_RESOURCE")]
    pub oidc_resource: Option<String>,

    /// Directory of the built labeling app (spa/dist). Default: ./spa/dist when it exists.
    #[arg(long, env = "ANVIL_SPA_DIR")]
    pub spa_dir: Option<PathBuf>,

    /// S3 bucket for exports and imports. Empty: the local blob directory `<data dir>/blobs`.
    #[arg(long, env = "ANVIL_S3_BUCKET")]
    pub s3_bucket: Option<String>,

    /// S3-compatible endpoint (MinIO, Ceph, Garage, moto); empty for AWS S3.
    #[arg(long, env = "ANVIL_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// Path-style addressing (most S3-compatible stores need it).
    #[arg(long, env = "ANVIL_S3_PATH_STYLE", default_value_t = false, action = clap::ArgAction::Set)]
    pub s3_path_style: bool,

    /// Region of the bucket (defaults to the AWS configuration's region).
    #[arg(long, env = "ANVIL_S3_REGION")]
    pub s3_region: Option<String>,

    /// Public base URL of this server, used in signed links of the local blob directory
    /// (default: http://<bind address>).
    #[arg(long, env = "ANVIL_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Default lifetime of export download URLs, seconds (at most 604800 = 7 days).
    #[arg(long, env = "ANVIL_EXPORT_URL_TTL_SECS", default_value_t = 3600)]
    pub export_url_ttl_secs: u64,

    /// SQS queue URL: jobs are handed to SQS for the worker Lambda instead of being polled (AWS shape).
    #[arg(long, env = "ANVIL_SQS_QUEUE_URL")]
    pub sqs_queue_url: Option<String>,

    /// Job pollers run inside `anvil serve` (0: none; run `anvil worker` separately).
    #[arg(long, env = "ANVIL_WORKERS", default_value_t = 1)]
    pub workers: usize,

    /// How long a taken job stays locked before another worker may retry it, seconds.
    #[arg(long, env = "ANVIL_JOB_VISIBILITY_SECS", default_value_t = 900)]
    pub job_visibility_secs: u64,

    /// Air-gapped site: Anvil makes no outbound connection beyond its own Postgres and S3-compatible store.
    /// JWT keys must come from files (no JWKS URL), AWS credentials and region from the environment (no
    /// instance-metadata lookups), and SQS is refused. Start-up fails, naming the setting, if any is configured.
    #[arg(long, env = "ANVIL_AIR_GAPPED", default_value_t = false, action = clap::ArgAction::Set)]
    pub air_gapped: bool,

    /// Log format: `json` (default; for containers and Lambda) or `pretty`.
    #[arg(long, env = "ANVIL_LOG_FORMAT", default_value = "json")]
    pub log_format: String,
}

impl Config {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs.max(1))
    }

    pub fn auth_settings(&self) -> AuthSettings {
        let issuer = [&self.jwt_issuer, &self.oidc_issuer]
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .find(|s| !s.is_empty())
            .unwrap_or("anvil");
        AuthSettings {
            issuer: issuer.to_string(),
            audience: self.jwt_audience.clone(),
            tenant_claim: self.jwt_tenant_claim.clone(),
            roles_claim: self.jwt_roles_claim.clone(),
            leeway_secs: self.jwt_leeway_secs,
            ..AuthSettings::default()
        }
    }

    /// The configured verification keys (files are read here, once).
    pub fn key_config(&self) -> anyhow::Result<KeyConfig> {
        let read = |p: &PathBuf, var: &str| {
            std::fs::read(p).map_err(|e| anyhow::anyhow!("{var}: cannot read {}: {e}", p.display()))
        };
        let mut keys = KeyConfig::default();
        if let Some(s) = &self.jwt_hs256_secret {
            keys.hs256_secret = Some(Secret::new(s.trim().as_bytes().to_vec()));
        }
        if let Some(p) = &self.jwt_hs256_secret_file {
            let raw = read(p, "ANVIL_JWT_HS256_SECRET_FILE")?;
            keys.hs256_secret = Some(Secret::new(String::from_utf8_lossy(&raw).trim().as_bytes().to_vec()));
        }
        if let Some(p) = &self.jwt_public_key_file {
            keys.public_key_pems.push(read(p, "ANVIL_JWT_PUBLIC_KEY_FILE")?);
        }
        if let Some(p) = &self.jwt_jwks_file {
            let raw = read(p, "ANVIL_JWT_JWKS_FILE")?;
            keys.jwks_json = Some(String::from_utf8(raw)?);
        }
        keys.jwks_url = self.jwt_jwks_url.clone();
        Ok(keys)
    }

    /// Refuses settings that would make an air-gapped deployment reach out.
    pub fn check_air_gap(&self) -> anyhow::Result<()> {
        if !self.air_gapped {
            return Ok(());
        }
        if self.jwt_jwks_url.as_deref().is_some_and(|u| !u.is_empty()) {
            anyhow::bail!(
                "ANVIL_AIR_GAPPED: ANVIL_JWT_JWKS_URL is an outbound fetch; use ANVIL_JWT_JWKS_FILE"
            );
        }
        if self.oidc_issuer.as_deref().is_some_and(|s| !s.trim().is_empty())
            && self.jwt_jwks_file.is_none()
            && self.jwt_public_key_file.is_none()
        {
            anyhow::bail!(
                "ANVIL_AIR_GAPPED: ANVIL_OIDC_ISSUER would fetch the provider's discovery document and keys; \
                 set ANVIL_JWT_JWKS_FILE (or ANVIL_JWT_PUBLIC_KEY_FILE) to the provider's keys"
            );
        }
        if self.sqs_queue_url.as_deref().is_some_and(|u| !u.is_empty()) {
            anyhow::bail!(
                "ANVIL_AIR_GAPPED: ANVIL_SQS_QUEUE_URL is an AWS service; workers poll the job table"
            );
        }
        if self.s3_bucket.as_deref().is_some_and(|b| !b.is_empty()) {
            if self.s3_endpoint.is_none() {
                anyhow::bail!("ANVIL_AIR_GAPPED: set ANVIL_S3_ENDPOINT to the site's S3-compatible store");
            }
            // Without static keys the AWS credential chain would ask an instance-metadata endpoint.
            let has = |v: &str| std::env::var(v).is_ok_and(|x| !x.is_empty());
            if !has("AWS_ACCESS_KEY_ID") || !has("AWS_SECRET_ACCESS_KEY") {
                anyhow::bail!(
                    "ANVIL_AIR_GAPPED: the S3 store needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the \
                     environment (no credential lookups are made)"
                );
            }
        }
        Ok(())
    }

    /// Whether any verification key is configured explicitly (not the embedded default's generated one).
    pub fn has_explicit_keys(&self) -> bool {
        self.jwt_hs256_secret.is_some()
            || self.jwt_hs256_secret_file.is_some()
            || self.jwt_public_key_file.is_some()
            || self.jwt_jwks_file.is_some()
            || self.jwt_jwks_url.is_some()
            || self.oidc_issuer.as_deref().is_some_and(|s| !s.trim().is_empty())
    }

    /// The OpenID provider the labeling app signs in with, when one is configured. An issuer without a
    /// client id is an error that names the missing variable.
    pub fn oidc(&self) -> anyhow::Result<Option<OidcClient>> {
        let Some(issuer) = self.oidc_issuer.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let Some(client_id) = self.oidc_client_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
            anyhow::bail!("ANVIL_OIDC_CLIENT_ID is required when ANVIL_OIDC_ISSUER is set");
        };
        let mut scopes: Vec<&str> = self.oidc_scopes.split_whitespace().collect();
        if !scopes.contains(&"openid") {
            scopes.insert(0, "openid");
        }
        Ok(Some(OidcClient {
            issuer: issuer.to_string(),
            client_id: client_id.to_string(),
            scopes: scopes.join(" "),
            resource: self.oidc_resource.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(Into::into),
        }))
    }
}

/// What the labeling app needs to sign in at an OpenID provider (served to it in `/config.json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OidcClient {
    pub issuer: String,
    pub client_id: String,
    pub scopes: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}
