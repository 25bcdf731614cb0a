//! Background jobs: the export and import handlers, and the poller that runs them from the job table.
//!
//! Delivery is at least once (a poller's lock can expire, an SQS message can come twice), so every handler is
//! idempotent: a succeeded export or import is left as it is, an export's object only becomes visible when
//! complete (and a crashed attempt's partial upload is removed by the retry), an import inserts by
//! external_id with ON CONFLICT DO NOTHING.

use std::sync::Arc;
use std::time::Duration;

use anvil_types::{ExportMode, FileFormat, ImportRowError, NewSample, Queue, TaskState};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tracing::Instrument;
use uuid::Uuid;

use crate::blob::BlobStore;
use crate::domain::{Subject, TenantId, check_samples};
use crate::error::{Error, Result};
use crate::schema::schema_hash;
use crate::store::{ExportOutcome, ExportRow, ImportProgress, Job, Store, TaskStore};

/// Labels read per page by an export (bounded memory).
pub const EXPORT_PAGE: u32 = 2000;
/// A row of a `final` JSONL export: the final label with its sample.
#[derive(serde::Serialize)]
struct FinalRow<'a> {
    #[serde(flatten)]
    row: &'a anvil_types::FinalLabel,
    sample: &'a Value,
}

/// Samples read per page by a `final` export.
pub const FINAL_EXPORT_PAGE: u32 = 1000;
/// Bytes buffered before a write to the blob store.
const FLUSH_AT: usize = 1 << 20;
/// Samples inserted per transaction by an import.
const IMPORT_BATCH: usize = 500;
/// Row errors kept per import.
const MAX_ROW_ERRORS: usize = 1000;
/// Longest accepted line of a JSONL import.
const MAX_LINE: usize = 1 << 20;

/// Why a job failed: `Retry` backs off and tries again, `Permanent` ends it at once.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Retry(String),
    #[error("{0}")]
    Permanent(String),
}

impl From<Error> for JobError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(what) => JobError::Permanent(format!("{what} not found")),
            Error::Validation(_) | Error::BadRequest(_) | Error::Conflict { .. } => {
                JobError::Permanent(e.to_string())
            }
            other => JobError::Retry(format!("{other:#}")),
        }
    }
}

/// Runs jobs against the stores and the blob store. Built once per process.
#[derive(Clone)]
pub struct Worker {
    pub store: Arc<dyn Store>,
    pub tasks: Arc<dyn TaskStore>,
    pub blobs: Arc<dyn BlobStore>,
}

impl Worker {
    /// Runs one job by kind; `Ok` also for a job whose work was already done.
    pub async fn handle(&self, job: &Job) -> std::result::Result<(), JobError> {
        let tenant = TenantId::parse(&job.tenant).ok_or_else(|| JobError::Permanent("bad tenant".into()))?;
        let id = |field: &str| -> std::result::Result<Uuid, JobError> {
            job.payload
                .get(field)
                .and_then(Value::as_str)
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or_else(|| JobError::Permanent(format!("job payload has no {field}")))
        };
        // Instrumented, not entered: an entered span guard held across an await would tag whatever else runs
        // on this thread meanwhile.
        let span = tracing::info_span!("job", job_id = %job.id, kind = %job.kind, tenant_id = %tenant, attempt = job.attempts);
        async {
            match job.kind.as_str() {
                "export" => self.run_export(&tenant, id("export_id")?).await,
                "import" => self.run_import(&tenant, id("import_id")?).await,
                other => Err(JobError::Permanent(format!("unknown job kind `{other}`"))),
            }
        }
        .instrument(span)
        .await
    }

    /// Runs a job and records its outcome in the job table; returns the job's new state.
    pub async fn run_and_record(&self, job: &Job) -> Result<String> {
        let outcome = self.handle(job).await;
        let (error, backoff, give_up) = match &outcome {
            Ok(()) => (None, Duration::ZERO, false),
            Err(JobError::Retry(e)) => (Some(e.clone()), backoff(job.attempts), false),
            Err(JobError::Permanent(e)) => (Some(e.clone()), Duration::ZERO, true),
        };
        let state = self.tasks.finish_job(job.id, error.as_deref(), backoff, give_up).await?;
        if state == "dead" {
            self.mark_failed(job, error.as_deref().unwrap_or("failed")).await;
            tracing::error!(job_id = %job.id, kind = %job.kind, error = ?error, "job is dead");
        } else if let Some(e) = &error {
            tracing::warn!(job_id = %job.id, kind = %job.kind, error = %e, "job failed; will retry");
        }
        Ok(state)
    }

    async fn mark_failed(&self, job: &Job, error: &str) {
        let Some(tenant) = TenantId::parse(&job.tenant) else {
            return;
        };
        let id = |f: &str| job.payload.get(f).and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok());
        let res = match job.kind.as_str() {
            "export" => match id("export_id") {
                Some(e) => self.tasks.export_failed(&tenant, e, error).await,
                None => Ok(()),
            },
            "import" => match id("import_id") {
                Some(i) => match self.tasks.get_import(&tenant, i).await {
                    Ok(rec) => {
                        let p = ImportProgress {
                            created: rec.import.rows_created,
                            existing: rec.import.rows_existing,
                            failed: rec.import.rows_failed,
                            errors: rec.import.errors,
                        };
                        self.tasks.import_state(&tenant, i, TaskState::Failed, &p, Some(error)).await
                    }
                    Err(e) => Err(e),
                },
                None => Ok(()),
            },
            _ => Ok(()),
        };
        if let Err(e) = res {
            tracing::warn!(error = %e, "could not record the failure");
        }
    }

    // --------------------------------------------------------------------------------------------------------
    // Exports
    // --------------------------------------------------------------------------------------------------------

    async fn run_export(&self, t: &TenantId, id: Uuid) -> std::result::Result<(), JobError> {
        let rec = self.tasks.get_export(t, id).await?;
        if rec.export.state == TaskState::Succeeded {
            tracing::info!(export_id = %id, "export already succeeded; nothing to do");
            return Ok(());
        }
        let rec = self.tasks.export_started(t, id).await?;
        let queue = self.store.get_queue(t, rec.export.queue_id).await?;
        // A crashed earlier attempt may have left an unfinished upload behind.
        let dir = rec.object_key.rsplit_once('/').map_or(rec.object_key.as_str(), |(d, _)| d);
        let cleaned = self.blobs.abort_incomplete(dir).await?;
        if cleaned > 0 {
            tracing::info!(export_id = %id, cleaned, "removed unfinished uploads of an earlier attempt");
        }
        let content_type = match rec.export.format {
            FileFormat::Jsonl => "application/x-ndjson",
            FileFormat::Csv => "text/csv; charset=utf-8",
        };
        let mut upload = self.blobs.begin(&rec.object_key, content_type).await?;
        let final_settings = match rec.export.mode {
            ExportMode::Final => Some(self.store.final_settings(t, queue.id).await?),
            ExportMode::Labels => None,
        };
        let written = match &final_settings {
            Some(fs) => self.write_final_export(&mut *upload, &queue, &rec, fs).await,
            None => self.write_export(&mut *upload, &queue, &rec).await,
        };
        let (rows, bytes, sha256, versions) = match written {
            Ok(v) => v,
            Err(e) => {
                let _ = upload.abort().await;
                return Err(e);
            }
        };
        upload.finish().await?;
        let manifest = json!({
            "export_id": id,
            "queue_id": queue.id,
            "queue_name": queue.name,
            "format": rec.export.format.as_str(),
            "filter": rec.export.filter,
            "schema_version": queue.schema_version,
            "schema_hash": schema_hash(&queue.schema),
            "schema_versions_in_data": versions,
            "rows": rows,
            "bytes": bytes,
            "sha256": sha256,
            "snapshot_at": rec.export.snapshot_at.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            "object_key": rec.object_key,
            "generator": format!("anvil {}", env!("CARGO_PKG_VERSION")),
            "mode": rec.export.mode.as_str(),
        });
        let mut manifest = manifest;
        if let Some(fs) = &final_settings {
            manifest["final"] = json!({
                "method": fs.method.as_str(),
                "adjudicate": fs.adjudicate,
                "ties": "majority: a tie at the top goes to adjudication (no answer until an auditor decides)",
                "dawid_skene": (fs.method == anvil_types::FinalMethod::DawidSkene).then(|| json!({
                    "fields": "single choice and boolean fields; other fields by majority",
                    "max_iter": crate::quality::dawid_skene::DS_MAX_ITER,
                    "tol": crate::quality::dawid_skene::DS_TOL,
                    "init": "majority vote",
                    "gold_anchored": true,
                })),
            });
        }
        let mut m = self.blobs.begin(&rec.manifest_key, "application/json").await?;
        m.write(Bytes::from(
            serde_json::to_vec_pretty(&manifest).map_err(|e| JobError::Retry(e.to_string()))?,
        ))
        .await?;
        m.finish().await?;
        let first =
            self.tasks.export_succeeded(t, id, &ExportOutcome { rows, bytes, sha256, manifest }).await?;
        tracing::info!(export_id = %id, rows, bytes, first, "export succeeded");
        Ok(())
    }

    /// Streams the rows into the upload; returns (rows, bytes, sha256, schema versions seen).
    async fn write_export(
        &self,
        upload: &mut dyn crate::blob::BlobUpload,
        queue: &Queue,
        rec: &crate::store::ExportRecord,
    ) -> std::result::Result<(i64, i64, String, Vec<i32>), JobError> {
        let (t, filter, format) = (&rec.tenant, &rec.export.filter, rec.export.format);
        let mut hasher = Sha256::new();
        let mut buf: Vec<u8> = Vec::with_capacity(FLUSH_AT + 64 * 1024);
        let (mut rows, mut bytes) = (0i64, 0i64);
        let mut versions: Vec<i32> = Vec::new();
        let fields: Vec<String> = queue.schema.fields.iter().map(|f| f.name.clone()).collect();
        if format == FileFormat::Csv {
            write_csv_row(&mut buf, &csv_header(&fields))?;
        }
        let mut after = None;
        loop {
            let page = self
                .tasks
                .export_rows(t, queue.id, filter, rec.export.snapshot_at, after, EXPORT_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.label_id);
            for row in &page {
                if !versions.contains(&row.schema_version) {
                    versions.push(row.schema_version);
                }
                match format {
                    FileFormat::Jsonl => {
                        serde_json::to_writer(&mut buf, &jsonl_row(row))
                            .map_err(|e| JobError::Retry(e.to_string()))?;
                        buf.push(b'\n');
                    }
                    FileFormat::Csv => write_csv_row(&mut buf, &csv_row(row, &fields))?,
                }
                rows += 1;
            }
            if buf.len() >= FLUSH_AT {
                hasher.update(&buf);
                bytes += i64::try_from(buf.len()).unwrap_or(0);
                upload.write(Bytes::from(std::mem::take(&mut buf))).await?;
                buf.reserve(FLUSH_AT + 64 * 1024);
            }
            if page.len() < EXPORT_PAGE as usize {
                break;
            }
        }
        if !buf.is_empty() {
            hasher.update(&buf);
            bytes += i64::try_from(buf.len()).unwrap_or(0);
            upload.write(Bytes::from(buf)).await?;
        }
        versions.sort_unstable();
        Ok((rows, bytes, hex::encode(hasher.finalize()), versions))
    }

    /// A `final` export: one row per ordinary sample in sample order, as `GET /v1/queues/{id}/final`
    /// answers it; returns (rows, bytes, sha256, schema versions seen: the queue's current one).
    async fn write_final_export(
        &self,
        upload: &mut dyn crate::blob::BlobUpload,
        queue: &Queue,
        rec: &crate::store::ExportRecord,
        settings: &anvil_types::FinalSettings,
    ) -> std::result::Result<(i64, i64, String, Vec<i32>), JobError> {
        let (t, format) = (&rec.tenant, rec.export.format);
        let rejected = crate::service::rejected_set(self.store.as_ref(), t, queue.id).await?;
        let ds = crate::service::ds_classes(self.store.as_ref(), t, queue, settings, &rejected).await?;
        let mut hasher = Sha256::new();
        let mut buf: Vec<u8> = Vec::with_capacity(FLUSH_AT + 64 * 1024);
        let (mut rows, mut bytes) = (0i64, 0i64);
        let fields: Vec<String> = queue.schema.fields.iter().map(|f| f.name.clone()).collect();
        if format == FileFormat::Csv {
            let mut h: Vec<String> = ["sample_id", "external_id", "status", "method", "decided_by", "labels"]
                .map(String::from)
                .to_vec();
            h.extend(fields.iter().cloned());
            h.extend(fields.iter().map(|f| format!("agreement.{f}")));
            h.push("reasons".into());
            write_csv_row(&mut buf, &h)?;
        }
        // The next page is read while this one is written.
        let rejected = Arc::new(rejected);
        let fetch = |after: Option<Uuid>| {
            let (store, t, rejected, q) = (self.store.clone(), t.clone(), rejected.clone(), queue.id);
            tokio::spawn(async move {
                store.final_samples(&t, q, after, None, FINAL_EXPORT_PAGE, &rejected).await
            })
        };
        let mut next = Some(fetch(None));
        while let Some(pending) = next.take() {
            let page = pending.await.map_err(|e| JobError::Retry(e.to_string()))??;
            if page.len() == FINAL_EXPORT_PAGE as usize {
                next = page.last().map(|last| fetch(Some(last.sample_id)));
            }
            for s in &page {
                let f =
                    crate::quality::final_label::decide(&queue.schema, settings, queue.overlap, s, &|fi| {
                        ds.value(fi, s.sample_id)
                    });
                match format {
                    FileFormat::Jsonl => {
                        serde_json::to_writer(&mut buf, &FinalRow { row: &f, sample: &s.payload })
                            .map_err(|e| JobError::Retry(e.to_string()))?;
                        buf.push(b'\n');
                    }
                    FileFormat::Csv => {
                        let mut row = vec![
                            f.sample_id.to_string(),
                            f.external_id.clone(),
                            f.status.clone(),
                            f.method.clone().unwrap_or_default(),
                            f.decided_by.clone().unwrap_or_default(),
                            f.labels.len().to_string(),
                        ];
                        row.extend(fields.iter().map(|n| cell(f.answer.as_ref().and_then(|a| a.get(n)))));
                        row.extend(
                            fields
                                .iter()
                                .map(|n| f.agreement.get(n).map(|x| format!("{x}")).unwrap_or_default()),
                        );
                        row.push(f.reasons.join("; "));
                        write_csv_row(&mut buf, &row)?;
                    }
                }
                rows += 1;
            }
            if buf.len() >= FLUSH_AT {
                hasher.update(&buf);
                bytes += i64::try_from(buf.len()).unwrap_or(0);
                upload.write(Bytes::from(std::mem::take(&mut buf))).await?;
                buf.reserve(FLUSH_AT + 64 * 1024);
            }
        }
        if !buf.is_empty() {
            hasher.update(&buf);
            bytes += i64::try_from(buf.len()).unwrap_or(0);
            upload.write(Bytes::from(buf)).await?;
        }
        Ok((rows, bytes, hex::encode(hasher.finalize()), vec![queue.schema_version]))
    }

    // --------------------------------------------------------------------------------------------------------
    // Imports
    // --------------------------------------------------------------------------------------------------------

    async fn run_import(&self, t: &TenantId, id: Uuid) -> std::result::Result<(), JobError> {
        let rec = self.tasks.get_import(t, id).await?;
        if matches!(rec.import.state, TaskState::Succeeded | TaskState::Failed) {
            return Ok(());
        }
        let Some(reader) = self.blobs.open(&rec.object_key).await? else {
            let p = ImportProgress::default();
            self.tasks
                .import_state(t, id, TaskState::Failed, &p, Some("no file was uploaded for this import"))
                .await?;
            return Ok(());
        };
        let actor = Subject::parse(&format!("import:{}", id.simple()))
            .ok_or_else(|| JobError::Permanent("actor".into()))?;
        // Parsing is synchronous (the csv crate); it runs on a blocking thread reading the stream through a
        // bridge and hands batches over a bounded channel, so memory holds at most a few batches.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Parsed>>(4);
        let format = rec.import.format;
        let bridge = tokio_util::io::SyncIoBridge::new(reader);
        let parser = tokio::task::spawn_blocking(move || parse_file(bridge, format, &tx));
        let mut p = ImportProgress::default();
        while let Some(batch) = rx.recv().await {
            let mut samples = Vec::with_capacity(batch.len());
            for item in batch {
                match item {
                    Parsed::Row(s) => samples.push(s),
                    Parsed::Bad(line, reason) => {
                        p.failed += 1;
                        if p.errors.len() < MAX_ROW_ERRORS {
                            p.errors.push(ImportRowError { line, reason });
                        }
                    }
                }
            }
            if !samples.is_empty() {
                let r = self.store.add_samples(t, &actor, rec.import.queue_id, &samples).await?;
                p.created += r.created;
                p.existing += r.existing;
            }
            self.tasks.import_state(t, id, TaskState::Running, &p, None).await?;
        }
        match parser.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.tasks.import_state(t, id, TaskState::Failed, &p, Some(&e)).await?;
                return Ok(());
            }
            Err(e) => return Err(JobError::Retry(format!("parser stopped: {e}"))),
        }
        self.tasks.import_state(t, id, TaskState::Succeeded, &p, None).await?;
        tracing::info!(import_id = %id, created = p.created, existing = p.existing, failed = p.failed, "import done");
        Ok(())
    }
}

/// Exponential backoff: 2, 4, 8 ... seconds, at most 5 minutes.
pub fn backoff(attempts: i32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(u32::try_from(attempts.clamp(1, 9)).unwrap_or(1)).min(300))
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// One JSONL line; serde_json writes object keys sorted, so the bytes depend only on the data.
fn jsonl_row(r: &ExportRow) -> Value {
    json!({
        "label_id": r.label_id,
        "sample_id": r.sample_id,
        "external_id": r.external_id,
        "labeler": r.labeler,
        "schema_version": r.schema_version,
        "created_at": rfc3339(r.created_at),
        "label": r.payload,
        "sample": r.sample,
    })
}

fn csv_header(fields: &[String]) -> Vec<String> {
    let mut h: Vec<String> =
        ["label_id", "sample_id", "external_id", "labeler", "schema_version", "created_at"]
            .map(String::from)
            .to_vec();
    h.extend(fields.iter().cloned());
    h.push("sample".into());
    h
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn csv_row(r: &ExportRow, fields: &[String]) -> Vec<String> {
    let mut row = vec![
        r.label_id.to_string(),
        r.sample_id.to_string(),
        r.external_id.clone(),
        r.labeler.clone(),
        r.schema_version.to_string(),
        rfc3339(r.created_at),
    ];
    row.extend(fields.iter().map(|f| cell(r.payload.get(f))));
    row.push(r.sample.to_string());
    row
}

/// A cell a spreadsheet would run as a formula is prefixed with `'` (CSV injection).
pub fn neutralize(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => std::borrow::Cow::Owned(format!("'{cell}")),
        _ => std::borrow::Cow::Borrowed(cell),
    }
}

fn write_csv_row(buf: &mut Vec<u8>, cells: &[String]) -> std::result::Result<(), JobError> {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    w.write_record(cells.iter().map(|c| neutralize(c).into_owned()))
        .map_err(|e| JobError::Retry(e.to_string()))?;
    buf.extend(w.into_inner().map_err(|e| JobError::Retry(e.to_string()))?);
    Ok(())
}

enum Parsed {
    Row(NewSample),
    Bad(u64, String),
}

fn check_row(line: u64, s: NewSample) -> Parsed {
    match check_samples(std::slice::from_ref(&s)) {
        Ok(()) => Parsed::Row(s),
        Err(errs) => Parsed::Bad(
            line,
            errs.iter()
                .map(|e| format!("{}: {}", e.pointer.trim_start_matches("/samples/0"), e.message))
                .collect::<Vec<_>>()
                .join("; "),
        ),
    }
}

/// Parses a JSONL or CSV file into batches; a fatal problem (unreadable file) is the error.
fn parse_file(
    reader: impl std::io::Read,
    format: FileFormat,
    tx: &tokio::sync::mpsc::Sender<Vec<Parsed>>,
) -> std::result::Result<(), String> {
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    let send = |batch: &mut Vec<Parsed>, force: bool| -> std::result::Result<(), String> {
        if batch.len() >= IMPORT_BATCH || (force && !batch.is_empty()) {
            tx.blocking_send(std::mem::take(batch)).map_err(|_| "import stopped".to_string())?;
        }
        Ok(())
    };
    match format {
        FileFormat::Jsonl => {
            use std::io::{BufRead, Read};
            let mut r = std::io::BufReader::with_capacity(256 * 1024, reader);
            let mut line = Vec::new();
            let mut n = 0u64;
            loop {
                line.clear();
                let read = (&mut r)
                    .take(MAX_LINE as u64 + 1)
                    .read_until(b'\n', &mut line)
                    .map_err(|e| e.to_string())?;
                if read == 0 {
                    break;
                }
                n += 1;
                if line.len() > MAX_LINE && !line.ends_with(b"\n") {
                    batch.push(Parsed::Bad(n, "line longer than 1 MiB".into()));
                    // skip the rest of the over-long line
                    let mut rest = Vec::new();
                    r.read_until(b'\n', &mut rest).map_err(|e| e.to_string())?;
                    send(&mut batch, false)?;
                    continue;
                }
                let text = String::from_utf8_lossy(&line);
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                batch.push(match serde_json::from_str::<NewSample>(text) {
                    Ok(s) => check_row(n, s),
                    Err(e) => Parsed::Bad(n, format!("not a sample object: {e}")),
                });
                send(&mut batch, false)?;
            }
        }
        FileFormat::Csv => {
            let mut r = csv::ReaderBuilder::new().flexible(false).from_reader(reader);
            let headers = r.headers().map_err(|e| format!("unreadable CSV header: {e}"))?.clone();
            let ext =
                headers.iter().position(|h| h == "external_id").ok_or("the CSV has no external_id column")?;
            let prio = headers.iter().position(|h| h == "priority");
            for rec in r.records() {
                let line = rec.as_ref().ok().and_then(|r| r.position()).map_or(0, |p| p.line());
                let parsed = match rec {
                    Err(e) => {
                        let line = e.position().map_or(0, |p| p.line());
                        Parsed::Bad(line, format!("malformed CSV row: {e}"))
                    }
                    Ok(rec) => {
                        let mut payload = Map::new();
                        for (i, (h, v)) in headers.iter().zip(rec.iter()).enumerate() {
                            if i != ext && Some(i) != prio {
                                payload.insert(h.to_string(), Value::String(v.to_string()));
                            }
                        }
                        let priority = match prio.map(|i| rec.get(i).unwrap_or("").trim()) {
                            None | Some("") => Ok(0),
                            Some(p) => {
                                p.parse::<i32>().map_err(|_| format!("priority `{p}` is not an integer"))
                            }
                        };
                        match priority {
                            Ok(priority) => check_row(
                                line,
                                NewSample {
                                    external_id: rec.get(ext).unwrap_or("").to_string(),
                                    payload: Value::Object(payload),
                                    priority,
                                },
                            ),
                            Err(reason) => Parsed::Bad(line, reason),
                        }
                    }
                };
                batch.push(parsed);
                send(&mut batch, false)?;
            }
        }
    }
    send(&mut batch, true)
}

/// Polls the job table until `stop` turns true; each iteration takes one job.
pub async fn poll(worker: Worker, visibility: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let idle = Duration::from_millis(500);
    loop {
        if *stop.borrow() {
            return;
        }
        match worker.tasks.reserve_job(visibility).await {
            Ok(Some(job)) => {
                // A job in progress finishes even when a stop is requested (bounded by the caller's grace).
                if let Err(e) = worker.run_and_record(&job).await {
                    tracing::warn!(job_id = %job.id, error = %e, "could not record a job's outcome");
                }
            }
            Ok(None) => {
                tokio::select! {
                    _ = tokio::time::sleep(idle) => {}
                    _ = stop.changed() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not poll the job table");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralized() {
        assert_eq!(neutralize("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(neutralize("+1"), "'+1");
        assert_eq!(neutralize("-2"), "'-2");
        assert_eq!(neutralize("@cmd"), "'@cmd");
        assert_eq!(neutralize("plain"), "plain");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(50), Duration::from_secs(300));
    }

    #[test]
    fn jsonl_and_csv_rows_are_parsed_with_line_numbers() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let data = b"{\"external_id\": \"a\", \"payload\": {\"text\": \"x\"}}\n\nnot json\n{\"external_id\": \"b\", \"payload\": 5}\n";
        parse_file(&data[..], FileFormat::Jsonl, &tx).unwrap();
        let items: Vec<Parsed> = std::iter::from_fn(|| rx.try_recv().ok()).flatten().collect();
        let bad: Vec<u64> =
            items.iter().filter_map(|p| if let Parsed::Bad(l, _) = p { Some(*l) } else { None }).collect();
        assert_eq!(bad, vec![3, 4]);
        let csv = b"external_id,text,priority\na,hello,1\nb,\"multi\nline\",x\nc,bye,\n";
        parse_file(&csv[..], FileFormat::Csv, &tx).unwrap();
        let items: Vec<Parsed> = std::iter::from_fn(|| rx.try_recv().ok()).flatten().collect();
        assert_eq!(items.iter().filter(|p| matches!(p, Parsed::Row(..))).count(), 2);
        assert!(items.iter().any(|p| matches!(p, Parsed::Bad(3, r) if r.contains("priority"))));
    }
}
