//! The `worker` Lambda function (see the library's docs): SQS batches of job messages, and a scheduled
//! EventBridge event for the outbox sweep and the lease reaper.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // JSON tracing and the configuration, from the environment the template sets.
    let cfg = anvil_lambda::init()?;
    // Postgres pool, S3 and SQS clients: built once per cold start, shared by every invocation.
    let jobs = anvil_lambda::jobs(&cfg).await?;
    let jobs = &jobs;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| anvil_fn_worker::handle(event, jobs)))
        .await
}
