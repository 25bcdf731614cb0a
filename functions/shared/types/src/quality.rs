//! `GET /v1/queues/{id}/quality`: how far the labels of a queue agree, per field and per labeler.
//!
//! Each field gets the measure that fits its kind (`measure`, with `value`), the other measures that apply
//! (`measures`), and a plain-language `reading`. A field kind with no agreement measure (free text) is listed
//! with `measure: null` and `why` — never left out, never an error.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct QualityReport {
    pub queue_id: Uuid,
    /// Labels per sample the queue asks for (k).
    pub overlap: i32,
    /// The schema version whose fields are measured (the queue's current one); labels of other versions
    /// count where a field of the same name and kind holds a value of that kind.
    pub schema_version: i32,
    /// Labels read.
    pub labels: u64,
    /// Samples with at least one label.
    pub samples: u64,
    /// Samples with at least two labels (the ones agreement is measured on).
    pub samples_multiply_labeled: u64,
    pub fields: Vec<FieldQuality>,
    pub labelers: Vec<LabelerQuality>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FieldQuality {
    pub name: String,
    /// The field's kind (`single_choice`, `rating`, ...).
    pub kind: String,
    /// The headline measure of this kind (e.g. `krippendorff_alpha_nominal`), or null when the kind has none.
    pub measure: Option<String>,
    /// Its value; null when it is undefined on these labels (`why` says why).
    pub value: Option<f64>,
    /// A plain-language reading of `value` (Krippendorff's: ≥ 0.8 reliable, ≥ 0.667 tentative).
    pub reading: String,
    /// Why `measure` or `value` is null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Every measure computed for the field, the headline one first.
    pub measures: Vec<Measure>,
    /// Cohen's κ of each pair of labelers sharing at least two samples (nominal fields).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pairs: Vec<PairAgreement>,
    /// Per option of a multi-choice field: Fleiss' κ and α on "selected or not".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<OptionAgreement>,
    /// Nominal fields: how often value `a` and value `b` were given to the same sample by two labelers
    /// (Krippendorff's coincidence matrix; symmetric, each sample weighs 1 over its labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Confusion>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Measure {
    /// `krippendorff_alpha_nominal`, `krippendorff_alpha_ordinal`, `krippendorff_alpha_interval`,
    /// `krippendorff_alpha_jaccard`, `krippendorff_alpha_masi`, `fleiss_kappa`, `mean_cohen_kappa`,
    /// `span_f1_exact`, `span_f1_overlap`, `token_alpha_nominal`, `percent_agreement`.
    pub name: String,
    pub value: Option<f64>,
    /// Samples the measure was computed on.
    pub samples: u64,
    /// Why the value is null, or what it was restricted to (e.g. Fleiss' κ: samples with exactly k labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PairAgreement {
    pub a: String,
    pub b: String,
    /// Samples both labeled with a value for the field.
    pub samples: u64,
    pub cohen_kappa: Option<f64>,
    pub percent_agreement: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct OptionAgreement {
    pub option: String,
    pub fleiss_kappa: Option<f64>,
    pub krippendorff_alpha: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Confusion {
    /// The values, in the order of the rows and columns of `counts`.
    pub values: Vec<String>,
    pub counts: Vec<Vec<f64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LabelerQuality {
    pub labeler: String,
    pub labels: u64,
    /// Over the nominal, ordinal and multi-choice fields: the share of (this labeler, other labeler, same
    /// sample, same field) pairs that gave the same value. Null when the labeler shares no sample.
    pub agreement_with_others: Option<f64>,
    /// The share of this labeler's values that equal the sample's majority value (a strict majority of the
    /// sample's labels, this labeler's included), over samples with at least two labels and a majority.
    pub agreement_with_majority: Option<f64>,
    /// Per field, the same two shares.
    pub fields: Vec<LabelerFieldQuality>,
    /// Accuracy on the queue's gold samples; null when the labeler has labeled none.
    pub gold: Option<GoldAccuracy>,
}

/// A labeler's answers on gold samples against their known answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct GoldAccuracy {
    /// Gold samples labeled.
    pub items: u64,
    /// (gold sample, field) pairs scored: the fields each gold answer names.
    pub scored: u64,
    /// Of those, the ones the labeler got right.
    pub correct: u64,
    /// correct / scored.
    pub accuracy: f64,
    /// The queue's floor applies and this labeler is under it: it gets no more claims from the queue.
    pub below_floor: bool,
    /// An admin exempted this labeler from the floor.
    pub exempt: bool,
    pub fields: Vec<GoldFieldAccuracy>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct GoldFieldAccuracy {
    pub field: String,
    pub scored: u64,
    pub correct: u64,
    pub accuracy: f64,
}

/// How a queue uses its gold samples (`GET`/`PUT /v1/queues/{id}/gold/settings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GoldSettings {
    /// The share of claims that are served a gold sample the labeler has not seen, at random among
    /// ordinary claims (0 = never, at most 0.5; 0.05 is one claim in twenty).
    pub rate: f64,
    /// An accuracy floor: a labeler under it stops getting claims from the queue.
    #[serde(default)]
    pub floor: Option<GoldFloor>,
    /// Labelers the floor does not apply to (an admin's override).
    #[serde(default)]
    pub exempt: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GoldFloor {
    /// Lowest accuracy (0..=1) over the gold fields scored.
    pub min_accuracy: f64,
    /// Gold samples a labeler must have labeled before the floor applies (>= 1).
    pub after: i32,
}

/// One gold sample: the sample as labelers see it and its known answer (per field; fields it leaves out are
/// not scored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewGold {
    pub external_id: String,
    pub payload: serde_json::Value,
    pub answer: serde_json::Value,
}

/// `POST /v1/queues/{id}/gold`: at most 1000 items. An external id that is already a gold sample of the
/// queue gets the new answer (its payload stays).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddGold {
    pub items: Vec<NewGold>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AddGoldResult {
    pub created: i64,
    pub updated: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct GoldItem {
    pub sample_id: Uuid,
    pub external_id: String,
    pub payload: serde_json::Value,
    pub answer: serde_json::Value,
    /// Labels given to it so far.
    pub labels: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct GoldList {
    pub items: Vec<GoldItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LabelerFieldQuality {
    pub field: String,
    pub agreement_with_others: Option<f64>,
    pub agreement_with_majority: Option<f64>,
}

/// How a queue decides the final answer of a sample (`GET`/`PUT /v1/queues/{id}/final/settings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FinalSettings {
    /// `majority` (default: the most frequent value per field; a tie goes to adjudication), `unanimous`
    /// (any difference goes to adjudication) or `dawid_skene` (nominal fields by Dawid–Skene over the
    /// queue's labelers, anchored by gold samples; other fields by majority).
    #[serde(default)]
    pub method: FinalMethod,
    /// Rules that send a sample to adjudication even when the method found an answer.
    #[serde(default)]
    pub adjudicate: Vec<AdjudicationRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FinalMethod {
    #[default]
    Majority,
    Unanimous,
    DawidSkene,
}

impl FinalMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            FinalMethod::Majority => "majority",
            FinalMethod::Unanimous => "unanimous",
            FinalMethod::DawidSkene => "dawid_skene",
        }
    }
}

/// A field's rule: `disagreement` (any two labels differ) or `agreement_below` (the share of label pairs
/// of the sample that agree on the field is under `threshold`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AdjudicationRule {
    pub field: String,
    pub when: AdjudicationWhen,
    /// For `agreement_below`: 0..=1.
    #[serde(default)]
    pub threshold: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AdjudicationWhen {
    Disagreement,
    AgreementBelow,
}

/// One label as an auditor compares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LabelBehind {
    pub label_id: Uuid,
    pub labeler: String,
    pub payload: serde_json::Value,
}

/// The final answer of one sample, or why it has none yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FinalLabel {
    pub sample_id: Uuid,
    pub external_id: String,
    /// `final` (an answer), `adjudication` (waiting for an auditor) or `incomplete` (fewer labels than the
    /// queue's overlap).
    pub status: String,
    /// The final answer (null unless `final`).
    pub answer: Option<serde_json::Value>,
    /// `unanimous`, `majority`, `dawid_skene` or `adjudicated`.
    pub method: Option<String>,
    /// Per field, the share of label pairs of the sample that agree (1 with a single label).
    pub agreement: std::collections::BTreeMap<String, f64>,
    /// Why the sample waits for adjudication (one line per field).
    pub reasons: Vec<String>,
    /// Who decided, for `adjudicated`.
    pub decided_by: Option<String>,
    pub labels: Vec<LabelBehind>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FinalList {
    pub items: Vec<FinalLabel>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// `POST /v1/queues/{id}/adjudications/{sample_id}`: pick one of the sample's labels, or write the
/// answer (validated against the queue's schema). Exactly one of the two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Decide {
    #[serde(default)]
    pub label_id: Option<Uuid>,
    #[serde(default)]
    pub answer: Option<serde_json::Value>,
}

/// `GET /v1/queues/{id}/final` query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[serde(deny_unknown_fields)]
pub struct FinalQuery {
    /// Only samples of this status: `final`, `adjudication` (the adjudication list) or `incomplete`.
    #[serde(default)]
    pub status: Option<String>,
    /// From a previous page's `next_cursor`.
    #[serde(default)]
    pub cursor: Option<String>,
    /// 1..=1000 (default 100).
    #[serde(default)]
    pub limit: Option<u32>,
}
