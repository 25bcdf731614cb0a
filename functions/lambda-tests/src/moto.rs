//! moto's server on 127.0.0.1 for Secrets Manager, S3 and SQS: started per test, killed when dropped.

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
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
}

/// A message received from a moto SQS queue.
#[derive(Debug, Clone)]
pub struct Message {
    pub message_id: String,
    pub body: String,
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
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build(),
        );
        Ok(Some(Self {
            _child: child,
            endpoint,
            client: aws_sdk_secretsmanager::Client::new(&conf),
            s3,
            sqs: aws_sdk_sqs::Client::new(&conf),
        }))
    }

    /// Creates a string secret and returns its ARN.
    pub async fn create_secret(&self, name: &str, value: &str) -> anyhow::Result<String> {
        let out = self.client.create_secret().name(name).secret_string(value).send().await.map_err(|e| {
            anyhow::anyhow!("CreateSecret: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(e))
        })?;
        out.arn.context("moto returned no ARN")
    }

    /// Creates a bucket.
    pub async fn create_bucket(&self, name: &str) -> anyhow::Result<()> {
        self.s3
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("CreateBucket: {}", aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    /// The keys under `prefix`, sorted.
    pub async fn keys(&self, bucket: &str, prefix: &str) -> anyhow::Result<Vec<String>> {
        let out =
            self.s3.list_objects_v2().bucket(bucket).prefix(prefix).send().await.map_err(|e| {
                anyhow::anyhow!("ListObjectsV2: {}", aws_sdk_s3::error::DisplayErrorContext(e))
            })?;
        let mut keys: Vec<String> = out.contents().iter().filter_map(|o| o.key().map(String::from)).collect();
        keys.sort();
        Ok(keys)
    }

    /// An object's bytes and its Last-Modified (seconds since the epoch).
    pub async fn object(&self, bucket: &str, key: &str) -> anyhow::Result<(Vec<u8>, i64)> {
        let out =
            self.s3.get_object().bucket(bucket).key(key).send().await.map_err(|e| {
                anyhow::anyhow!("GetObject {key}: {}", aws_sdk_s3::error::DisplayErrorContext(e))
            })?;
        let modified = out.last_modified().map_or(0, |t| t.secs());
        let bytes = out.body.collect().await.context("reading the object")?.into_bytes().to_vec();
        Ok((bytes, modified))
    }

    /// Uploads an object (e.g. a file an import reads).
    pub async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> anyhow::Result<()> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("PutObject {key}: {}", aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    /// Creates a queue and returns its URL.
    pub async fn create_queue(&self, name: &str) -> anyhow::Result<String> {
        let out =
            self.sqs.create_queue().queue_name(name).send().await.map_err(|e| {
                anyhow::anyhow!("CreateQueue: {}", aws_sdk_sqs::error::DisplayErrorContext(e))
            })?;
        out.queue_url.context("moto returned no queue URL")
    }

    /// Receives (and deletes) up to `max` messages, waiting at most `wait` for the first.
    pub async fn receive(&self, queue_url: &str, max: i32, wait: Duration) -> anyhow::Result<Vec<Message>> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(i32::try_from(wait.as_secs()).unwrap_or(20).clamp(0, 20))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("ReceiveMessage: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        let mut got = Vec::new();
        for m in out.messages() {
            if let Some(handle) = m.receipt_handle() {
                self.sqs.delete_message().queue_url(queue_url).receipt_handle(handle).send().await.map_err(
                    |e| anyhow::anyhow!("DeleteMessage: {}", aws_sdk_sqs::error::DisplayErrorContext(e)),
                )?;
            }
            got.push(Message {
                message_id: m.message_id().unwrap_or_default().to_string(),
                body: m.body().unwrap_or_default().to_string(),
            });
        }
        Ok(got)
    }

    /// What a function that keeps exports in `bucket` and hands jobs to `queue_url` needs on top of
    /// [`function_env`](Self::function_env) (moto answers S3 on its own address: path-style).
    pub fn jobs_env(bucket: &str, queue_url: &str) -> Vec<(String, String)> {
        vec![
            ("ANVIL_S3_BUCKET".into(), bucket.into()),
            ("ANVIL_S3_PATH_STYLE".into(), "true".into()),
            ("ANVIL_SQS_QUEUE_URL".into(), queue_url.into()),
        ]
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
