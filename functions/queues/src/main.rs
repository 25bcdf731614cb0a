//! The `queues` Lambda function: the admin route group: queues, samples, stats, personal access tokens, /v1/me,
//! imports (a signed S3 upload URL, then a job to SQS) and the operations summary.
//!
//! API Gateway (REST, stage v1) routes this group's paths here (see template.yaml); the handlers are the same
//! axum routers `anvil serve` mounts. Set `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true` (the template's
//! Globals do) or lambda_http puts the stage name in front of every path and no route matches.

use anvil_api::{RouteGroup, group_app};

const GROUP: RouteGroup = RouteGroup::Queues;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    // JSON tracing and the configuration, from the environment the template sets.
    let cfg = anvil_lambda::init()?;
    // Secrets, Postgres pool, JWT keys, S3 and SQS clients: built once per cold start, shared by every
    // invocation.
    let state = anvil_lambda::app_state(&cfg, GROUP).await?;
    lambda_http::run(group_app(GROUP, state)).await
}
