//! The SQS side of the job queue (AWS shape).
//!
//! Jobs are written to the job table in the same transaction as the export or import they belong to (the
//! outbox). The dispatcher then hands undispatched rows to SQS — right after the request committed, and again
//! from a periodic sweep for whatever a crash left behind — and marks them dispatched. A crash between the
//! send and the mark sends a job twice; the handlers are idempotent, so that costs nothing but a message.
//! The worker Lambda receives the message, loads the job by id and runs the same handler as the pollers.

use std::sync::Arc;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::store::TaskStore;

/// The body of a job message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: Uuid,
}

#[derive(Clone)]
pub struct SqsDispatcher {
    client: Client,
    queue_url: String,
    tasks: Arc<dyn TaskStore>,
}

impl SqsDispatcher {
    pub fn new(client: Client, queue_url: impl Into<String>, tasks: Arc<dyn TaskStore>) -> Self {
        Self { client, queue_url: queue_url.into(), tasks }
    }

    /// Sends up to `limit` undispatched jobs (in batches of 10, the SQS maximum); returns how many were sent.
    pub async fn dispatch_once(&self, limit: i32) -> Result<u64> {
        let jobs = self.tasks.undispatched_jobs(limit).await?;
        let mut sent = 0;
        for chunk in jobs.chunks(10) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, job) in chunk.iter().enumerate() {
                let body =
                    serde_json::to_string(&JobMessage { job_id: job.id }).map_err(anyhow::Error::from)?;
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .message_body(body)
                        .build()
                        .map_err(|e| Error::Internal(anyhow::anyhow!("message: {e}")))?,
                );
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| Error::Internal(anyhow::Error::new(e).context("send to SQS")))?;
            // Only the messages SQS accepted are marked; the rest stay for the next sweep.
            let ok: Vec<Uuid> = out
                .successful()
                .iter()
                .filter_map(|s| s.id().strip_prefix('m').and_then(|i| i.parse::<usize>().ok()))
                .filter_map(|i| chunk.get(i).map(|j| j.id))
                .collect();
            for f in out.failed() {
                tracing::warn!(entry = f.id(), code = f.code(), "SQS refused a job message; will retry");
            }
            sent += self.tasks.mark_dispatched(&ok).await?;
        }
        Ok(sent)
    }
}

/// One received message: its id and body, as the Lambda event carries them (either may be missing).
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub message_id: Option<String>,
    pub body: Option<String>,
}

/// Runs the jobs named by a batch of SQS messages; returns the ids of the messages that must come back
/// (SQS redelivers them, and moves them to the DLQ after the queue's maxReceiveCount). A message without an
/// id can be neither retried nor acknowledged individually: it is logged and left out (an empty id in a
/// batch response would fail the whole batch). A job already succeeded is acknowledged (redelivery).
pub async fn handle_batch(worker: &crate::jobs::Worker, messages: &[Received]) -> Vec<String> {
    let mut failed = Vec::new();
    for m in messages {
        let Some(id) = m.message_id.as_deref().filter(|s| !s.is_empty()) else {
            tracing::error!("an SQS record has no message id; it cannot be reported");
            continue;
        };
        // Every log line of this message's job carries its message id (and, from the job, its job id,
        // kind, tenant and attempt).
        let span = tracing::info_span!("sqs_message", message_id = id);
        let ok = async {
            match m.body.as_deref().map(serde_json::from_str::<JobMessage>) {
                Some(Ok(msg)) => run_one(worker, msg.job_id).await,
                _ => {
                    tracing::error!("not a job message; it will go to the dead-letter queue");
                    false
                }
            }
        }
        .instrument(span)
        .await;
        if !ok {
            failed.push(id.to_string());
        }
    }
    failed
}

async fn run_one(worker: &crate::jobs::Worker, job_id: Uuid) -> bool {
    let job = match worker.tasks.begin_job(job_id).await {
        Ok(Some(job)) => job,
        Ok(None) => {
            tracing::error!(%job_id, "no such job");
            return false;
        }
        Err(e) => {
            tracing::warn!(%job_id, error = %e, "could not load the job");
            return false;
        }
    };
    match job.state.as_str() {
        "succeeded" => return true,
        "dead" => return false,
        _ => {}
    }
    match worker.run_and_record(&job).await {
        Ok(state) => state == "succeeded",
        Err(e) => {
            tracing::warn!(%job_id, error = %e, "could not record the job's outcome");
            false
        }
    }
}
