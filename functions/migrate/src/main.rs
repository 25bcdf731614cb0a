//! The `migrate` Lambda function (see the library's docs): CloudFormation custom resource or direct call.

use std::time::Duration;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let cfg = anvil_lambda::init()?;
    // The owner's credentials (the database secret), fetched once per cold start.
    let db = anvil_lambda::database_url(&cfg).await?;
    // Answers CloudFormation's presigned response URL.
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let (db, http) = (&db, &http);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        anvil_fn_migrate::handle(event, db, http)
    }))
    .await
}
