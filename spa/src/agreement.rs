//! How the quality page shows agreement numbers, free of UI (unit-tested natively): measure names in words,
//! values to three decimals, shares as percentages, the heat-map buckets of a coincidence matrix, and the
//! order of the labeler table (its gold columns too).

use std::cmp::Ordering;

use anvil_types::LabelerQuality;

use crate::gold::{gold_accuracy, gold_items};

/// Shown where a value is null (undefined on these labels, or not measured).
pub const NONE: &str = "—";

/// Heat-map buckets: `heat-0` (nothing) … `heat-{HEAT_BUCKETS}` (the largest count); classes in style.css.
pub const HEAT_BUCKETS: u8 = 5;

/// A measure's name in words, e.g. `krippendorff_alpha_nominal` → "Krippendorff's α (nominal)". A name this
/// build does not know yet is shown with spaces for its underscores.
pub fn measure_name(name: &str) -> String {
    let known = match name {
        "krippendorff_alpha_nominal" => "Krippendorff's α (nominal)",
        "krippendorff_alpha_ordinal" => "Krippendorff's α (ordinal)",
        "krippendorff_alpha_interval" => "Krippendorff's α (interval)",
        "krippendorff_alpha_ratio" => "Krippendorff's α (ratio)",
        "krippendorff_alpha_jaccard" => "Krippendorff's α (Jaccard distance)",
        "krippendorff_alpha_masi" => "Krippendorff's α (MASI distance)",
        "fleiss_kappa" => "Fleiss' κ",
        "cohen_kappa" => "Cohen's κ",
        "mean_cohen_kappa" => "mean Cohen's κ",
        "span_f1_exact" => "span F1 (exact)",
        "span_f1_overlap" => "span F1 (overlap)",
        "token_alpha_nominal" => "token-level α (nominal)",
        "percent_agreement" => "percent agreement",
        other => return other.replace('_', " "),
    };
    known.to_string()
}

/// A field kind in words: `single_choice` → "single choice".
pub fn kind_name(kind: &str) -> String {
    kind.replace('_', " ")
}

/// A coefficient to three decimals (`0.667`), or [`NONE`]. Never "-0.000".
pub fn value3(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => {
            let s = format!("{x:.3}");
            if s == "-0.000" { "0.000".into() } else { s }
        }
        _ => NONE.into(),
    }
}

/// A share (0…1) as a percentage with at most one decimal (`83.3%`, `100%`), or [`NONE`].
pub fn percent(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => {
            let tenths = (x * 1000.0).round() / 10.0;
            let s = format!("{tenths:.1}");
            let s = s.strip_suffix(".0").unwrap_or(&s);
            let s = if s == "-0" { "0" } else { s };
            format!("{s}%")
        }
        _ => NONE.into(),
    }
}

/// A count of the coincidence matrix: whole numbers as they are, fractions (a sample with more than two
/// labels weighs 1/(m − 1) per pair) to at most two decimals.
pub fn count(c: f64) -> String {
    if !c.is_finite() {
        return NONE.into();
    }
    if (c - c.round()).abs() < 1e-9 {
        return format!("{}", c.round() as i64);
    }
    let s = format!("{c:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The largest count of a matrix (0 when it is empty).
pub fn matrix_max(counts: &[Vec<f64>]) -> f64 {
    counts.iter().flatten().copied().filter(|c| c.is_finite()).fold(0.0, f64::max)
}

/// The heat bucket of a count: 0 for nothing, else 1…[`HEAT_BUCKETS`] by its share of the largest count
/// (the largest is always the top bucket, any count above zero at least bucket 1).
pub fn heat_bucket(count: f64, max: f64) -> u8 {
    if count.is_nan() || max.is_nan() || count <= 0.0 || max <= 0.0 {
        return 0;
    }
    let share = (count / max).min(1.0);
    ((share * f64::from(HEAT_BUCKETS)).ceil() as u8).clamp(1, HEAT_BUCKETS)
}

/// The CSS class of a heat bucket (`heat-0` … `heat-5`).
pub fn heat_class(count: f64, max: f64) -> String {
    format!("heat-{}", heat_bucket(count, max))
}

/// A column of the labeler table to sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelerColumn {
    Labeler,
    Labels,
    Others,
    Majority,
    GoldItems,
    GoldAccuracy,
}

impl LabelerColumn {
    pub const ALL: [LabelerColumn; 6] = [
        LabelerColumn::Labeler,
        LabelerColumn::Labels,
        LabelerColumn::Others,
        LabelerColumn::Majority,
        LabelerColumn::GoldItems,
        LabelerColumn::GoldAccuracy,
    ];

    pub fn title(self) -> &'static str {
        match self {
            LabelerColumn::Labeler => "Labeler",
            LabelerColumn::Labels => "Labels",
            LabelerColumn::Others => "Agreement with others",
            LabelerColumn::Majority => "Agreement with majority",
            LabelerColumn::GoldItems => "Gold items",
            LabelerColumn::GoldAccuracy => "Gold accuracy",
        }
    }

    /// The direction a first click sorts in: names A→Z, numbers highest first.
    pub fn first_descending(self) -> bool {
        self != LabelerColumn::Labeler
    }
}

/// How the labeler table is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelerSort {
    pub column: LabelerColumn,
    pub descending: bool,
}

impl Default for LabelerSort {
    fn default() -> Self {
        LabelerSort { column: LabelerColumn::Labeler, descending: false }
    }
}

impl LabelerSort {
    /// After a click on `column`'s header: the same column flips, another starts in its first direction.
    pub fn toggled(self, column: LabelerColumn) -> Self {
        if self.column == column {
            LabelerSort { column, descending: !self.descending }
        } else {
            LabelerSort { column, descending: column.first_descending() }
        }
    }

    /// `aria-sort` of a column's header.
    pub fn aria(self, column: LabelerColumn) -> &'static str {
        match (self.column == column, self.descending) {
            (false, _) => "none",
            (true, false) => "ascending",
            (true, true) => "descending",
        }
    }
}

/// Compares optional shares so that a missing one comes last whichever the direction.
fn by_share(a: Option<f64>, b: Option<f64>, descending: bool) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => {
            let o = x.partial_cmp(&y).unwrap_or(Ordering::Equal);
            if descending { o.reverse() } else { o }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Sorts the labeler rows; ties (and nulls) keep the order of their names.
pub fn sort_labelers(rows: &mut [LabelerQuality], sort: LabelerSort) {
    let d = sort.descending;
    let flip = |o: Ordering| if d { o.reverse() } else { o };
    rows.sort_by(|a, b| {
        let primary = match sort.column {
            LabelerColumn::Labeler => flip(a.labeler.cmp(&b.labeler)),
            LabelerColumn::Labels => flip(a.labels.cmp(&b.labels)),
            LabelerColumn::Others => by_share(a.agreement_with_others, b.agreement_with_others, d),
            LabelerColumn::Majority => by_share(a.agreement_with_majority, b.agreement_with_majority, d),
            LabelerColumn::GoldItems => flip(gold_items(a).cmp(&gold_items(b))),
            LabelerColumn::GoldAccuracy => by_share(gold_accuracy(a), gold_accuracy(b), d),
        };
        primary.then_with(|| a.labeler.cmp(&b.labeler))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measure_names_in_words() {
        assert_eq!(measure_name("krippendorff_alpha_nominal"), "Krippendorff's α (nominal)");
        assert_eq!(measure_name("krippendorff_alpha_ordinal"), "Krippendorff's α (ordinal)");
        assert_eq!(measure_name("fleiss_kappa"), "Fleiss' κ");
        assert_eq!(measure_name("mean_cohen_kappa"), "mean Cohen's κ");
        assert_eq!(measure_name("percent_agreement"), "percent agreement");
        assert_eq!(measure_name("span_f1_overlap"), "span F1 (overlap)");
        assert_eq!(measure_name("krippendorff_alpha_masi"), "Krippendorff's α (MASI distance)");
        assert_eq!(measure_name("some_new_measure"), "some new measure", "unknown names stay readable");
        assert_eq!(kind_name("single_choice"), "single choice");
    }

    #[test]
    fn values_to_three_decimals() {
        assert_eq!(value3(Some(0.6666666)), "0.667");
        assert_eq!(value3(Some(1.0)), "1.000");
        assert_eq!(value3(Some(-0.25)), "-0.250");
        assert_eq!(value3(Some(-0.0001)), "0.000");
        assert_eq!(value3(None), NONE);
        assert_eq!(value3(Some(f64::NAN)), NONE);
    }

    #[test]
    fn shares_as_percentages() {
        assert_eq!(percent(Some(5.0 / 6.0)), "83.3%");
        assert_eq!(percent(Some(1.0)), "100%");
        assert_eq!(percent(Some(0.0)), "0%");
        assert_eq!(percent(Some(0.5)), "50%");
        assert_eq!(percent(Some(2.0 / 3.0)), "66.7%");
        assert_eq!(percent(None), NONE);
    }

    #[test]
    fn counts_whole_or_to_two_decimals() {
        assert_eq!(count(4.0), "4");
        assert_eq!(count(0.0), "0");
        assert_eq!(count(1.5), "1.5");
        assert_eq!(count(1.0 / 3.0), "0.33");
        assert_eq!(count(2.0000000001), "2");
    }

    #[test]
    fn heat_buckets_by_share_of_the_largest() {
        assert_eq!(heat_bucket(0.0, 10.0), 0);
        assert_eq!(heat_bucket(10.0, 10.0), 5);
        assert_eq!(heat_bucket(0.1, 10.0), 1, "anything above zero shows");
        assert_eq!(heat_bucket(2.0, 10.0), 1);
        assert_eq!(heat_bucket(2.1, 10.0), 2);
        assert_eq!(heat_bucket(5.0, 10.0), 3);
        assert_eq!(heat_bucket(8.0, 10.0), 4);
        assert_eq!(heat_bucket(9.0, 10.0), 5);
        assert_eq!(heat_bucket(3.0, 0.0), 0, "an empty matrix");
        assert_eq!(heat_bucket(f64::NAN, 1.0), 0);
        assert_eq!(heat_class(4.0, 4.0), "heat-5");
        assert_eq!(matrix_max(&[vec![1.0, 6.0], vec![6.0, 2.0]]), 6.0);
        assert_eq!(matrix_max(&[]), 0.0);
    }

    /// A row as the server sends it (read from JSON, so fields added to the type later default).
    fn row(name: &str, labels: u64, others: Option<f64>, majority: Option<f64>) -> LabelerQuality {
        serde_json::from_value(serde_json::json!({
            "labeler": name,
            "labels": labels,
            "agreement_with_others": others,
            "agreement_with_majority": majority,
            "fields": [],
        }))
        .expect("a labeler row")
    }

    fn names(rows: &[LabelerQuality]) -> Vec<&str> {
        rows.iter().map(|r| r.labeler.as_str()).collect()
    }

    #[test]
    fn labelers_sort_by_any_column_with_nulls_last() {
        let mut rows = vec![
            row("carol", 3, None, None),
            row("alice", 10, Some(0.5), Some(0.9)),
            row("bob", 10, Some(0.8), Some(0.7)),
        ];
        sort_labelers(&mut rows, LabelerSort::default());
        assert_eq!(names(&rows), ["alice", "bob", "carol"]);
        let by_others = LabelerSort::default().toggled(LabelerColumn::Others);
        assert!(by_others.descending, "numbers start highest first");
        sort_labelers(&mut rows, by_others);
        assert_eq!(names(&rows), ["bob", "alice", "carol"]);
        sort_labelers(&mut rows, by_others.toggled(LabelerColumn::Others));
        assert_eq!(names(&rows), ["alice", "bob", "carol"], "ascending, the null still last");
        sort_labelers(&mut rows, LabelerSort { column: LabelerColumn::Labels, descending: true });
        assert_eq!(names(&rows), ["alice", "bob", "carol"], "ties by name");
        sort_labelers(&mut rows, LabelerSort { column: LabelerColumn::Majority, descending: true });
        assert_eq!(names(&rows), ["alice", "bob", "carol"]);
        let by_name = LabelerSort::default().toggled(LabelerColumn::Labeler);
        sort_labelers(&mut rows, by_name);
        assert_eq!(names(&rows), ["carol", "bob", "alice"]);
        assert_eq!(by_name.aria(LabelerColumn::Labeler), "descending");
        assert_eq!(by_name.aria(LabelerColumn::Labels), "none");
    }

    #[test]
    fn labelers_sort_by_gold_with_no_gold_last() {
        let gold = |items: u64, scored: u64, correct: u64| {
            serde_json::json!({"items": items, "scored": scored, "correct": correct,
                "accuracy": if scored > 0 { correct as f64 / scored as f64 } else { 0.0 },
                "below_floor": false, "exempt": false, "fields": []})
        };
        let with = |name: &str, g: serde_json::Value| {
            let mut r = row(name, 1, None, None);
            r.gold = serde_json::from_value(g).expect("gold");
            r
        };
        let mut rows = vec![
            with("dan", serde_json::Value::Null),
            with("bob", gold(2, 2, 0)),
            with("alice", gold(4, 4, 3)),
            with("carol", gold(1, 0, 0)),
        ];
        let by_accuracy = LabelerSort::default().toggled(LabelerColumn::GoldAccuracy);
        sort_labelers(&mut rows, by_accuracy);
        assert_eq!(names(&rows), ["alice", "bob", "carol", "dan"], "unscored and no gold last");
        sort_labelers(&mut rows, by_accuracy.toggled(LabelerColumn::GoldAccuracy));
        assert_eq!(names(&rows), ["bob", "alice", "carol", "dan"]);
        sort_labelers(&mut rows, LabelerSort::default().toggled(LabelerColumn::GoldItems));
        assert_eq!(names(&rows), ["alice", "bob", "carol", "dan"]);
        assert_eq!(LabelerColumn::GoldAccuracy.title(), "Gold accuracy");
    }
}
