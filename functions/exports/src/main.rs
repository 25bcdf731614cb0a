//! The `exports` Lambda function: the exports route group: request an export of a queue's labels (202; the
//! job goes to SQS right after the commit), list a queue's exports, read one with its signed S3 download URL.
//!
//! API Gateway (REST, stage v1) routes this group's paths here (see template.yaml); the handlers are the same
//! axum routers `anvil serve` mounts. The export itself is written by the `worker` function.

use anvil_api::{RouteGroup, group_app};

const GROUP: RouteGroup = RouteGroup::Exports;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // JSON tracing and the configuration, from the environment the template sets.
    let cfg = anvil_lambda::init()?;
    // Secrets, Postgres pool, JWT keys, S3 and SQS clients: built once per cold start.
    let state = anvil_lambda::app_state(&cfg, GROUP).await?;
    lambda_http::run(group_app(GROUP, state)).await
}
