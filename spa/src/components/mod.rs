//! Reusable pieces: the labeling form's fields, the span surface, dialogs, and small displays.

pub mod exports;
pub mod fields;
pub mod gold;
pub mod header;
pub mod imports;
pub mod label_view;
pub mod notice;
pub mod ops;
pub mod shortcuts;
pub mod sign_in_form;
pub mod sign_in_options;
pub mod span_text;
pub mod stats;
