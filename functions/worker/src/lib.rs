//! The `worker` function: runs Anvil's background jobs on AWS.
//!
//! Two ways in, told apart by the event's shape (read as JSON first, so an unexpected event is an error
//! that names what arrived, never a panic or a silently empty batch):
//! - an SQS batch from the jobs queue (`Records` with `eventSource: aws:sqs`): each message names a job
//!   (`{"job_id": ...}`) that [`anvil_core::sqs::handle_batch`] runs with the same handlers as `anvil worker`.
//!   The answer is an [`SqsBatchResponse`] listing exactly the messages that failed, so SQS deletes the rest
//!   and redelivers only those (to the dead-letter queue after the queue's maxReceiveCount). Redelivery of a
//!   succeeded job is acknowledged without running it again (handlers are idempotent anyway).
//! - an EventBridge scheduled event (template.yaml: `rate(1 minute)`): the periodic upkeep `anvil serve` does
//!   in-process: the outbox sweep (jobs committed but not handed to SQS, after a crash or an SQS hiccup, are
//!   sent now) and the lease reaper (expired assignments go back to the pool).

use anvil_core::jobs::Worker;
use anvil_core::sqs::{Received, handle_batch};
use anvil_lambda::Jobs;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;

/// Jobs sent per outbox round (SQS takes them in batches of 10).
const SWEEP_ROUND: i32 = 100;
/// Rounds per scheduled run: at most 1,000 jobs a minute leave through the sweep (new jobs are normally sent
/// right after their commit; the sweep only catches up).
const SWEEP_ROUNDS: usize = 10;
/// Expired leases returned per scheduled run.
const REAP_LIMIT: i32 = 1000;

/// What a function invocation carries.
#[derive(Debug)]
pub enum Event {
    /// A batch of job messages from SQS.
    Jobs(SqsEvent),
    /// The scheduled upkeep.
    Scheduled(Box<EventBridgeEvent>),
}

impl Event {
    /// Recognizes the event by its shape.
    pub fn parse(v: Value) -> anyhow::Result<Self> {
        if let Some(records) = v.get("Records").and_then(Value::as_array) {
            let from_sqs = |r: &Value| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs");
            anyhow::ensure!(
                !records.is_empty() && records.iter().all(from_sqs),
                "an event with Records that are not all SQS messages (eventSource {:?})",
                records.first().and_then(|r| r.get("eventSource"))
            );
            let sqs: SqsEvent =
                serde_json::from_value(v).map_err(|e| anyhow::anyhow!("a malformed SQS event: {e}"))?;
            return Ok(Event::Jobs(sqs));
        }
        let field = |k: &str| v.get(k).and_then(Value::as_str);
        if field("source") == Some("aws.events") && field("detail-type") == Some("Scheduled Event") {
            let e: EventBridgeEvent =
                serde_json::from_value(v).map_err(|e| anyhow::anyhow!("a malformed scheduled event: {e}"))?;
            return Ok(Event::Scheduled(Box::new(e)));
        }
        let keys: Vec<&str> =
            v.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        anyhow::bail!(
            "unknown event: neither an SQS batch nor a scheduled EventBridge event (source {:?}, detail-type \
             {:?}, keys {keys:?})",
            field("source"),
            field("detail-type"),
        )
    }
}

/// Handles one invocation.
pub async fn handle(event: LambdaEvent<Value>, jobs: &Jobs) -> Result<Value, lambda_runtime::Error> {
    match Event::parse(event.payload) {
        Ok(Event::Jobs(batch)) => Ok(serde_json::to_value(batch_handler(&jobs.worker, batch).await)?),
        Ok(Event::Scheduled(_)) => Ok(serde_json::to_value(upkeep(jobs).await?)?),
        Err(e) => {
            tracing::error!(error = %e, "cannot handle this event");
            Err(e.into())
        }
    }
}

/// Runs the jobs of an SQS batch; the response lists the message ids to redeliver, and only those (never an
/// empty id: a message without one is logged and left out, see `handle_batch`).
pub async fn batch_handler(worker: &Worker, event: SqsEvent) -> SqsBatchResponse {
    let messages: Vec<Received> =
        event.records.into_iter().map(|m| Received { message_id: m.message_id, body: m.body }).collect();
    let failed = handle_batch(worker, &messages).await;
    tracing::info!(messages = messages.len(), failed = failed.len(), "SQS batch done");
    let mut response = SqsBatchResponse::default();
    response.set_failures(failed);
    response
}

/// What a scheduled run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Upkeep {
    /// Outbox jobs handed to SQS.
    pub dispatched: u64,
    /// Expired leases returned to the pool.
    pub reclaimed: u64,
}

/// The scheduled upkeep: both steps run even when one fails; a failure of either fails the invocation (so it
/// shows in the function's error metric) after the other has had its turn.
pub async fn upkeep(jobs: &Jobs) -> anyhow::Result<Upkeep> {
    let mut out = Upkeep::default();
    let mut errors = Vec::new();
    for _ in 0..SWEEP_ROUNDS {
        match jobs.dispatcher.dispatch_once(SWEEP_ROUND).await {
            Ok(n) => {
                out.dispatched += n;
                if n < u64::try_from(SWEEP_ROUND).unwrap_or(0) {
                    break;
                }
            }
            Err(e) => {
                errors.push(format!("outbox sweep: {e:#}"));
                break;
            }
        }
    }
    match jobs.worker.store.reclaim_expired(REAP_LIMIT).await {
        Ok(n) => out.reclaimed = n,
        Err(e) => errors.push(format!("lease reaper: {e:#}")),
    }
    tracing::info!(dispatched = out.dispatched, reclaimed = out.reclaimed, "scheduled upkeep done");
    anyhow::ensure!(errors.is_empty(), "{}", errors.join("; "));
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn an_sqs_batch_is_recognized() {
        let v = json!({"Records": [{"messageId": "m1", "body": "{}", "eventSource": "aws:sqs"}]});
        match Event::parse(v).unwrap() {
            Event::Jobs(b) => assert_eq!(b.records[0].message_id.as_deref(), Some("m1")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_scheduled_event_is_recognized() {
        let v = json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-01-01T12:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/anvil"], "detail": {}});
        assert!(matches!(Event::parse(v).unwrap(), Event::Scheduled(_)));
    }

    #[test]
    fn any_other_shape_is_an_error_naming_what_came() {
        let err = Event::parse(json!({"hello": 1})).unwrap_err().to_string();
        assert!(err.contains("unknown event") && err.contains("hello"), "{err}");
        let s3 = json!({"Records": [{"eventSource": "aws:s3"}]});
        assert!(Event::parse(s3).unwrap_err().to_string().contains("aws:s3"));
        assert!(Event::parse(json!({"Records": []})).is_err());
        let other_rule =
            json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2"});
        assert!(Event::parse(other_rule).is_err());
        assert!(Event::parse(json!([1, 2])).is_err());
    }

    #[test]
    fn the_batch_response_names_exactly_the_failed_messages() {
        let mut r = SqsBatchResponse::default();
        r.set_failures(vec!["poison".to_string()]);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "poison"}]})
        );
    }
}
