//! A function binary running as a real process against its own [`RuntimeApi`], with the environment Lambda
//! gives it, and what it answered.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use crate::emulator::{Answer, Outcome, RuntimeApi};

/// How long any one invocation may take before the test fails (no test waits forever).
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The binary under test: `$ANVIL_LAMBDA_BIN_DIR/<name>/bootstrap` when that variable is set (the layout of
/// `cargo lambda build`, e.g. `target/lambda`: the release binaries as deployed), otherwise the binary cargo
/// built for this test (`env!("CARGO_BIN_EXE_<name>")`).
pub fn binary(name: &str, cargo_bin: &str) -> PathBuf {
    match std::env::var_os("ANVIL_LAMBDA_BIN_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join(name).join("bootstrap"),
        _ => PathBuf::from(cargo_bin),
    }
}

/// The file's size, and its size after `strip` (on a copy) when a `strip` that understands it is installed.
pub fn sizes(path: &Path) -> anyhow::Result<(u64, Option<u64>)> {
    let built = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?.len();
    let tmp = std::env::temp_dir().join(format!("anvil-strip-{}", uuid::Uuid::new_v4().simple()));
    std::fs::copy(path, &tmp)?;
    let ok = std::process::Command::new("strip")
        .arg(&tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let stripped = if ok { std::fs::metadata(&tmp).ok().map(|m| m.len()) } else { None };
    let _ = std::fs::remove_file(&tmp);
    Ok((built, stripped))
}

/// How to start a function.
pub struct FunctionBuilder {
    name: String,
    binary: PathBuf,
    env: BTreeMap<String, String>,
}

/// A running function process. Dropping it kills the process and stops its Runtime API.
pub struct Function {
    pub name: String,
    pub binary: PathBuf,
    api: RuntimeApi,
    child: Child,
    logs: Arc<Mutex<String>>,
    /// From spawning the process to the Runtime API receiving the answer to the first event.
    pub startup: Duration,
}

impl Function {
    /// A function named `name` (as in template.yaml's binaries) from `binary`.
    pub fn builder(name: &str, binary: PathBuf) -> FunctionBuilder {
        let mut env = BTreeMap::new();
        for (k, v) in [
            ("AWS_LAMBDA_FUNCTION_NAME", format!("anvil-test-{name}")),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/01/[$LATEST]0123456789abcdef".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/anvil-test-{name}")),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("_HANDLER", "bootstrap".into()),
            ("TZ", ":UTC".into()),
            // as template.yaml's Globals
            ("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true".into()),
            ("ANVIL_LOG_FORMAT", "json".into()),
            ("RUST_LOG", "info,sqlx=warn".into()),
        ] {
            env.insert(k.to_string(), v);
        }
        FunctionBuilder { name: name.into(), binary, env }
    }
}

impl FunctionBuilder {
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    pub fn envs<K: AsRef<str>, V: AsRef<str>>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self {
        for (k, v) in vars {
            self.env.insert(k.as_ref().into(), v.as_ref().into());
        }
        self
    }

    pub fn without_env(mut self, key: &str) -> Self {
        self.env.remove(key);
        self
    }

    fn spawn(&self, api: &RuntimeApi) -> anyhow::Result<(Child, Arc<Mutex<String>>)> {
        let mut cmd = Command::new(&self.binary);
        // Only what Lambda would set: nothing of the developer's AWS profile or DATABASE_URL leaks in.
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(&self.env)
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("starting {}", self.binary.display()))?;
        let logs = Arc::new(Mutex::new(String::new()));
        let echo = std::env::var_os("ANVIL_LAMBDA_TEST_LOGS").is_some();
        for mut pipe in [
            child.stdout.take().map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child.stderr.take().map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = logs.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let text = String::from_utf8_lossy(&buf[..n]);
                    if echo {
                        let _ = std::io::stderr().write_all(text.as_bytes());
                    }
                    if let Ok(mut l) = logs.lock() {
                        l.push_str(&text);
                    }
                }
            });
        }
        Ok((child, logs))
    }

    /// Starts the process with `first` already waiting on its Runtime API, and returns once it is answered.
    pub async fn start(self, first: Value) -> anyhow::Result<(Function, Answer)> {
        self.start_with(|_| Ok(first)).await
    }

    /// As [`start`](Self::start), with a first event that needs the emulator (e.g. its CloudFormation
    /// response URL).
    pub async fn start_with(
        self,
        first: impl FnOnce(&RuntimeApi) -> anyhow::Result<Value>,
    ) -> anyhow::Result<(Function, Answer)> {
        let api = RuntimeApi::start().await?;
        let rx = api.enqueue(first(&api)?)?;
        let t0 = Instant::now();
        let (child, logs) = self.spawn(&api)?;
        let mut f =
            Function { name: self.name, binary: self.binary, api, child, logs, startup: Duration::ZERO };
        let answer = f.wait(rx).await?;
        f.startup = answer.at.saturating_duration_since(t0);
        Ok((f, answer))
    }

    /// Starts the process and waits for it to exit on its own (an init failure), with its logs.
    pub async fn start_expecting_exit(self) -> anyhow::Result<(std::process::ExitStatus, String)> {
        let api = RuntimeApi::start().await?;
        let (mut child, logs) = self.spawn(&api)?;
        let status = tokio::time::timeout(INVOKE_TIMEOUT, child.wait())
            .await
            .context("the function did not exit")??;
        // let the pipe readers drain
        tokio::time::sleep(Duration::from_millis(100)).await;
        let text = logs.lock().map(|l| l.clone()).unwrap_or_default();
        Ok((status, text))
    }
}

impl Function {
    async fn wait(&mut self, rx: tokio::sync::oneshot::Receiver<Answer>) -> anyhow::Result<Answer> {
        tokio::select! {
            answer = rx => answer.map_err(|_| anyhow::anyhow!("the emulator dropped the invocation")),
            status = self.child.wait() => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                anyhow::bail!(
                    "{} exited ({:?}) before answering; init error: {:?}\n--- its output ---\n{}",
                    self.name, status.ok(), self.api.init_error(), self.logs_tail()
                )
            }
            _ = tokio::time::sleep(INVOKE_TIMEOUT) => {
                anyhow::bail!("{} did not answer within {INVOKE_TIMEOUT:?}\n--- its output ---\n{}", self.name, self.logs_tail())
            }
        }
    }

    /// Sends one event and waits for the answer.
    pub async fn invoke(&mut self, event: Value) -> anyhow::Result<Outcome> {
        let rx = self.api.enqueue(event)?;
        Ok(self.wait(rx).await?.outcome)
    }

    /// Sends an API Gateway event and decodes the proxy response.
    pub async fn http(&mut self, event: Value) -> anyhow::Result<HttpAnswer> {
        let outcome = self.invoke(event).await?;
        HttpAnswer::from_outcome(outcome)
            .map_err(|e| anyhow::anyhow!("{e:#}\n--- output ---\n{}", self.logs_tail()))
    }

    /// The emulator, for CloudFormation response URLs.
    pub fn runtime_api(&self) -> &RuntimeApi {
        &self.api
    }

    /// Everything the process wrote so far.
    pub fn logs(&self) -> String {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn logs_tail(&self) -> String {
        let l = self.logs();
        let start = l.len().saturating_sub(4000);
        let start = (start..l.len()).find(|i| l.is_char_boundary(*i)).unwrap_or(l.len());
        l[start..].to_string()
    }

    /// Prints (past the test harness's capture, so it shows in CI logs) and, when `ANVIL_LAMBDA_REPORT` names
    /// a file, appends one line: the binary's size, stripped, and the start-up time.
    pub fn report(&self) -> anyhow::Result<()> {
        self.report_as(&self.name)
    }

    /// As [`report`](Self::report), under another name (one function measured in two situations).
    pub fn report_as(&self, name: &str) -> anyhow::Result<()> {
        let (built, stripped) = sizes(&self.binary)?;
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let stripped = stripped.map_or("n/a".to_string(), |s| format!("{:.1} MiB", mib(s)));
        let line = format!(
            "lambda {:<12} binary {:>6.1} MiB as built, {:>9} stripped; process start -> first answer {:>5} ms  ({})\n",
            name,
            mib(built),
            stripped,
            self.startup.as_millis(),
            self.binary.display(),
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
        if let Some(path) = std::env::var_os("ANVIL_LAMBDA_REPORT").filter(|p| !p.is_empty()) {
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            f.write_all(line.as_bytes())?;
        }
        Ok(())
    }
}

/// An API Gateway REST proxy response.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    /// Lower-cased names.
    pub headers: BTreeMap<String, String>,
    /// The body as JSON (`Null` when empty, a string when not JSON).
    pub body: Value,
}

impl HttpAnswer {
    pub fn from_outcome(outcome: Outcome) -> anyhow::Result<Self> {
        let v = match outcome {
            Outcome::Response(v) => v,
            Outcome::Error { error_type, body } => {
                anyhow::bail!("the function failed instead of answering HTTP: {error_type} {body}")
            }
        };
        let status = v["statusCode"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .with_context(|| format!("no statusCode in {v}"))?;
        let mut headers = BTreeMap::new();
        if let Some(h) = v["headers"].as_object() {
            for (k, val) in h {
                headers.insert(k.to_ascii_lowercase(), val.as_str().unwrap_or_default().to_string());
            }
        }
        if let Some(h) = v["multiValueHeaders"].as_object() {
            for (k, vals) in h {
                if let Some(first) = vals.as_array().and_then(|a| a.first()).and_then(Value::as_str) {
                    headers.entry(k.to_ascii_lowercase()).or_insert_with(|| first.to_string());
                }
            }
        }
        let raw = v["body"].as_str().unwrap_or_default();
        anyhow::ensure!(
            !v["isBase64Encoded"].as_bool().unwrap_or(false),
            "unexpected base64 body for a JSON API"
        );
        let body = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
        };
        Ok(Self { status, headers, body })
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        &self.body
    }

    /// Asserts an error envelope with this status and code.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.body);
        assert!(self.body["error"]["message"].is_string(), "body: {}", self.body);
    }
}
