//! Agreement measures as pure functions over the values that labelers gave to units (samples, or tokens of a
//! sample). No SQL and no I/O: both stores feed the same code, and the tests compare it with the published
//! worked examples and, on random data, with the reference Python implementations (`krippendorff`,
//! `statsmodels`, `scikit-learn`).
//!
//! Krippendorff's α = 1 − D_o / D_e over the coincidence of values within units (Krippendorff 2011,
//! "Computing Krippendorff's Alpha-Reliability"): only units with two or more values are pairable; a missing
//! value is simply absent. Nominal, interval and ordinal α run in O(values) — ordinal through the identity
//! δ_ordinal(c, k) = (P_k − P_c)² where P_c = Σ_{g<c} n_g + n_c / 2 is the mid-rank of value c, so it is
//! interval α on mid-ranks. Other distances (ratio, sets) fill the expected disagreement over the distinct
//! values, O(V²), and are refused past [`MAX_DISTINCT_FOR_PAIRWISE`] distinct values.

use std::collections::HashMap;

/// Distinct values past which a distance that is not nominal, interval or ordinal is not computed.
pub const MAX_DISTINCT_FOR_PAIRWISE: usize = 3000;

/// Why a measure has no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undefined {
    /// Fewer than two pairable values (no unit holds two values).
    TooFewPairs,
    /// Every pairable value is the same: expected disagreement is 0 and agreement is undefined.
    NoVariation,
    /// More distinct values than [`MAX_DISTINCT_FOR_PAIRWISE`] for a pairwise distance.
    TooManyDistinct(usize),
}

impl Undefined {
    pub fn reason(&self) -> String {
        match self {
            Undefined::TooFewPairs => {
                "no sample has two or more labels with a value for this field yet".into()
            }
            Undefined::NoVariation => {
                "every label gives the same value: there is no variation to agree on (undefined)".into()
            }
            Undefined::TooManyDistinct(n) => {
                format!("{n} distinct values: more than {MAX_DISTINCT_FOR_PAIRWISE}, not computed")
            }
        }
    }
}

pub type Measured = Result<f64, Undefined>;

/// The level of measurement of a numeric α.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Nominal,
    Ordinal,
    Interval,
    Ratio,
}

/// Krippendorff's α over numeric values (`units[u]` = the values given to unit `u`).
pub fn alpha(units: &[Vec<f64>], level: Level) -> Measured {
    let pairable: Vec<&Vec<f64>> = units.iter().filter(|u| u.len() >= 2).collect();
    let n: usize = pairable.iter().map(|u| u.len()).sum();
    if n < 2 {
        return Err(Undefined::TooFewPairs);
    }
    // Distinct values and their counts over pairable units.
    let mut distinct: Vec<f64> = pairable.iter().flat_map(|u| u.iter().copied()).collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    let index =
        |x: f64| distinct.binary_search_by(|d| d.total_cmp(&x)).expect("value is among the distinct ones");
    let mut counts = vec![0f64; distinct.len()];
    let coded: Vec<Vec<usize>> = pairable
        .iter()
        .map(|u| {
            u.iter()
                .map(|&x| {
                    let i = index(x);
                    counts[i] += 1.0;
                    i
                })
                .collect()
        })
        .collect();
    if distinct.len() < 2 {
        return Err(Undefined::NoVariation);
    }
    match level {
        Level::Nominal => nominal_alpha(&coded),
        Level::Interval => squared_alpha(&coded, &counts, &distinct),
        Level::Ordinal => {
            let mut below = 0.0;
            let ranks: Vec<f64> = counts
                .iter()
                .map(|&c| {
                    let r = below + c / 2.0;
                    below += c;
                    r
                })
                .collect();
            squared_alpha(&coded, &counts, &ranks)
        }
        Level::Ratio => pairwise_alpha(&coded, &counts, |a, b| {
            let (x, y) = (distinct[a], distinct[b]);
            if x + y == 0.0 { 0.0 } else { ((x - y) / (x + y)).powi(2) }
        }),
    }
}

/// Nominal α over coded values (`units[u]` = the category indices given to unit u).
pub fn nominal_alpha(units: &[Vec<usize>]) -> Measured {
    let mut acc = NominalAlpha::default();
    for u in units {
        acc.add(u);
    }
    acc.alpha()
}

/// Nominal α accumulated unit by unit, for unit sets too large to hold (tokens of every sample).
#[derive(Debug, Clone, Default)]
pub struct NominalAlpha {
    counts: Vec<f64>,
    observed: f64,
    units: u64,
    scratch: HashMap<usize, f64>,
}

impl NominalAlpha {
    /// Adds one unit's values (category indices); a unit with fewer than two values is not pairable.
    pub fn add(&mut self, values: &[usize]) {
        if values.len() < 2 {
            return;
        }
        self.units += 1;
        self.scratch.clear();
        for &c in values {
            *self.scratch.entry(c).or_default() += 1.0;
            if self.counts.len() <= c {
                self.counts.resize(c + 1, 0.0);
            }
            self.counts[c] += 1.0;
        }
        let m = values.len() as f64;
        let same: f64 = self.scratch.values().map(|c| c * c).sum();
        self.observed += (m * m - same) / (m - 1.0);
    }

    /// Pairable units added.
    pub fn units(&self) -> u64 {
        self.units
    }

    pub fn alpha(&self) -> Measured {
        let n: f64 = self.counts.iter().sum();
        if n < 2.0 {
            return Err(Undefined::TooFewPairs);
        }
        let expected = n * n - self.counts.iter().map(|c| c * c).sum::<f64>();
        if expected <= 0.0 {
            return Err(Undefined::NoVariation);
        }
        Ok(1.0 - (n - 1.0) * self.observed / expected)
    }
}

/// α with δ(c, k) = (x_c − x_k)² for value positions `x` (interval: the values; ordinal: their mid-ranks).
fn squared_alpha(units: &[Vec<usize>], counts: &[f64], x: &[f64]) -> Measured {
    let n: f64 = counts.iter().sum();
    // Centre the positions: the sums of squares below then lose no precision to a large mean.
    let mean = counts.iter().zip(x).map(|(c, v)| c * v).sum::<f64>() / n;
    let pos = |c: usize| x[c] - mean;
    let mut observed = 0.0;
    for u in units.iter().filter(|u| u.len() >= 2) {
        // Σ_{i≠j} (x_i − x_j)² = 2 m Σ x² − 2 (Σ x)²
        let m = u.len() as f64;
        let (s, s2) = u.iter().fold((0.0, 0.0), |(s, s2), &c| (s + pos(c), s2 + pos(c) * pos(c)));
        observed += (2.0 * m * s2 - 2.0 * s * s) / (m - 1.0);
    }
    let (s, s2) = counts
        .iter()
        .enumerate()
        .fold((0.0, 0.0), |(s, s2), (c, &k)| (s + k * pos(c), s2 + k * pos(c) * pos(c)));
    let expected = 2.0 * n * s2 - 2.0 * s * s;
    if expected <= 0.0 {
        return Err(Undefined::NoVariation);
    }
    Ok(1.0 - (n - 1.0) * observed / expected)
}

/// α with any distance `delta` between value indices; O(V²) in the distinct values.
pub fn pairwise_alpha(units: &[Vec<usize>], counts: &[f64], delta: impl Fn(usize, usize) -> f64) -> Measured {
    let n: f64 = counts.iter().sum();
    if n < 2.0 {
        return Err(Undefined::TooFewPairs);
    }
    let present: Vec<usize> = (0..counts.len()).filter(|&c| counts[c] > 0.0).collect();
    if present.len() > MAX_DISTINCT_FOR_PAIRWISE {
        return Err(Undefined::TooManyDistinct(present.len()));
    }
    let mut observed = 0.0;
    for u in units.iter().filter(|u| u.len() >= 2) {
        let m = u.len() as f64;
        let mut sum = 0.0;
        for (i, &a) in u.iter().enumerate() {
            for &b in &u[i + 1..] {
                sum += 2.0 * delta(a, b);
            }
        }
        observed += sum / (m - 1.0);
    }
    let mut expected = 0.0;
    for (i, &a) in present.iter().enumerate() {
        for &b in &present[i + 1..] {
            expected += 2.0 * counts[a] * counts[b] * delta(a, b);
        }
    }
    if expected <= 0.0 {
        return Err(Undefined::NoVariation);
    }
    Ok(1.0 - (n - 1.0) * observed / expected)
}

/// Jaccard distance between two sorted sets: 1 − |A ∩ B| / |A ∪ B| (two empty sets: 0).
pub fn jaccard_distance(a: &[u32], b: &[u32]) -> f64 {
    let inter = intersection(a, b);
    let union = a.len() + b.len() - inter;
    if union == 0 { 0.0 } else { 1.0 - inter as f64 / union as f64 }
}

/// MASI distance (Passonneau 2006): 1 − J · M, M = 1 when equal, 2/3 when one contains the other, 1/3 when
/// they only overlap, 0 when disjoint.
pub fn masi_distance(a: &[u32], b: &[u32]) -> f64 {
    let inter = intersection(a, b);
    let union = a.len() + b.len() - inter;
    if union == 0 {
        return 0.0;
    }
    let j = inter as f64 / union as f64;
    let m = if a.len() == b.len() && inter == a.len() {
        1.0
    } else if inter == a.len().min(b.len()) {
        2.0 / 3.0
    } else if inter > 0 {
        1.0 / 3.0
    } else {
        0.0
    };
    1.0 - j * m
}

fn intersection(a: &[u32], b: &[u32]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// Cohen's κ of two labelers over the units both labeled: `pairs` = (a's category, b's category).
pub fn cohen_kappa(pairs: &[(usize, usize)]) -> Measured {
    if pairs.len() < 2 {
        return Err(Undefined::TooFewPairs);
    }
    let k = pairs.iter().map(|&(a, b)| a.max(b)).max().unwrap_or(0) + 1;
    let (mut ra, mut rb) = (vec![0f64; k], vec![0f64; k]);
    let mut agree = 0.0;
    for &(a, b) in pairs {
        ra[a] += 1.0;
        rb[b] += 1.0;
        if a == b {
            agree += 1.0;
        }
    }
    let n = pairs.len() as f64;
    let po = agree / n;
    let pe: f64 = ra.iter().zip(&rb).map(|(x, y)| x * y).sum::<f64>() / (n * n);
    if pe >= 1.0 {
        return Err(Undefined::NoVariation);
    }
    Ok((po - pe) / (1.0 - pe))
}

/// Fleiss' κ over a table `counts[unit][category]` in which every unit has the same number of ratings.
pub fn fleiss_kappa(table: &[Vec<f64>]) -> Measured {
    let Some(first) = table.first() else { return Err(Undefined::TooFewPairs) };
    let r: f64 = first.iter().sum();
    if r < 2.0 {
        return Err(Undefined::TooFewPairs);
    }
    let units = table.len() as f64;
    let k = first.len();
    let mut p_bar = 0.0;
    let mut col = vec![0f64; k];
    for row in table {
        debug_assert!(
            (row.iter().sum::<f64>() - r).abs() < 1e-9,
            "Fleiss' κ needs the same ratings per unit"
        );
        p_bar += (row.iter().map(|x| x * x).sum::<f64>() - r) / (r * (r - 1.0));
        for (c, x) in row.iter().enumerate() {
            col[c] += x;
        }
    }
    p_bar /= units;
    let pe: f64 = col.iter().map(|c| (c / (units * r)).powi(2)).sum();
    if pe >= 1.0 {
        return Err(Undefined::NoVariation);
    }
    Ok((p_bar - pe) / (1.0 - pe))
}

/// One character range with its label, counted in Unicode scalar values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanValue {
    pub start: u32,
    pub end: u32,
    pub label: u32,
}

/// Sums behind the span-level F1 of pairs of labelers on the same text.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SpanPairSums {
    /// Spans of both sides.
    pub spans: f64,
    /// Spans that have an identical span (same start, end, label) on the other side, both sides counted.
    pub exact: f64,
    /// Spans that overlap a span of the same label on the other side, both sides counted.
    pub overlap: f64,
}

impl SpanPairSums {
    /// Adds one pair of labelers' spans on one text.
    pub fn add(&mut self, a: &[SpanValue], b: &[SpanValue]) {
        self.spans += (a.len() + b.len()) as f64;
        let matched = |x: &SpanValue, other: &[SpanValue], exact: bool| {
            other.iter().any(|y| {
                y.label == x.label
                    && if exact {
                        y.start == x.start && y.end == x.end
                    } else {
                        y.start < x.end && x.start < y.end
                    }
            })
        };
        for (side, other) in [(a, b), (b, a)] {
            for x in side {
                if matched(x, other, true) {
                    self.exact += 1.0;
                }
                if matched(x, other, false) {
                    self.overlap += 1.0;
                }
            }
        }
    }

    /// Micro-averaged F1 over all pairs: matched spans of both sides over all spans of both sides (for exact
    /// match this is 2·TP / (|A| + |B|)); undefined when no pair holds a span.
    pub fn f1(&self, exact: bool) -> Measured {
        if self.spans == 0.0 {
            return Err(Undefined::TooFewPairs);
        }
        Ok(if exact { self.exact } else { self.overlap } / self.spans)
    }
}

/// The tokens of a text: maximal runs of non-whitespace characters, as [start, end) in Unicode scalars.
pub fn tokens(text: &str) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut start: Option<u32> = None;
    let mut i = 0u32;
    for ch in text.chars() {
        match (ch.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(s) = start {
        out.push((s, i));
    }
    out
}

/// The category of each token under one labeler's spans: the label of the first span (by start) that
/// overlaps the token, else `outside`.
pub fn token_categories(tokens: &[(u32, u32)], spans: &[SpanValue], outside: usize) -> Vec<usize> {
    let mut sorted: Vec<&SpanValue> = spans.iter().collect();
    sorted.sort_by_key(|s| (s.start, s.end));
    tokens
        .iter()
        .map(|&(s, e)| sorted.iter().find(|x| x.start < e && s < x.end).map_or(outside, |x| x.label as usize))
        .collect()
}

/// Plain-language reading of an α or κ value (Krippendorff: ≥ 0.800 reliable, ≥ 0.667 tentative).
pub fn reading(value: Option<f64>) -> String {
    match value {
        None => "not measurable yet".into(),
        Some(v) if v >= 0.8 => "reliable: labelers agree well beyond chance".into(),
        Some(v) if v >= 0.667 => "tentative: usable for tentative conclusions only".into(),
        Some(v) if v > 0.2 => "weak: labelers often disagree; review the instructions or the options".into(),
        Some(v) if v > 0.0 => "slight: barely better than chance".into(),
        Some(_) => "none: no better than chance (or systematic disagreement)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAN: f64 = f64::NAN;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} vs {b}");
    }

    /// Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers, 12 units,
    /// missing data. Published: nominal .743, ordinal .815, interval .849, ratio .797.
    fn krippendorff_example() -> Vec<Vec<f64>> {
        let coders = [
            [1., 2., 3., 3., 2., 1., 4., 1., 2., NAN, NAN, NAN],
            [1., 2., 3., 3., 2., 2., 4., 1., 2., 5., NAN, 3.],
            [NAN, 3., 3., 3., 2., 3., 4., 2., 2., 5., 1., NAN],
            [1., 2., 3., 3., 2., 4., 4., 1., 2., 5., 1., NAN],
        ];
        (0..12).map(|u| coders.iter().map(|c| c[u]).filter(|v| !v.is_nan()).collect()).collect()
    }

    #[test]
    fn krippendorffs_worked_example_with_missing_data() {
        let units = krippendorff_example();
        close(alpha(&units, Level::Nominal).unwrap(), 0.743, 5e-4);
        close(alpha(&units, Level::Ordinal).unwrap(), 0.815, 5e-4);
        close(alpha(&units, Level::Interval).unwrap(), 0.849, 5e-4);
        close(alpha(&units, Level::Ratio).unwrap(), 0.797, 5e-4);
        // The exact nominal value: 1 − 11 · (4/3) / (11·11 − 27) · … as the paper computes it, 0.743421…
        close(alpha(&units, Level::Nominal).unwrap(), 0.743_421_052_631_579, 1e-12);
    }

    /// Fleiss (1971): 30 patients, 6 psychiatrists each, 5 diagnoses (the per-patient counts of the paper's
    /// data). Published κ = 0.430.
    #[test]
    fn fleiss_1971_table() {
        let table: Vec<Vec<f64>> = [
            [0, 0, 0, 6, 0],
            [0, 3, 0, 0, 3],
            [0, 1, 4, 0, 1],
            [0, 0, 0, 0, 6],
            [0, 3, 0, 3, 0],
            [2, 0, 4, 0, 0],
            [0, 0, 4, 0, 2],
            [2, 0, 3, 1, 0],
            [2, 0, 0, 4, 0],
            [0, 0, 0, 0, 6],
            [1, 0, 0, 5, 0],
            [1, 1, 0, 4, 0],
            [0, 3, 3, 0, 0],
            [1, 0, 0, 5, 0],
            [0, 2, 0, 3, 1],
            [0, 0, 5, 0, 1],
            [3, 0, 0, 1, 2],
            [5, 1, 0, 0, 0],
            [0, 2, 0, 4, 0],
            [1, 0, 2, 0, 3],
            [0, 0, 0, 0, 6],
            [0, 1, 0, 5, 0],
            [0, 2, 0, 1, 3],
            [2, 0, 0, 4, 0],
            [1, 0, 0, 4, 1],
            [0, 5, 0, 1, 0],
            [4, 0, 0, 0, 2],
            [0, 2, 0, 4, 0],
            [1, 0, 5, 0, 0],
            [0, 0, 0, 0, 6],
        ]
        .iter()
        .map(|r| r.iter().map(|&x| x as f64).collect())
        .collect();
        close(fleiss_kappa(&table).unwrap(), 0.430, 5e-4);
    }

    /// The textbook 2×2 example (e.g. Wikipedia's "Cohen's kappa"): 50 proposals, both yes 20, A yes B no 5,
    /// A no B yes 10, both no 15: p_o = 0.7, p_e = 0.5, κ = 0.4.
    #[test]
    fn cohens_textbook_example() {
        let mut pairs = vec![(0, 0); 20];
        pairs.extend(vec![(0, 1); 5]);
        pairs.extend(vec![(1, 0); 10]);
        pairs.extend(vec![(1, 1); 15]);
        close(cohen_kappa(&pairs).unwrap(), 0.4, 1e-12);
    }

    #[test]
    fn undefined_measures_say_why() {
        assert_eq!(alpha(&[vec![1.0]], Level::Nominal), Err(Undefined::TooFewPairs));
        assert_eq!(alpha(&[vec![2.0, 2.0], vec![2.0, 2.0]], Level::Interval), Err(Undefined::NoVariation));
        assert_eq!(cohen_kappa(&[(1, 1), (1, 1)]), Err(Undefined::NoVariation));
        assert_eq!(fleiss_kappa(&[]), Err(Undefined::TooFewPairs));
    }

    #[test]
    fn perfect_agreement_is_one() {
        let units = vec![vec![1.0, 1.0, 1.0], vec![2.0, 2.0], vec![3.0, 3.0]];
        for level in [Level::Nominal, Level::Ordinal, Level::Interval, Level::Ratio] {
            close(alpha(&units, level).unwrap(), 1.0, 1e-12);
        }
    }

    #[test]
    fn set_distances() {
        close(jaccard_distance(&[1, 2], &[2, 3]), 1.0 - 1.0 / 3.0, 1e-12);
        close(jaccard_distance(&[], &[]), 0.0, 0.0);
        close(masi_distance(&[1, 2], &[1, 2]), 0.0, 0.0);
        close(masi_distance(&[1], &[1, 2]), 1.0 - 0.5 * 2.0 / 3.0, 1e-12);
        close(masi_distance(&[1, 2], &[2, 3]), 1.0 - (1.0 / 3.0) * (1.0 / 3.0), 1e-12);
        close(masi_distance(&[1], &[2]), 1.0, 0.0);
    }

    #[test]
    fn span_f1_counts_exact_and_overlapping_matches() {
        let s = |start, end, label| SpanValue { start, end, label };
        let mut sums = SpanPairSums::default();
        sums.add(&[s(0, 5, 0), s(10, 12, 1)], &[s(0, 5, 0), s(11, 14, 1), s(20, 22, 0)]);
        // exact: one match on each side of 5 spans; overlap: (0,5) both sides, (10,12)~(11,14) both sides.
        close(sums.f1(true).unwrap(), 2.0 / 5.0, 1e-12);
        close(sums.f1(false).unwrap(), 4.0 / 5.0, 1e-12);
    }

    #[test]
    fn tokens_and_their_categories() {
        let t = tokens("Ada  Lovelace wrote\tnotes");
        assert_eq!(t, vec![(0, 3), (5, 13), (14, 19), (20, 25)]);
        let spans = [SpanValue { start: 0, end: 13, label: 0 }];
        assert_eq!(token_categories(&t, &spans, 9), vec![0, 0, 9, 9]);
    }
}
