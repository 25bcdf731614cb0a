//! Stored rows -> domain values, written once for both adapters.
//!
//! Postgres and SQLite keep the same concepts in different column types (Postgres: `uuid`, `timestamptz`,
//! `jsonb`; SQLite: ids as TEXT, instants as integer milliseconds, JSON as TEXT). Each adapter says how to
//! read those few column kinds ([`StoredRow`]); every concept is mapped from a row here, once, so a new
//! column of a shared concept is one line in one function. The adapters keep the SQL and the shape of their
//! transactions.
//!
//! A stored value that this version does not know (a state, a role, a format) is an error naming the column
//! and the value, never a default: a row written by a newer version, or damaged, must not read as a paused
//! queue or a rejected label.

use anvil_types::{
    Assignment, AssignmentPolicy, AssignmentState, Claim, Export, FileFormat, Import, Label, LabelSchema,
    LabelerCount, Queue, QueueState, QueueStats, Review, Role, Sample, TaskState, TokenInfo, Verdict,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ExportRecord, ExportRow, ImportRecord, Job, TokenRecord};
use crate::domain::{Subject, TenantId};
use crate::error::{Error, Result};

/// The column reads the mappings need; each adapter implements them for its row type.
pub(crate) trait StoredRow {
    /// A text column, borrowed for `f` (no copy: how names such as states are parsed).
    fn with_str<T>(&self, col: &str, f: impl FnOnce(&str) -> T) -> Result<T>;
    fn text(&self, col: &str) -> Result<String>;
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    fn int(&self, col: &str) -> Result<i32>;
    fn bigint(&self, col: &str) -> Result<i64>;
    fn opt_bigint(&self, col: &str) -> Result<Option<i64>>;
    fn uuid(&self, col: &str) -> Result<Uuid>;
    fn time(&self, col: &str) -> Result<OffsetDateTime>;
    fn opt_time(&self, col: &str) -> Result<Option<OffsetDateTime>>;
    fn json(&self, col: &str) -> Result<Value>;
    fn opt_json(&self, col: &str) -> Result<Option<Value>>;
    fn float(&self, col: &str) -> Result<f64>;
    fn opt_float(&self, col: &str) -> Result<Option<f64>>;
    /// A boolean (Postgres `boolean`, SQLite 0/1).
    fn flag(&self, col: &str) -> Result<bool>;
    fn opt_int(&self, col: &str) -> Result<Option<i32>>;
}

/// A damaged or unknown stored value: an internal error (logged, answered 500) that names the column.
pub(crate) fn stored_error(col: &str, what: impl std::fmt::Display) -> Error {
    Error::Internal(anyhow::anyhow!("stored column `{col}`: {what}"))
}

/// A stored name (state, role, format) parsed by its type's own `parse`.
fn known<T>(r: &impl StoredRow, col: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    r.with_str(col, |v| {
        parse(v).ok_or_else(|| stored_error(col, format_args!("`{v}` is not a value this version knows")))
    })?
}

/// A stored JSON document deserialized into its type.
fn typed<T: DeserializeOwned>(r: &impl StoredRow, col: &str) -> Result<T> {
    serde_json::from_value(r.json(col)?).map_err(|e| stored_error(col, format_args!("does not parse: {e}")))
}

pub(crate) fn tenant(r: &impl StoredRow, col: &str) -> Result<TenantId> {
    known(r, col, TenantId::parse)
}

fn subject(r: &impl StoredRow, col: &str) -> Result<Subject> {
    known(r, col, Subject::parse)
}

/// Columns of [`queue`], as `q` (queues) joined to `sv` (its current schema version); a macro so that
/// statements built with `concat!` at compile time use the same list.
macro_rules! queue_cols {
    () => {
        "q.id, q.name, q.description, q.overlap, q.lease_seconds, q.policy, q.state, q.schema_version, \
         q.sample_count, q.created_at, q.updated_at, sv.schema"
    };
}
#[cfg(feature = "sqlite")]
pub(crate) use queue_cols;

/// Columns of [`queue`] (see [`queue_cols`]).
#[cfg(feature = "postgres")]
pub(crate) const QUEUE_COLS: &str = queue_cols!();

pub(crate) fn queue(r: &impl StoredRow) -> Result<Queue> {
    Ok(Queue {
        id: r.uuid("id")?,
        name: r.text("name")?,
        description: r.text("description")?,
        overlap: r.int("overlap")?,
        lease_seconds: r.int("lease_seconds")?,
        policy: known(r, "policy", AssignmentPolicy::parse)?,
        state: known(r, "state", QueueState::parse)?,
        schema_version: r.int("schema_version")?,
        schema: typed::<LabelSchema>(r, "schema")?,
        sample_count: r.bigint("sample_count")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

/// Columns of [`assignment`], as `a`.
pub(crate) const ASSIGNMENT_COLS: &str = "a.id, a.queue_id, a.sample_id, a.labeler, a.state, a.version, \
     a.schema_version, a.leased_at, a.expires_at, a.release_reason";

pub(crate) fn assignment(r: &impl StoredRow) -> Result<Assignment> {
    Ok(Assignment {
        id: r.uuid("id")?,
        queue_id: r.uuid("queue_id")?,
        sample_id: r.uuid("sample_id")?,
        labeler: r.text("labeler")?,
        state: known(r, "state", AssignmentState::parse)?,
        version: r.int("version")?,
        schema_version: r.int("schema_version")?,
        leased_at: r.time("leased_at")?,
        expires_at: r.time("expires_at")?,
        release_reason: r.opt_text("release_reason")?,
    })
}

/// An assignment row joined with its sample (`external_id`, `payload`, `priority`) and schema (`schema`), as
/// the claim answer; `server_time` is the database's clock where the statement returns it.
pub(crate) fn claim(r: &impl StoredRow, server_time: OffsetDateTime) -> Result<Claim> {
    let assignment = assignment(r)?;
    Ok(Claim {
        sample: Sample {
            id: assignment.sample_id,
            queue_id: assignment.queue_id,
            external_id: r.text("external_id")?,
            payload: r.json("payload")?,
            priority: r.int("priority")?,
        },
        schema: typed::<LabelSchema>(r, "schema")?,
        server_time,
        assignment,
    })
}

/// Columns of [`label`], as `l` (labels) joined to `s` (its sample); a macro for `concat!`, as [`queue_cols`].
macro_rules! label_cols {
    () => {
        "l.id, l.queue_id, l.sample_id, s.external_id, l.assignment_id, l.labeler, l.schema_version, l.payload, \
         l.created_at"
    };
}
#[cfg(feature = "sqlite")]
pub(crate) use label_cols;

/// Columns of [`label`] (see [`label_cols`]).
#[cfg(feature = "postgres")]
pub(crate) const LABEL_COLS: &str = label_cols!();

/// A label without its reviews (the adapters attach them).
pub(crate) fn label(r: &impl StoredRow) -> Result<Label> {
    Ok(Label {
        id: r.uuid("id")?,
        queue_id: r.uuid("queue_id")?,
        sample_id: r.uuid("sample_id")?,
        external_id: r.text("external_id")?,
        assignment_id: r.uuid("assignment_id")?,
        labeler: r.text("labeler")?,
        schema_version: r.int("schema_version")?,
        payload: r.json("payload")?,
        created_at: r.time("created_at")?,
        reviews: Vec::new(),
    })
}

pub(crate) fn review(r: &impl StoredRow) -> Result<Review> {
    Ok(Review {
        id: r.uuid("id")?,
        label_id: r.uuid("label_id")?,
        reviewer: r.text("reviewer")?,
        verdict: known(r, "verdict", Verdict::parse)?,
        comment: r.text("comment")?,
        created_at: r.time("created_at")?,
    })
}

/// Columns of [`token`]; a macro for `concat!`, as [`queue_cols`].
macro_rules! token_cols {
    () => {
        "id, name, role, subject, created_by, created_at, expires_at, revoked_at"
    };
}
#[cfg(feature = "postgres")]
pub(crate) use token_cols;

/// Columns of [`token`] (see [`token_cols`]).
#[cfg(feature = "sqlite")]
pub(crate) const TOKEN_COLS: &str = token_cols!();

pub(crate) fn token(r: &impl StoredRow) -> Result<TokenInfo> {
    Ok(TokenInfo {
        id: r.uuid("id")?,
        name: r.text("name")?,
        role: known(r, "role", Role::parse)?,
        subject: r.text("subject")?,
        created_by: r.text("created_by")?,
        created_at: r.time("created_at")?,
        expires_at: r.time("expires_at")?,
        revoked_at: r.opt_time("revoked_at")?,
    })
}

/// A token found by its hash, before its tenant is known: `tenant_id, id, role, subject, expires_at,
/// revoked_at`.
pub(crate) fn token_record(r: &impl StoredRow) -> Result<TokenRecord> {
    Ok(TokenRecord {
        tenant: tenant(r, "tenant_id")?,
        id: r.uuid("id")?,
        role: known(r, "role", Role::parse)?,
        subject: subject(r, "subject")?,
        expires_at: r.time("expires_at")?,
        revoked_at: r.opt_time("revoked_at")?,
    })
}

/// A row of an export page: `id, sample_id, external_id, sample, labeler, schema_version, payload,
/// created_at` (a label with its sample).
pub(crate) fn export_row(r: &impl StoredRow) -> Result<ExportRow> {
    Ok(ExportRow {
        label_id: r.uuid("id")?,
        sample_id: r.uuid("sample_id")?,
        external_id: r.text("external_id")?,
        sample: r.json("sample")?,
        labeler: r.text("labeler")?,
        schema_version: r.int("schema_version")?,
        payload: r.json("payload")?,
        created_at: r.time("created_at")?,
    })
}

/// A label as the quality report reads it: `id, sample_id, labeler, payload`, and `sample` when asked for.
pub(crate) fn quality_row(r: &impl StoredRow, with_sample: bool) -> Result<crate::quality::QualityRow> {
    Ok(crate::quality::QualityRow {
        label_id: r.uuid("id")?,
        sample_id: r.uuid("sample_id")?,
        labeler: r.text("labeler")?,
        payload: r.json("payload")?,
        sample: if with_sample { r.opt_json("sample")? } else { None },
    })
}

/// A label on a gold sample: `sample_id, labeler, payload, answer`.
pub(crate) fn gold_label(r: &impl StoredRow) -> Result<super::GoldLabel> {
    Ok(super::GoldLabel {
        sample_id: r.uuid("sample_id")?,
        labeler: r.text("labeler")?,
        payload: r.json("payload")?,
        answer: r.json("answer")?,
    })
}

/// A gold sample: `id, external_id, payload, answer, labels`.
pub(crate) fn gold_item(r: &impl StoredRow) -> Result<anvil_types::GoldItem> {
    Ok(anvil_types::GoldItem {
        sample_id: r.uuid("id")?,
        external_id: r.text("external_id")?,
        payload: r.json("payload")?,
        answer: r.json("answer")?,
        labels: r.bigint("labels")?,
    })
}

/// A queue's gold settings: `rate, min_accuracy, min_items, exempt` (a floor needs both of its columns).
pub(crate) fn gold_settings(r: &impl StoredRow) -> Result<anvil_types::GoldSettings> {
    let floor = match (r.opt_float("min_accuracy")?, r.opt_int("min_items")?) {
        (Some(min_accuracy), Some(after)) => Some(anvil_types::GoldFloor { min_accuracy, after }),
        _ => None,
    };
    Ok(anvil_types::GoldSettings { rate: r.float("rate")?, floor, exempt: typed(r, "exempt")? })
}

/// Samples with their labels and decisions from rows of one sample per label, in sample order: `id,
/// external_id, payload, label_id, labeler, label_payload` (null for a sample without labels), `decision`,
/// `decided_by` (null without one). Labels in `rejected` are left out.
pub(crate) fn sample_labels<R: StoredRow>(
    rows: &[R],
    rejected: &std::collections::HashSet<Uuid>,
) -> Result<Vec<crate::quality::final_label::SampleLabels>> {
    use crate::quality::final_label::{Decision, SampleLabels};
    let mut out: Vec<SampleLabels> = Vec::new();
    for r in rows {
        let id = r.uuid("id")?;
        if out.last().is_none_or(|s| s.sample_id != id) {
            let decision = match r.opt_json("decision")? {
                Some(answer) => Some(Decision { answer, decided_by: r.text("decided_by")? }),
                None => None,
            };
            out.push(SampleLabels {
                sample_id: id,
                external_id: r.text("external_id")?,
                payload: r.json("payload")?,
                labels: Vec::new(),
                decision,
            });
        }
        if let Some(label) = r.opt_text("label_id")? {
            let label_id = Uuid::parse_str(&label).map_err(|e| stored_error("label_id", e))?;
            if !rejected.contains(&label_id)
                && let Some(s) = out.last_mut()
            {
                s.labels.push(anvil_types::LabelBehind {
                    label_id,
                    labeler: r.text("labeler")?,
                    payload: r.json("label_payload")?,
                });
            }
        }
    }
    Ok(out)
}

/// A queue's final settings: `method, adjudicate`.
pub(crate) fn final_settings(r: &impl StoredRow) -> Result<anvil_types::FinalSettings> {
    let method = known(r, "method", |m| match m {
        "majority" => Some(anvil_types::FinalMethod::Majority),
        "unanimous" => Some(anvil_types::FinalMethod::Unanimous),
        "dawid_skene" => Some(anvil_types::FinalMethod::DawidSkene),
        _ => None,
    })?;
    Ok(anvil_types::FinalSettings { method, adjudicate: typed(r, "adjudicate")? })
}

/// A queue's statistics from its totals row (`completed, submitted, leased, expired`) and one row per labeler
/// (`labeler, submitted, leased, released`).
pub(crate) fn queue_stats<R: StoredRow>(q: &Queue, totals: &R, per_labeler: &[R]) -> Result<QueueStats> {
    let completed = totals.bigint("completed")?;
    Ok(QueueStats {
        queue_id: q.id,
        overlap: q.overlap,
        total_samples: q.sample_count,
        completed_samples: completed,
        remaining_samples: q.sample_count - completed,
        submitted: totals.bigint("submitted")?,
        leased: totals.bigint("leased")?,
        expired_unreclaimed: totals.bigint("expired")?,
        per_labeler: per_labeler
            .iter()
            .map(|r| {
                Ok(LabelerCount {
                    labeler: r.text("labeler")?,
                    submitted: r.bigint("submitted")?,
                    leased: r.bigint("leased")?,
                    released: r.bigint("released")?,
                })
            })
            .collect::<Result<_>>()?,
    })
}

/// Columns of [`export`].
pub(crate) const EXPORT_COLS: &str = "tenant_id, id, queue_id, format, filter, mode, state, snapshot_at, object_key, \
     manifest_key, rows, bytes, sha256, manifest, error, created_at, finished_at";

pub(crate) fn export(r: &impl StoredRow) -> Result<ExportRecord> {
    Ok(ExportRecord {
        tenant: tenant(r, "tenant_id")?,
        object_key: r.text("object_key")?,
        manifest_key: r.text("manifest_key")?,
        export: Export {
            id: r.uuid("id")?,
            queue_id: r.uuid("queue_id")?,
            format: known(r, "format", FileFormat::parse)?,
            filter: typed(r, "filter")?,
            mode: known(r, "mode", anvil_types::ExportMode::parse)?,
            state: known(r, "state", TaskState::parse)?,
            snapshot_at: r.time("snapshot_at")?,
            rows: r.opt_bigint("rows")?,
            bytes: r.opt_bigint("bytes")?,
            sha256: r.opt_text("sha256")?,
            manifest: r.opt_json("manifest")?,
            error: r.opt_text("error")?,
            created_at: r.time("created_at")?,
            finished_at: r.opt_time("finished_at")?,
            download_url: None,
            download_expires_at: None,
        },
    })
}

/// Columns of [`import`].
pub(crate) const IMPORT_COLS: &str = "tenant_id, id, queue_id, format, state, object_key, rows_created, \
     rows_existing, rows_failed, errors, error, created_at";

pub(crate) fn import(r: &impl StoredRow) -> Result<ImportRecord> {
    Ok(ImportRecord {
        tenant: tenant(r, "tenant_id")?,
        object_key: r.text("object_key")?,
        import: Import {
            id: r.uuid("id")?,
            queue_id: r.uuid("queue_id")?,
            format: known(r, "format", FileFormat::parse)?,
            state: known(r, "state", TaskState::parse)?,
            upload_url: None,
            upload_expires_at: None,
            rows_created: r.bigint("rows_created")?,
            rows_existing: r.bigint("rows_existing")?,
            rows_failed: r.bigint("rows_failed")?,
            errors: typed(r, "errors")?,
            error: r.opt_text("error")?,
            created_at: r.time("created_at")?,
        },
    })
}

/// A job row.
pub(crate) fn job(r: &impl StoredRow) -> Result<Job> {
    job_in(r, r.text("state")?)
}

/// A job row just reserved by a statement that does not return its state: `running`, by definition.
#[cfg(feature = "postgres")]
pub(crate) fn reserved_job(r: &impl StoredRow) -> Result<Job> {
    job_in(r, "running".into())
}

fn job_in(r: &impl StoredRow, state: String) -> Result<Job> {
    Ok(Job {
        id: r.uuid("id")?,
        tenant: r.text("tenant_id")?,
        kind: r.text("kind")?,
        payload: r.json("payload")?,
        attempts: r.int("attempts")?,
        max_attempts: r.int("max_attempts")?,
        state,
    })
}

/// Column reads that are sqlx's own decode of the column, for the kinds a store keeps natively.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
macro_rules! native_reads {
    ($($name:ident: $ty:ty),* $(,)?) => {
        $(fn $name(&self, col: &str) -> Result<$ty> {
            Ok(self.try_get(col)?)
        })*
    };
}

/// [`StoredRow::with_str`] over sqlx's borrowed `&str` decode.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
macro_rules! borrowed_str {
    () => {
        fn with_str<T>(&self, col: &str, f: impl FnOnce(&str) -> T) -> Result<T> {
            let s: &str = self.try_get(col)?;
            Ok(f(s))
        }
    };
}

#[cfg(feature = "postgres")]
mod pg {
    use serde_json::Value;
    use sqlx::Row;
    use sqlx::postgres::PgRow;
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::StoredRow;
    use crate::error::Result;

    /// Postgres stores each kind natively: the reads are sqlx's own decodes.
    impl StoredRow for PgRow {
        borrowed_str!();
        native_reads! {
            text: String, opt_text: Option<String>, int: i32, bigint: i64, opt_bigint: Option<i64>, uuid: Uuid,
            time: OffsetDateTime, opt_time: Option<OffsetDateTime>, json: Value, opt_json: Option<Value>,
            float: f64, opt_float: Option<f64>, flag: bool, opt_int: Option<i32>,
        }
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use serde_json::Value;
    use sqlx::Row;
    use sqlx::sqlite::SqliteRow;
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::{StoredRow, stored_error};
    use crate::error::Result;

    /// An instant stored as integer milliseconds since the Unix epoch.
    pub(crate) fn instant(col: &str, ms: i64) -> Result<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .map_err(|e| stored_error(col, format_args!("{ms} ms is not an instant: {e}")))
    }

    fn json_text(col: &str, s: &str) -> Result<Value> {
        serde_json::from_str(s).map_err(|e| stored_error(col, format_args!("is not JSON: {e}")))
    }

    /// SQLite: ids as TEXT, instants as integer milliseconds, JSON as TEXT.
    impl StoredRow for SqliteRow {
        borrowed_str!();
        native_reads! {
            text: String, opt_text: Option<String>, int: i32, bigint: i64, opt_bigint: Option<i64>, float: f64,
            opt_float: Option<f64>, flag: bool, opt_int: Option<i32>,
        }
        fn uuid(&self, col: &str) -> Result<Uuid> {
            self.with_str(col, |s| {
                Uuid::parse_str(s).map_err(|e| stored_error(col, format_args!("`{s}` is not a uuid: {e}")))
            })?
        }
        fn time(&self, col: &str) -> Result<OffsetDateTime> {
            instant(col, self.try_get(col)?)
        }
        fn opt_time(&self, col: &str) -> Result<Option<OffsetDateTime>> {
            self.try_get::<Option<i64>, _>(col)?.map(|ms| instant(col, ms)).transpose()
        }
        fn json(&self, col: &str) -> Result<Value> {
            json_text(col, &self.try_get::<String, _>(col)?)
        }
        fn opt_json(&self, col: &str) -> Result<Option<Value>> {
            self.try_get::<Option<String>, _>(col)?.map(|s| json_text(col, &s)).transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use super::*;

    /// A row of text values (what a store holds for a name column), for the parsing rules alone.
    struct Texts(HashMap<&'static str, &'static str>);

    impl StoredRow for Texts {
        fn with_str<T>(&self, col: &str, f: impl FnOnce(&str) -> T) -> Result<T> {
            self.0.get(col).map(|s| f(s)).ok_or_else(|| stored_error(col, "missing"))
        }
        fn text(&self, col: &str) -> Result<String> {
            self.0.get(col).map(|s| s.to_string()).ok_or_else(|| stored_error(col, "missing"))
        }
        fn opt_text(&self, col: &str) -> Result<Option<String>> {
            Ok(self.0.get(col).map(|s| s.to_string()))
        }
        fn int(&self, col: &str) -> Result<i32> {
            Err(stored_error(col, "not in this row"))
        }
        fn bigint(&self, col: &str) -> Result<i64> {
            Err(stored_error(col, "not in this row"))
        }
        fn opt_bigint(&self, _: &str) -> Result<Option<i64>> {
            Ok(None)
        }
        fn uuid(&self, col: &str) -> Result<Uuid> {
            Uuid::parse_str(&self.text(col)?).map_err(|e| stored_error(col, e))
        }
        fn time(&self, _: &str) -> Result<OffsetDateTime> {
            Ok(OffsetDateTime::UNIX_EPOCH)
        }
        fn opt_time(&self, _: &str) -> Result<Option<OffsetDateTime>> {
            Ok(None)
        }
        fn json(&self, col: &str) -> Result<Value> {
            serde_json::from_str(&self.text(col)?).map_err(|e| stored_error(col, e))
        }
        fn opt_json(&self, _: &str) -> Result<Option<Value>> {
            Ok(None)
        }
        fn float(&self, col: &str) -> Result<f64> {
            Err(stored_error(col, "not in this row"))
        }
        fn opt_float(&self, _: &str) -> Result<Option<f64>> {
            Ok(None)
        }
        fn flag(&self, col: &str) -> Result<bool> {
            Err(stored_error(col, "not in this row"))
        }
        fn opt_int(&self, _: &str) -> Result<Option<i32>> {
            Ok(None)
        }
    }

    fn review_row(verdict: &'static str) -> Texts {
        Texts(HashMap::from([
            ("id", "0190a0b0-0000-7000-8000-000000000001"),
            ("label_id", "0190a0b0-0000-7000-8000-000000000002"),
            ("reviewer", "ada"),
            ("verdict", verdict),
            ("comment", ""),
        ]))
    }

    #[test]
    fn a_known_stored_value_maps_to_its_variant() {
        assert_eq!(review(&review_row("accept")).unwrap().verdict, Verdict::Accept);
    }

    #[test]
    fn an_unknown_stored_value_is_an_error_naming_the_column_not_a_default() {
        let err = review(&review_row("maybe")).unwrap_err().to_string();
        assert!(err.contains("`verdict`") && err.contains("`maybe`"), "{err}");
    }

    #[test]
    fn an_unknown_role_in_a_token_row_is_an_error_not_a_labeler() {
        let row = Texts(HashMap::from([
            ("tenant_id", "acme"),
            ("id", "0190a0b0-0000-7000-8000-000000000003"),
            ("role", "superuser"),
            ("subject", "ada"),
        ]));
        let err = token_record(&row).unwrap_err().to_string();
        assert!(err.contains("`role`") && err.contains("`superuser`"), "{err}");
    }
}
