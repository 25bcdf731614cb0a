//! moto's server on 127.0.0.1 for Secrets Manager: started per test, killed when dropped.

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_config::BehaviorVersion;
use aws_config::Region;
use tokio::process::{Child, Command};

/// The install line for moto, printed when it is missing.
pub const INSTALL: &str = "python3 -m venv .venv && .venv/bin/pip install 'moto[server]==5.2.5'";

pub struct Moto {
    _child: Child,
    pub endpoint: String,
    client: aws_sdk_secretsmanager::Client,
}

/// `$MOTO_SERVER`, the repository's `.venv/bin/moto_server`, or `moto_server` on PATH.
fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MOTO_SERVER").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
    if venv.exists() {
        return Some(venv);
    }
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|d| d.join("moto_server")).find(|p| p.exists()))
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Moto {
    /// Starts moto. `Ok(None)` (with a message) when it is not installed and `CI` is not set; in CI a missing
    /// moto is an error, so the test cannot pass by skipping.
    pub async fn start() -> anyhow::Result<Option<Self>> {
        let Some(bin) = find() else {
            if std::env::var_os("CI").is_some() {
                anyhow::bail!("moto_server not found and CI is set: install it with `{INSTALL}`");
            }
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (Secrets Manager part): moto_server not found; install it with `{INSTALL}` (in CI this fails)"
            );
            return Ok(None);
        };
        let port = free_port()?;
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let t0 = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            anyhow::ensure!(t0.elapsed() < Duration::from_secs(30), "moto did not listen within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let conf = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&endpoint)
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                "test", "test", None, None, "moto",
            ))
            .load()
            .await;
        Ok(Some(Self { _child: child, endpoint, client: aws_sdk_secretsmanager::Client::new(&conf) }))
    }

    /// Creates a string secret and returns its ARN.
    pub async fn create_secret(&self, name: &str, value: &str) -> anyhow::Result<String> {
        let out = self.client.create_secret().name(name).secret_string(value).send().await.map_err(|e| {
            anyhow::anyhow!("CreateSecret: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(e))
        })?;
        out.arn.context("moto returned no ARN")
    }

    /// The AWS environment a function needs to reach this moto (the SDK reads `AWS_ENDPOINT_URL`).
    pub fn function_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_SESSION_TOKEN".into(), "test".into()),
        ]
    }
}
