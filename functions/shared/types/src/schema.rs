//! Label schemas: the list of fields a labeler fills in for each sample.
//!
//! A schema version is immutable once created; changing a queue's schema creates version n+1 and labels keep
//! the version they were validated against.

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LabelSchema {
    /// Shown above the fields in the labeling app.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instructions: String,
    /// 1..=50 fields with distinct names.
    pub fields: Vec<SchemaField>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SchemaField {
    /// Key of this field in a label payload: `[a-z][a-z0-9_]{0,63}`.
    pub name: String,
    /// Display title (defaults to the name).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    /// Whether a label must contain this field (default true).
    #[serde(default = "yes")]
    pub required: bool,
    #[serde(flatten)]
    pub kind: FieldKind,
}

fn yes() -> bool {
    true
}

/// The kind of a field and its settings, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FieldKind {
    /// One of `options` (a string).
    SingleChoice { options: Vec<String> },
    /// A list of distinct `options`, with optional bounds on how many.
    MultiChoice {
        options: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_selected: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_selected: Option<u32>,
    },
    /// `true` or `false`.
    Boolean,
    /// A number within `[min, max]`, a multiple of `step` counted from `min` (or 0) when given.
    Number {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<f64>,
    },
    /// A string of at most `max_len` characters matching `pattern` (a full match) when given.
    Text {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_len: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern: Option<String>,
        #[serde(default)]
        multiline: bool,
    },
    /// An integer from 1 to `max` (default 5).
    Rating {
        #[serde(default = "five")]
        max: u32,
    },
    /// A calendar date `YYYY-MM-DD`.
    Date,
    /// Character ranges `[{start, end, label}]` over the string `sample.payload[source]`, counted in
    /// Unicode scalar values, `start < end`, each label one of `labels`.
    Span {
        source: String,
        labels: Vec<String>,
        #[serde(default)]
        allow_overlap: bool,
    },
}

fn five() -> u32 {
    5
}

impl FieldKind {
    pub fn name(&self) -> &'static str {
        match self {
            FieldKind::SingleChoice { .. } => "single_choice",
            FieldKind::MultiChoice { .. } => "multi_choice",
            FieldKind::Boolean => "boolean",
            FieldKind::Number { .. } => "number",
            FieldKind::Text { .. } => "text",
            FieldKind::Rating { .. } => "rating",
            FieldKind::Date => "date",
            FieldKind::Span { .. } => "span",
        }
    }
}

/// One span of a `span` field's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Span {
    pub start: u32,
    pub end: u32,
    pub label: String,
}
