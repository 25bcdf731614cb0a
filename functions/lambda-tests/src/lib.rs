//! Test kit for Anvil's Lambda functions, shared by the function crates' tests (each crate's own test gets
//! its binary from `env!("CARGO_BIN_EXE_<name>")`, so `cargo test` builds it first).
//!
//! - [`emulator`]: a Lambda Runtime API on 127.0.0.1 (next, response, error; init error; a CloudFormation
//!   response URL).
//! - [`process`]: a function binary as a real process with Lambda's environment, timed from spawn to its first
//!   answer; the binary's size.
//! - [`env`]: a fresh Postgres database per test, tokens, seeded queues.
//! - [`moto`]: moto's server for Secrets Manager, S3 (buckets, objects) and SQS (queues, messages).
//! - [`fixture`]: API Gateway / CloudFormation events from `tests/fixtures/*.json`, with `${VAR}` filled in.

pub mod emulator;
pub mod env;
pub mod moto;
pub mod process;

use anyhow::Context;
use serde_json::Value;

pub use anvil_types::Role;
pub use emulator::{Outcome, RuntimeApi};
pub use env::TestEnv;
pub use moto::Moto;
pub use process::{Function, HttpAnswer, binary};

/// Reads `<crate_dir>/tests/fixtures/<name>` and replaces each `${KEY}` by its value (the same placeholders
/// `envsubst` fills, for `sam local invoke -e`). Every placeholder must be given.
pub fn fixture(crate_dir: &str, name: &str, vars: &[(&str, &str)]) -> anyhow::Result<Value> {
    let path = std::path::Path::new(crate_dir).join("tests/fixtures").join(name);
    let mut text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    for (k, v) in vars {
        text = text.replace(&format!("${{{k}}}"), v);
    }
    if let Some(i) = text.find("${") {
        let end = text[i..].find('}').map_or(text.len(), |e| i + e + 1);
        anyhow::bail!("{name}: no value for {}", &text[i..end]);
    }
    serde_json::from_str(&text).with_context(|| format!("{name} is not JSON"))
}
