//! Anvil's wire types: every request and response body of the HTTP API, and the one error envelope.
//!
//! This crate has no runtime dependencies beyond serde/time/uuid so that the Yew SPA (wasm32) and the
//! server share exactly the same definitions. OpenAPI schemas are derived only with the `openapi` feature.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

#[cfg(feature = "openapi")]
use utoipa::{IntoParams, ToSchema};

pub mod quality;
pub mod schema;
pub use quality::{
    AddGold, AddGoldResult, AdjudicationRule, AdjudicationWhen, Confusion, Decide, FieldQuality, FinalLabel,
    FinalList, FinalMethod, FinalQuery, FinalSettings, GoldAccuracy, GoldFieldAccuracy, GoldFloor, GoldItem,
    GoldList, GoldSettings, LabelBehind, LabelerFieldQuality, LabelerQuality, Measure, NewGold,
    OptionAgreement, PairAgreement, QualityReport,
};
pub use schema::{FieldKind, LabelSchema, SchemaField};

/// Largest number of samples accepted by one `POST /v1/queues/{id}/samples` call.
pub const MAX_SAMPLES_PER_BATCH: usize = 1000;
/// Largest page size for list endpoints.
pub const MAX_PAGE_SIZE: u32 = 500;
/// Default page size for list endpoints.
pub const DEFAULT_PAGE_SIZE: u32 = 50;

// ---------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------

/// The body of every non-2xx answer: `{"error": {"code", "message", "details"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `not_found`, `validation_failed`, `lease_expired`.
    pub code: String,
    /// Human-readable explanation; never contains internals.
    pub message: String,
    /// Per-field problems for validation errors (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
}

/// One problem with one field of a request body, located by a JSON pointer (RFC 6901) into that body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FieldError {
    pub pointer: String,
    pub message: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self { pointer: pointer.into(), message: message.into() }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Principals and roles
// ---------------------------------------------------------------------------------------------------------

/// Roles are ordered: every role can do what the roles before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Labeler,
    Auditor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Labeler => "labeler",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "labeler" => Some(Role::Labeler),
            "auditor" => Some(Role::Auditor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// `GET /v1/me`: who the presented token says you are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Me {
    pub tenant_id: String,
    pub subject: String,
    pub role: Role,
    /// `jwt` or `pat`.
    pub auth: String,
}

/// `GET /v1/demo/identities` (only `anvil serve --demo` on a loopback address): the demo tenant's people, each
/// with a freshly minted short-lived token, for the sign-in page's one-click buttons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoIdentities {
    pub tenant_id: String,
    /// Lifetime of each token, in seconds.
    pub expires_in: u64,
    pub identities: Vec<DemoIdentity>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoIdentity {
    /// What the sign-in button calls this person (`admin`, `auditor`, `alice`, `bob`).
    pub name: String,
    pub subject: String,
    pub role: Role,
    pub token: String,
}

// ---------------------------------------------------------------------------------------------------------
// Queues
// ---------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    Active,
    Paused,
    Archived,
}

impl QueueState {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueState::Active => "active",
            QueueState::Paused => "paused",
            QueueState::Archived => "archived",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(QueueState::Active),
            "paused" => Some(QueueState::Paused),
            "archived" => Some(QueueState::Archived),
            _ => None,
        }
    }
}

/// How the next sample is chosen among the open ones: highest priority first, then insertion order
/// (`priority`) or a fixed per-sample random order (`random`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AssignmentPolicy {
    #[default]
    Priority,
    Random,
}

impl AssignmentPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentPolicy::Priority => "priority",
            AssignmentPolicy::Random => "random",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "priority" => Some(AssignmentPolicy::Priority),
            "random" => Some(AssignmentPolicy::Random),
            _ => None,
        }
    }
}

/// `POST /v1/queues`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateQueue {
    /// Unique per tenant, 1..=100 characters.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Labels wanted per sample, each from a distinct labeler (1..=50). Fixed for the queue's life.
    #[serde(default = "default_overlap")]
    pub overlap: i32,
    /// How long a claimed sample stays reserved for its labeler without a heartbeat (10..=86400).
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: i32,
    #[serde(default)]
    pub policy: AssignmentPolicy,
    pub schema: LabelSchema,
}

fn default_overlap() -> i32 {
    1
}
fn default_lease_seconds() -> i32 {
    300
}

/// `PATCH /v1/queues/{id}`: every field optional; `schema` creates a new schema version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PatchQueue {
    pub name: Option<String>,
    pub description: Option<String>,
    pub state: Option<QueueState>,
    pub lease_seconds: Option<i32>,
    pub schema: Option<LabelSchema>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Queue {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub overlap: i32,
    pub lease_seconds: i32,
    pub policy: AssignmentPolicy,
    pub state: QueueState,
    pub schema_version: i32,
    pub schema: LabelSchema,
    /// Samples in the queue.
    pub sample_count: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct QueueList {
    pub items: Vec<Queue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LabelerCount {
    pub labeler: String,
    pub submitted: i64,
    pub leased: i64,
    pub released: i64,
}

/// `GET /v1/queues/{id}/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct QueueStats {
    pub queue_id: Uuid,
    pub overlap: i32,
    /// Samples in the queue.
    pub total_samples: i64,
    /// Samples that have all `overlap` labels.
    pub completed_samples: i64,
    /// Samples still missing at least one label.
    pub remaining_samples: i64,
    /// Labels submitted.
    pub submitted: i64,
    /// Live leases (not yet expired).
    pub leased: i64,
    /// Leases past their expiry that have not been reclaimed yet.
    pub expired_unreclaimed: i64,
    pub per_labeler: Vec<LabelerCount>,
}

// ---------------------------------------------------------------------------------------------------------
// Samples
// ---------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewSample {
    /// The caller's own id for this sample; adding the same external_id twice keeps the first.
    pub external_id: String,
    /// The thing to label: usually `{"text": ...}` or `{"image_url": ...}` plus metadata. A JSON object.
    pub payload: Value,
    /// Higher is served first (default 0).
    #[serde(default)]
    pub priority: i32,
}

/// `POST /v1/queues/{id}/samples`: at most [`MAX_SAMPLES_PER_BATCH`] samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddSamples {
    pub samples: Vec<NewSample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AddSamplesResult {
    /// Samples newly created by this call.
    pub created: i64,
    /// Samples whose external_id already existed in the queue (left unchanged).
    pub existing: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Sample {
    pub id: Uuid,
    pub queue_id: Uuid,
    pub external_id: String,
    pub payload: Value,
    pub priority: i32,
}

// ---------------------------------------------------------------------------------------------------------
// Assignments
// ---------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AssignmentState {
    Leased,
    Submitted,
    Released,
    Expired,
}

impl AssignmentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentState::Leased => "leased",
            AssignmentState::Submitted => "submitted",
            AssignmentState::Released => "released",
            AssignmentState::Expired => "expired",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "leased" => Some(AssignmentState::Leased),
            "submitted" => Some(AssignmentState::Submitted),
            "released" => Some(AssignmentState::Released),
            "expired" => Some(AssignmentState::Expired),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Assignment {
    pub id: Uuid,
    pub queue_id: Uuid,
    pub sample_id: Uuid,
    pub labeler: String,
    pub state: AssignmentState,
    /// Incremented by every state change and heartbeat (compare-and-set token).
    pub version: i32,
    pub schema_version: i32,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub leased_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_reason: Option<String>,
}

/// `POST /v1/queues/{id}/assignments/next` (200): the lease, the sample and the schema to label it with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Claim {
    pub assignment: Assignment,
    pub sample: Sample,
    pub schema: LabelSchema,
    /// Server time when the answer was made, so clients can correct for clock skew.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub server_time: OffsetDateTime,
}

/// `POST /v1/assignments/{id}/release`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReleaseAssignment {
    /// Why the labeler skipped this sample (1..=500 characters), e.g. "unreadable".
    pub reason: String,
}

// ---------------------------------------------------------------------------------------------------------
// Labels and reviews
// ---------------------------------------------------------------------------------------------------------

/// `POST /v1/labels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SubmitLabel {
    pub assignment_id: Uuid,
    /// A JSON object with one entry per schema field.
    pub payload: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Accept,
    Reject,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Reject => "reject",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "accept" => Some(Verdict::Accept),
            "reject" => Some(Verdict::Reject),
            _ => None,
        }
    }
}

/// `POST /v1/labels/{id}/review`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReviewLabel {
    pub verdict: Verdict,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Review {
    pub id: Uuid,
    pub label_id: Uuid,
    pub reviewer: String,
    pub verdict: Verdict,
    pub comment: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Label {
    pub id: Uuid,
    pub queue_id: Uuid,
    pub sample_id: Uuid,
    pub external_id: String,
    pub assignment_id: Uuid,
    pub labeler: String,
    pub schema_version: i32,
    pub payload: Value,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    /// Reviews of this label, oldest first; the last one is the current verdict.
    pub reviews: Vec<Review>,
}

/// A page of a list; pass `next_cursor` back as `cursor` to get the next page. `None` means the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LabelPage {
    pub items: Vec<Label>,
    pub next_cursor: Option<String>,
}

/// Query of `GET /v1/queues/{id}/labels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(IntoParams))]
#[serde(deny_unknown_fields)]
pub struct LabelListQuery {
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size, 1..=500 (default 50).
    pub limit: Option<u32>,
    /// Only labels of this sample (to compare the k labels of one sample).
    pub sample_id: Option<Uuid>,
    /// Only labels of this labeler.
    pub labeler: Option<String>,
}

// ---------------------------------------------------------------------------------------------------------
// Personal access tokens
// ---------------------------------------------------------------------------------------------------------

/// `POST /v1/tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What the token is for, e.g. "nightly import".
    pub name: String,
    pub role: Role,
    /// The subject the token acts as (defaults to `pat:<name>`).
    pub subject: Option<String>,
    /// Days until the token stops working (1..=3650; default 90).
    pub expires_in_days: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TokenInfo {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    pub subject: String,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub revoked_at: Option<OffsetDateTime>,
}

/// The answer to `POST /v1/tokens`: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreatedToken {
    pub token: String,
    pub info: TokenInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TokenList {
    pub items: Vec<TokenInfo>,
}

// ---------------------------------------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DependencyHealth {
    pub name: String,
    pub ok: bool,
    pub latency_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: String,
    pub version: String,
    pub dependencies: Vec<DependencyHealth>,
}

// ---------------------------------------------------------------------------------------------------------
// Exports, imports and operations
// ---------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Jsonl,
    Csv,
}

impl FileFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Jsonl => "jsonl",
            FileFormat::Csv => "csv",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jsonl" => Some(FileFormat::Jsonl),
            "csv" => Some(FileFormat::Csv),
            _ => None,
        }
    }
}

/// Which labels an export holds (all of the queue's labels when empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ExportFilter {
    /// Only labels of this labeler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labeler: Option<String>,
    /// Only labels validated against this schema version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<i32>,
}

/// `POST /v1/queues/{id}/exports`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateExport {
    pub format: FileFormat,
    #[serde(default)]
    pub filter: ExportFilter,
    /// `labels` (default: one row per label) or `final` (one row per sample: its final answer, method,
    /// agreement and the labels behind it; the manifest names the method and its parameters).
    #[serde(default)]
    pub mode: ExportMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExportMode {
    #[default]
    Labels,
    Final,
}

impl ExportMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportMode::Labels => "labels",
            ExportMode::Final => "final",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "labels" => Some(ExportMode::Labels),
            "final" => Some(ExportMode::Final),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running => "running",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(TaskState::Pending),
            "running" => Some(TaskState::Running),
            "succeeded" => Some(TaskState::Succeeded),
            "failed" => Some(TaskState::Failed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Export {
    pub id: Uuid,
    pub queue_id: Uuid,
    pub format: FileFormat,
    pub filter: ExportFilter,
    #[serde(default)]
    pub mode: ExportMode,
    pub state: TaskState,
    /// Labels created up to this instant are in the export (re-running gives the same bytes).
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub snapshot_at: OffsetDateTime,
    pub rows: Option<i64>,
    pub bytes: Option<i64>,
    /// Hex sha256 of the file's bytes.
    pub sha256: Option<String>,
    /// Schema version and hash, filter, row count, sha256, snapshot time (also stored next to the file).
    pub manifest: Option<Value>,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub finished_at: Option<OffsetDateTime>,
    /// When succeeded: a signed URL to download the file, valid until `download_expires_at`.
    pub download_url: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub download_expires_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ExportList {
    pub items: Vec<Export>,
}

/// Query of `GET /v1/exports/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(IntoParams))]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Lifetime of the download URL in seconds (60..=604800; default from the server's configuration).
    pub ttl_secs: Option<u64>,
}

/// `POST /v1/queues/{id}/imports`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateImport {
    /// `jsonl`: one `{"external_id", "payload", "priority"?}` per line; `csv`: a header with `external_id`,
    /// optional `priority`, and the other columns become the payload's string properties.
    pub format: FileFormat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ImportRowError {
    /// 1-based line of the file (the header of a CSV is line 1).
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Import {
    pub id: Uuid,
    pub queue_id: Uuid,
    pub format: FileFormat,
    /// `pending` until started, then `running`, `succeeded` (even with row errors) or `failed`.
    pub state: TaskState,
    /// PUT the file's bytes here (only in the answer that created the import).
    pub upload_url: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub upload_expires_at: Option<OffsetDateTime>,
    pub rows_created: i64,
    pub rows_existing: i64,
    pub rows_failed: i64,
    /// The first 1000 invalid rows.
    pub errors: Vec<ImportRowError>,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
}

/// `GET /v1/admin/ops/summary`: the tenant's background work at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct OpsSummary {
    /// Jobs waiting (including those backing off after a failure).
    pub pending_jobs: i64,
    /// Pending jobs a worker may take now.
    pub available_jobs: i64,
    pub running_jobs: i64,
    /// Age of the oldest pending job, in seconds (0 when none).
    pub oldest_pending_age_secs: i64,
    /// Pending jobs that have failed at least once.
    pub failed_jobs: i64,
    /// Jobs that gave up after their last attempt.
    pub dead_jobs: i64,
    /// Leases past their expiry not yet reclaimed.
    pub expired_leases: i64,
    pub exports_running: i64,
}
