//! The `migrate` function: applies Anvil's Postgres migrations (`anvil_core::store::postgres::migrate`, the
//! same code as `anvil migrate`) as the database owner.
//!
//! Two ways in:
//! - a CloudFormation custom resource (template.yaml's `DatabaseMigrations`): Create and Update run the
//!   migrations, Delete leaves the database alone; the outcome is PUT to the presigned `ResponseURL`, and a
//!   failure fails the deployment. The HTTP functions depend on that resource, so new code never takes
//!   traffic before its schema is there.
//! - a direct invocation with any other JSON (`aws lambda invoke --function-name ... out.json`): runs the
//!   migrations and answers `{"migrated": true, "latest_version": N}`.
//!
//! Migrations are idempotent (sqlx records what ran and takes an advisory lock), so CloudFormation's
//! at-least-once delivery and a concurrent direct run are harmless.

use std::collections::HashMap;
use std::time::Duration;

use anvil_core::store::postgres::{MIGRATOR, migrate};
use anvil_lambda::DatabaseUrl;
use aws_lambda_events::event::cloudformation::{
    CloudFormationCustomResourceRequest as Request, CloudFormationCustomResourceResponse as Response,
    CloudFormationCustomResourceResponseStatus as Status,
};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

/// The physical id of the one migrations resource (stable, so an update never replaces it).
pub const PHYSICAL_ID: &str = "anvil-database-migrations";

/// Time kept back from the invocation's deadline to report a failure to CloudFormation (a custom resource
/// that never answers holds the stack for up to an hour).
const REPORT_MARGIN: Duration = Duration::from_secs(15);

/// The newest migration version embedded in this binary.
pub fn latest_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Handles one invocation: a custom resource request, or a direct call.
pub async fn handle(
    event: LambdaEvent<Value>,
    db: &DatabaseUrl,
    http: &reqwest::Client,
) -> Result<Value, lambda_runtime::Error> {
    let budget = time_left(&event.context).saturating_sub(REPORT_MARGIN);
    if event.payload.get("RequestType").is_none() {
        run_migrations(db, budget).await?;
        return Ok(json!({"migrated": true, "latest_version": latest_version()}));
    }
    let request: Request = serde_json::from_value(event.payload)
        .map_err(|e| anyhow::anyhow!("not a CloudFormation custom resource request: {e}"))?;
    let outcome = match &request {
        Request::Delete(_) => {
            tracing::info!("stack or resource deleted: the database and its data are left as they are");
            Ok(())
        }
        _ => run_migrations(db, budget).await.map_err(|e| format!("{e:#}")),
    };
    let env = envelope(&request)?;
    let response = response_for(&env, outcome);
    // CloudFormation's presigned URL is signed for an empty Content-Type: send none.
    let res = http
        .put(env.response_url)
        .body(serde_json::to_vec(&response)?)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot send the result to CloudFormation: {e}"))?;
    if !res.status().is_success() {
        return Err(anyhow::anyhow!("CloudFormation's response URL answered {}", res.status()).into());
    }
    Ok(json!({"status": status_str(&response.status), "reason": response.reason}))
}

async fn run_migrations(db: &DatabaseUrl, budget: Duration) -> anyhow::Result<()> {
    tracing::info!(latest_version = latest_version(), "applying migrations");
    match tokio::time::timeout(budget, migrate(db.expose())).await {
        Ok(res) => res?,
        Err(_) => anyhow::bail!("migrations did not finish within {} s", budget.as_secs()),
    }
    tracing::info!(latest_version = latest_version(), "migrations applied");
    Ok(())
}

/// Time until the invocation's deadline (the whole budget when the deadline is unknown or past).
fn time_left(ctx: &lambda_runtime::Context) -> Duration {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let deadline = u128::from(ctx.deadline);
    if deadline > now_ms {
        Duration::from_millis(u64::try_from(deadline - now_ms).unwrap_or(u64::MAX))
    } else {
        Duration::from_secs(60)
    }
}

/// The fields every custom resource request carries, whatever its type.
struct Envelope<'a> {
    response_url: &'a str,
    stack_id: &'a str,
    request_id: &'a str,
    logical_id: &'a str,
    /// None on Create: the resource gets [`PHYSICAL_ID`].
    physical_id: Option<&'a str>,
}

fn envelope(r: &Request) -> anyhow::Result<Envelope<'_>> {
    Ok(match r {
        Request::Create(c) => Envelope {
            response_url: &c.response_url,
            stack_id: &c.stack_id,
            request_id: &c.request_id,
            logical_id: &c.logical_resource_id,
            physical_id: None,
        },
        Request::Update(u) => Envelope {
            response_url: &u.response_url,
            stack_id: &u.stack_id,
            request_id: &u.request_id,
            logical_id: &u.logical_resource_id,
            physical_id: Some(&u.physical_resource_id),
        },
        Request::Delete(d) => Envelope {
            response_url: &d.response_url,
            stack_id: &d.stack_id,
            request_id: &d.request_id,
            logical_id: &d.logical_resource_id,
            physical_id: Some(&d.physical_resource_id),
        },
        _ => anyhow::bail!("unknown custom resource RequestType"),
    })
}

/// What CloudFormation is told: SUCCESS with the latest migration version, or FAILED with the reason.
fn response_for(env: &Envelope<'_>, outcome: Result<(), String>) -> Response {
    let mut res = Response::default();
    res.stack_id = env.stack_id.to_string();
    res.request_id = env.request_id.to_string();
    res.logical_resource_id = env.logical_id.to_string();
    res.physical_resource_id = env.physical_id.unwrap_or(PHYSICAL_ID).to_string();
    res.no_echo = false;
    match outcome {
        Ok(()) => {
            res.status = Status::Success;
            res.data = HashMap::from([("LatestVersion".to_string(), latest_version().to_string())]);
        }
        Err(reason) => {
            res.status = Status::Failed;
            // Shown in the stack's events; CloudFormation caps the whole response at 4 KB.
            res.reason = Some(reason.chars().take(1000).collect());
        }
    }
    res
}

fn status_str(s: &Status) -> &'static str {
    match s {
        Status::Success => "SUCCESS",
        _ => "FAILED",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fixture(name: &str) -> Request {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let raw = std::fs::read_to_string(path).unwrap();
        serde_json::from_str(&raw).unwrap()
    }

    fn respond(name: &str, outcome: Result<(), String>) -> Response {
        let req = fixture(name);
        response_for(&envelope(&req).unwrap(), outcome)
    }

    #[test]
    fn a_successful_create_reports_the_latest_version_under_a_stable_id() {
        let res = respond("custom-resource-create.json", Ok(()));
        let body = serde_json::to_value(&res).unwrap();
        assert_eq!(body["Status"], "SUCCESS");
        assert_eq!(body["PhysicalResourceId"], PHYSICAL_ID);
        assert_eq!(body["LogicalResourceId"], "DatabaseMigrations");
        assert_eq!(body["Data"]["LatestVersion"], latest_version().to_string());
        assert!(latest_version() >= 1);
    }

    #[test]
    fn an_update_keeps_its_physical_id_and_a_failure_says_why() {
        let res = respond("custom-resource-update.json", Err("relation exists".into()));
        let body = serde_json::to_value(&res).unwrap();
        assert_eq!(body["Status"], "FAILED");
        assert_eq!(body["PhysicalResourceId"], PHYSICAL_ID);
        assert_eq!(body["Reason"], "relation exists");
    }

    #[test]
    fn a_delete_is_acknowledged() {
        let res = respond("custom-resource-delete.json", Ok(()));
        assert!(matches!(res.status, Status::Success));
        assert_eq!(res.physical_resource_id, PHYSICAL_ID);
    }
}
