//! Quality control: how far the labels of a queue agree, per field and per labeler.
//!
//! The stores only hand over the labels of a queue ([`QualityRow`], page by page); everything here is pure
//! and shared by both. [`Collector`] keeps, per field of the queue's current schema, the value each labeler
//! gave each sample in a compact form (categories and option sets as small integers), and
//! [`Collector::report`] computes the measures of [`measures`] on them.
//!
//! Measures by field kind (the first one is the headline `measure`):
//! - single choice, boolean: Krippendorff's α nominal, Fleiss' κ (samples with exactly k labels), the mean
//!   of Cohen's κ over labeler pairs, percent agreement; Cohen's κ per pair; the coincidence matrix;
//! - rating: α ordinal, α interval, α nominal, percent agreement;
//! - number, date (as a day number): α interval;
//! - multi choice: α with the Jaccard distance (1 − |A∩B|/|A∪B|), α with MASI, percent agreement (same set);
//!   per option, Fleiss' κ and α nominal on "selected or not";
//! - span: span-level F1 over labeler pairs (exact and overlap match, micro-averaged), token-level α nominal
//!   (whitespace tokens of the source text; each takes the label of the first span overlapping it, or
//!   "outside");
//! - text: none (`measure: null`, with why).

pub mod dawid_skene;
pub mod final_label;
pub mod gold;
pub mod measures;

use std::collections::HashMap;

use anvil_types::{
    Confusion, FieldKind, FieldQuality, GoldSettings, LabelSchema, LabelerFieldQuality, LabelerQuality,
    Measure, OptionAgreement, PairAgreement, QualityReport,
};
use serde_json::Value;
use uuid::Uuid;

use measures::{Level, Measured, NominalAlpha, SpanPairSums, SpanValue, Undefined};

/// One stored label as the quality report reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityRow {
    pub label_id: Uuid,
    pub sample_id: Uuid,
    pub labeler: String,
    pub payload: Value,
    /// The sample's payload, present when the collector asks for it (span fields need the text).
    pub sample: Option<Value>,
}

/// Most labeler pairs listed per field (the busiest pairs first); the mean κ uses every pair.
pub const MAX_PAIRS_LISTED: usize = 200;

#[derive(Debug, Clone, PartialEq)]
enum Val {
    /// A category (single choice, boolean) or an option set (multi choice): an index into the field's values.
    Code(u32),
    Num(f64),
    Spans(Vec<SpanValue>),
}

struct FieldAcc {
    name: String,
    kind: FieldKind,
    /// Category names (single choice, boolean), option names (multi choice) or span labels.
    names: Vec<String>,
    codes: HashMap<String, u32>,
    /// Multi choice: the distinct option sets, each sorted; `Val::Code` indexes them.
    sets: Vec<Vec<u32>>,
    set_codes: HashMap<Vec<u32>, u32>,
    /// Per sample index: (labeler index, value).
    values: Vec<Vec<(u32, Val)>>,
}

impl FieldAcc {
    fn new(name: &str, kind: &FieldKind) -> Self {
        let names: Vec<String> = match kind {
            FieldKind::SingleChoice { options } | FieldKind::MultiChoice { options, .. } => options.clone(),
            FieldKind::Boolean => vec!["false".into(), "true".into()],
            FieldKind::Span { labels, .. } => labels.clone(),
            _ => Vec::new(),
        };
        let codes = names.iter().enumerate().map(|(i, n)| (n.clone(), i as u32)).collect();
        FieldAcc {
            name: name.to_string(),
            kind: kind.clone(),
            names,
            codes,
            sets: Vec::new(),
            set_codes: HashMap::new(),
            values: Vec::new(),
        }
    }

    fn code(&mut self, name: &str) -> u32 {
        if let Some(&c) = self.codes.get(name) {
            return c;
        }
        // A value of an older schema version that the current one no longer lists.
        let c = self.names.len() as u32;
        self.names.push(name.to_string());
        self.codes.insert(name.to_string(), c);
        c
    }

    /// The value of this field in one label, if it holds one of the field's kind.
    fn parse(&mut self, v: &Value) -> Option<Val> {
        match &self.kind {
            FieldKind::SingleChoice { .. } => v.as_str().map(|s| Val::Code(self.code(s))),
            FieldKind::Boolean => v.as_bool().map(|b| Val::Code(u32::from(b))),
            FieldKind::Rating { .. } | FieldKind::Number { .. } => {
                v.as_f64().filter(|x| x.is_finite()).map(Val::Num)
            }
            FieldKind::Date => {
                let s = v.as_str()?;
                let d =
                    time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
                Some(Val::Num(f64::from(d.to_julian_day())))
            }
            FieldKind::MultiChoice { .. } => {
                let items = v.as_array()?;
                let mut set = Vec::with_capacity(items.len());
                for it in items {
                    set.push(self.code(it.as_str()?));
                }
                set.sort_unstable();
                set.dedup();
                let c = match self.set_codes.get(&set) {
                    Some(&c) => c,
                    None => {
                        let c = self.sets.len() as u32;
                        self.set_codes.insert(set.clone(), c);
                        self.sets.push(set);
                        c
                    }
                };
                Some(Val::Code(c))
            }
            FieldKind::Span { .. } => {
                let items = v.as_array()?;
                let mut spans = Vec::with_capacity(items.len());
                for it in items {
                    let start = u32::try_from(it.get("start")?.as_u64()?).ok()?;
                    let end = u32::try_from(it.get("end")?.as_u64()?).ok()?;
                    let label = self.code(it.get("label")?.as_str()?);
                    spans.push(SpanValue { start, end, label });
                }
                Some(Val::Spans(spans))
            }
            FieldKind::Text { .. } => None,
        }
    }
}

/// Gathers the labels of one queue, page by page, and computes its quality report.
pub struct Collector {
    fields: Vec<FieldAcc>,
    samples: HashMap<Uuid, u32>,
    labelers: HashMap<String, u32>,
    labeler_names: Vec<String>,
    labels_per_labeler: Vec<u64>,
    labels_per_sample: Vec<u32>,
    /// Span fields: the source text of each sample, by (field index, sample index).
    texts: HashMap<(usize, u32), String>,
    labels: u64,
    schema: LabelSchema,
    /// Per labeler, the tally of their labels on gold samples.
    gold: HashMap<String, gold::GoldTally>,
}

impl Collector {
    pub fn new(schema: &LabelSchema) -> Self {
        Collector {
            fields: schema.fields.iter().map(|f| FieldAcc::new(&f.name, &f.kind)).collect(),
            samples: HashMap::new(),
            labelers: HashMap::new(),
            labeler_names: Vec::new(),
            labels_per_labeler: Vec::new(),
            labels_per_sample: Vec::new(),
            texts: HashMap::new(),
            labels: 0,
            schema: schema.clone(),
            gold: HashMap::new(),
        }
    }

    /// Scores one label on a gold sample against its answer (gold samples take no part in agreement).
    pub fn add_gold(&mut self, labeler: &str, payload: &Value, answer: &Value) {
        self.gold.entry(labeler.to_string()).or_default().add(&self.schema, payload, answer);
    }

    /// Whether rows should carry the sample payload (a span field measures tokens of the sample's text).
    pub fn needs_samples(&self) -> bool {
        self.fields.iter().any(|f| matches!(f.kind, FieldKind::Span { .. }))
    }

    pub fn add(&mut self, row: &QualityRow) {
        self.labels += 1;
        let next = self.samples.len() as u32;
        let s = *self.samples.entry(row.sample_id).or_insert(next);
        if s == next {
            self.labels_per_sample.push(0);
        }
        self.labels_per_sample[s as usize] += 1;
        let w = match self.labelers.get(row.labeler.as_str()) {
            Some(&w) => w,
            None => {
                let w = self.labeler_names.len() as u32;
                self.labelers.insert(row.labeler.clone(), w);
                self.labeler_names.push(row.labeler.clone());
                self.labels_per_labeler.push(0);
                w
            }
        };
        self.labels_per_labeler[w as usize] += 1;
        for (fi, f) in self.fields.iter_mut().enumerate() {
            let Some(v) = row.payload.get(&f.name).and_then(|v| f.parse(v)) else { continue };
            if let (FieldKind::Span { source, .. }, Some(sample)) = (&f.kind, &row.sample)
                && let Some(text) = sample.get(source).and_then(Value::as_str)
            {
                self.texts.entry((fi, s)).or_insert_with(|| text.to_string());
            }
            if f.values.len() <= s as usize {
                f.values.resize_with(s as usize + 1, Vec::new);
            }
            f.values[s as usize].push((w, v));
        }
    }

    /// The report; `gold` is the queue's gold settings (whether each labeler is under its floor).
    pub fn report(
        self,
        queue_id: Uuid,
        overlap: i32,
        schema_version: i32,
        gold: &GoldSettings,
    ) -> QualityReport {
        let labelers = self.labeler_names.len();
        let mut per_labeler = vec![Shares::default(); labelers];
        let mut per_labeler_field: Vec<Vec<Shares>> =
            vec![vec![Shares::default(); self.fields.len()]; labelers];
        let mut fields = Vec::with_capacity(self.fields.len());
        for (fi, f) in self.fields.iter().enumerate() {
            let mut shares = vec![Shares::default(); labelers];
            fields.push(field_quality(f, fi, overlap, &self.labeler_names, &self.texts, &mut shares));
            for (w, sh) in shares.into_iter().enumerate() {
                per_labeler[w].add(&sh);
                per_labeler_field[w][fi] = sh;
            }
        }
        let mut labeler_rows: Vec<LabelerQuality> = (0..labelers)
            .map(|w| LabelerQuality {
                labeler: self.labeler_names[w].clone(),
                labels: self.labels_per_labeler[w],
                agreement_with_others: per_labeler[w].others(),
                agreement_with_majority: per_labeler[w].majority(),
                fields: self
                    .fields
                    .iter()
                    .enumerate()
                    .filter(|(fi, _)| per_labeler_field[w][*fi].measured())
                    .map(|(fi, f)| LabelerFieldQuality {
                        field: f.name.clone(),
                        agreement_with_others: per_labeler_field[w][fi].others(),
                        agreement_with_majority: per_labeler_field[w][fi].majority(),
                    })
                    .collect(),
                gold: self.gold.get(&self.labeler_names[w]).map(|g| g.report(gold, &self.labeler_names[w])),
            })
            .collect();
        // Labelers who so far labeled only gold samples.
        for (name, g) in &self.gold {
            if !self.labelers.contains_key(name) {
                labeler_rows.push(LabelerQuality {
                    labeler: name.clone(),
                    labels: 0,
                    agreement_with_others: None,
                    agreement_with_majority: None,
                    fields: Vec::new(),
                    gold: Some(g.report(gold, name)),
                });
            }
        }
        labeler_rows.sort_by(|a, b| a.labeler.cmp(&b.labeler));
        QualityReport {
            queue_id,
            overlap,
            schema_version,
            labels: self.labels,
            samples: self.samples.len() as u64,
            samples_multiply_labeled: self.labels_per_sample.iter().filter(|&&n| n >= 2).count() as u64,
            fields,
            labelers: labeler_rows,
        }
    }
}

/// Per labeler: pairs with other labelers on the same sample and field (agreeing / all), and values
/// compared with a strict majority (agreeing / all).
#[derive(Debug, Clone, Copy, Default)]
struct Shares {
    agree: f64,
    pairs: f64,
    majority_agree: f64,
    majority: f64,
}

impl Shares {
    fn add(&mut self, o: &Shares) {
        self.agree += o.agree;
        self.pairs += o.pairs;
        self.majority_agree += o.majority_agree;
        self.majority += o.majority;
    }
    fn measured(&self) -> bool {
        self.pairs > 0.0 || self.majority > 0.0
    }
    fn others(&self) -> Option<f64> {
        (self.pairs > 0.0).then(|| self.agree / self.pairs)
    }
    fn majority(&self) -> Option<f64> {
        (self.majority > 0.0).then(|| self.majority_agree / self.majority)
    }
}

fn measure(name: &str, m: &Measured, samples: u64, note: Option<String>) -> Measure {
    Measure {
        name: name.into(),
        value: m.as_ref().ok().copied(),
        samples,
        note: match m {
            Err(e) => Some(e.reason()),
            Ok(_) => note,
        },
    }
}

/// Equality key of a value for percent agreement and majorities (spans have none).
fn key(v: &Val) -> Option<u64> {
    match v {
        Val::Code(c) => Some(u64::from(*c)),
        Val::Num(x) => Some(x.to_bits()),
        Val::Spans(_) => None,
    }
}

/// Fills `shares` from the samples' values and answers the percent agreement over all pairs.
fn pairwise_shares(values: &[Vec<(u32, Val)>], shares: &mut [Shares]) -> (Measured, u64) {
    let (mut agree, mut pairs, mut samples) = (0.0, 0.0, 0u64);
    let mut tally: HashMap<u64, u32> = HashMap::new();
    for vals in values.iter().filter(|v| v.len() >= 2) {
        samples += 1;
        tally.clear();
        for (_, v) in vals {
            if let Some(k) = key(v) {
                *tally.entry(k).or_default() += 1;
            }
        }
        let m = vals.len() as u32;
        let top = tally.iter().max_by_key(|(_, n)| **n).filter(|(_, n)| 2 * **n > m).map(|(k, _)| *k);
        for (w, v) in vals {
            let Some(k) = key(v) else { continue };
            let same = f64::from(tally[&k] - 1);
            let sh = &mut shares[*w as usize];
            sh.agree += same;
            sh.pairs += f64::from(m - 1);
            agree += same;
            pairs += f64::from(m - 1);
            if let Some(t) = top {
                sh.majority += 1.0;
                if t == k {
                    sh.majority_agree += 1.0;
                }
            }
        }
    }
    (if pairs > 0.0 { Ok(agree / pairs) } else { Err(Undefined::TooFewPairs) }, samples)
}

fn codes(values: &[Vec<(u32, Val)>]) -> Vec<Vec<usize>> {
    values
        .iter()
        .map(|vals| {
            vals.iter()
                .filter_map(|(_, v)| if let Val::Code(c) = v { Some(*c as usize) } else { None })
                .collect()
        })
        .collect()
}

fn nums(values: &[Vec<(u32, Val)>]) -> Vec<Vec<f64>> {
    values
        .iter()
        .map(|vals| {
            vals.iter().filter_map(|(_, v)| if let Val::Num(x) = v { Some(*x) } else { None }).collect()
        })
        .collect()
}

fn pairable(units: &[Vec<usize>]) -> u64 {
    units.iter().filter(|u| u.len() >= 2).count() as u64
}

/// Fleiss' κ over the units with exactly `k` values (`cats` categories).
fn fleiss(units: &[Vec<usize>], k: i32, cats: usize) -> (Measured, u64, Option<String>) {
    if k < 2 {
        return (
            Err(Undefined::TooFewPairs),
            0,
            Some("the queue asks for one label per sample (overlap 1)".into()),
        );
    }
    let table: Vec<Vec<f64>> = units
        .iter()
        .filter(|u| u.len() == k as usize)
        .map(|u| {
            let mut row = vec![0.0; cats];
            for &c in u {
                row[c] += 1.0;
            }
            row
        })
        .collect();
    let n = table.len() as u64;
    (measures::fleiss_kappa(&table), n, Some(format!("samples with exactly {k} labels")))
}

fn field_quality(
    f: &FieldAcc,
    fi: usize,
    overlap: i32,
    labeler_names: &[String],
    texts: &HashMap<(usize, u32), String>,
    shares: &mut [Shares],
) -> FieldQuality {
    let mut out = FieldQuality {
        name: f.name.clone(),
        kind: f.kind.name().to_string(),
        measure: None,
        value: None,
        reading: String::new(),
        why: None,
        measures: Vec::new(),
        pairs: Vec::new(),
        options: Vec::new(),
        confusion: None,
    };
    match &f.kind {
        FieldKind::SingleChoice { .. } | FieldKind::Boolean => {
            let units = codes(&f.values);
            let n = pairable(&units);
            out.measures.push(measure(
                "krippendorff_alpha_nominal",
                &measures::nominal_alpha(&units),
                n,
                None,
            ));
            let (fk, fn_, note) = fleiss(&units, overlap, f.names.len());
            out.measures.push(measure("fleiss_kappa", &fk, fn_, note));
            let (pairs, mean, pair_samples) = cohen_pairs(&f.values, labeler_names);
            out.measures.push(measure(
                "mean_cohen_kappa",
                &mean,
                pair_samples,
                Some(
                    "the unweighted mean of Cohen's κ over labeler pairs sharing two or more samples".into(),
                ),
            ));
            out.pairs = pairs;
            let (pa, ps) = pairwise_shares(&f.values, shares);
            out.measures.push(measure("percent_agreement", &pa, ps, None));
            out.confusion = Some(coincidence(&units, &f.names));
        }
        FieldKind::Rating { .. } => {
            let units = nums(&f.values);
            let n = units.iter().filter(|u| u.len() >= 2).count() as u64;
            for (name, level) in [
                ("krippendorff_alpha_ordinal", Level::Ordinal),
                ("krippendorff_alpha_interval", Level::Interval),
                ("krippendorff_alpha_nominal", Level::Nominal),
            ] {
                out.measures.push(measure(name, &measures::alpha(&units, level), n, None));
            }
            let (pa, ps) = pairwise_shares(&f.values, shares);
            out.measures.push(measure("percent_agreement", &pa, ps, Some("the same rating".into())));
        }
        FieldKind::Number { .. } | FieldKind::Date => {
            let units = nums(&f.values);
            let n = units.iter().filter(|u| u.len() >= 2).count() as u64;
            let note = matches!(f.kind, FieldKind::Date).then(|| "dates as day numbers".to_string());
            out.measures.push(measure(
                "krippendorff_alpha_interval",
                &measures::alpha(&units, Level::Interval),
                n,
                note,
            ));
        }
        FieldKind::MultiChoice { .. } => {
            let units = codes(&f.values);
            let n = pairable(&units);
            let mut counts = vec![0.0; f.sets.len()];
            for u in units.iter().filter(|u| u.len() >= 2) {
                for &c in u {
                    counts[c] += 1.0;
                }
            }
            let jac = measures::pairwise_alpha(&units, &counts, |a, b| {
                measures::jaccard_distance(&f.sets[a], &f.sets[b])
            });
            let masi = measures::pairwise_alpha(&units, &counts, |a, b| {
                measures::masi_distance(&f.sets[a], &f.sets[b])
            });
            out.measures.push(measure(
                "krippendorff_alpha_jaccard",
                &jac,
                n,
                Some("distance 1 − |A∩B| / |A∪B|".into()),
            ));
            out.measures.push(measure("krippendorff_alpha_masi", &masi, n, None));
            let (pa, ps) = pairwise_shares(&f.values, shares);
            out.measures.push(measure("percent_agreement", &pa, ps, Some("the same set of options".into())));
            for (o, option) in f.names.iter().enumerate() {
                let bin: Vec<Vec<usize>> = units
                    .iter()
                    .map(|u| {
                        u.iter().map(|&c| usize::from(f.sets[c].binary_search(&(o as u32)).is_ok())).collect()
                    })
                    .collect();
                let (fk, _, _) = fleiss(&bin, overlap, 2);
                out.options.push(OptionAgreement {
                    option: option.clone(),
                    fleiss_kappa: fk.ok(),
                    krippendorff_alpha: measures::nominal_alpha(&bin).ok(),
                });
            }
        }
        FieldKind::Span { .. } => {
            let mut sums = SpanPairSums::default();
            let mut token_alpha = NominalAlpha::default();
            let mut samples = 0u64;
            let outside = f.names.len();
            let mut missing_text = 0u64;
            for (s, vals) in f.values.iter().enumerate() {
                let spans: Vec<&Vec<SpanValue>> = vals
                    .iter()
                    .filter_map(|(_, v)| if let Val::Spans(x) = v { Some(x) } else { None })
                    .collect();
                if spans.len() < 2 {
                    continue;
                }
                samples += 1;
                for i in 0..spans.len() {
                    for j in i + 1..spans.len() {
                        sums.add(spans[i], spans[j]);
                    }
                }
                let Some(text) = texts.get(&(fi, s as u32)) else {
                    missing_text += 1;
                    continue;
                };
                let toks = measures::tokens(text);
                let cats: Vec<Vec<usize>> =
                    spans.iter().map(|sp| measures::token_categories(&toks, sp, outside)).collect();
                let mut unit = Vec::with_capacity(cats.len());
                for t in 0..toks.len() {
                    unit.clear();
                    unit.extend(cats.iter().map(|c| c[t]));
                    token_alpha.add(&unit);
                }
            }
            out.measures.push(measure("span_f1_overlap", &sums.f1(false), samples, Some(
                "micro-averaged over labeler pairs: spans overlapping a same-label span of the other labeler".into(),
            )));
            out.measures.push(measure(
                "span_f1_exact",
                &sums.f1(true),
                samples,
                Some("micro-averaged over labeler pairs: identical start, end and label".into()),
            ));
            let note = (missing_text > 0)
                .then(|| format!("{missing_text} samples without their source text left out"));
            out.measures.push(measure(
                "token_alpha_nominal",
                &token_alpha.alpha(),
                samples,
                note.or(Some(
                    "whitespace tokens; each takes the label of the first span overlapping it, or outside"
                        .into(),
                )),
            ));
        }
        FieldKind::Text { .. } => {
            out.why =
                Some("free text has no agreement measure; review it, or use a choice or rating field".into());
            out.reading = "not measured".into();
            return out;
        }
    }
    let head = &out.measures[0];
    out.measure = Some(head.name.clone());
    out.value = head.value;
    out.why = head.value.is_none().then(|| head.note.clone()).flatten();
    out.reading = measures::reading(head.value);
    out
}

/// Two labeler indices, the lower first.
type LabelerPair = (u32, u32);

/// Cohen's κ per labeler pair (those sharing two or more samples, busiest first, at most
/// [`MAX_PAIRS_LISTED`]) and their mean over every such pair.
fn cohen_pairs(values: &[Vec<(u32, Val)>], names: &[String]) -> (Vec<PairAgreement>, Measured, u64) {
    let mut by_pair: HashMap<LabelerPair, Vec<(usize, usize)>> = HashMap::new();
    for vals in values.iter().filter(|v| v.len() >= 2) {
        for (i, (wa, va)) in vals.iter().enumerate() {
            for (wb, vb) in &vals[i + 1..] {
                let (Val::Code(a), Val::Code(b)) = (va, vb) else { continue };
                let (pair, ab) = if wa < wb {
                    ((*wa, *wb), (*a as usize, *b as usize))
                } else {
                    ((*wb, *wa), (*b as usize, *a as usize))
                };
                by_pair.entry(pair).or_default().push(ab);
            }
        }
    }
    let mut pairs: Vec<(LabelerPair, Vec<(usize, usize)>)> =
        by_pair.into_iter().filter(|(_, v)| v.len() >= 2).collect();
    pairs.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    let mut sum = 0.0;
    let mut defined = 0usize;
    let mut samples = 0u64;
    let mut listed = Vec::new();
    for ((a, b), v) in &pairs {
        let k = measures::cohen_kappa(v);
        if let Ok(x) = k {
            sum += x;
            defined += 1;
        }
        samples += v.len() as u64;
        if listed.len() < MAX_PAIRS_LISTED {
            let agree = v.iter().filter(|(x, y)| x == y).count() as f64;
            listed.push(PairAgreement {
                a: names[*a as usize].clone(),
                b: names[*b as usize].clone(),
                samples: v.len() as u64,
                cohen_kappa: k.ok(),
                percent_agreement: agree / v.len() as f64,
            });
        }
    }
    let mean = if defined > 0 { Ok(sum / defined as f64) } else { Err(Undefined::TooFewPairs) };
    (listed, mean, samples)
}

/// Krippendorff's coincidence matrix: each pairable sample adds 1/(m − 1) for every ordered pair of its values.
fn coincidence(units: &[Vec<usize>], names: &[String]) -> Confusion {
    let k = names.len();
    let mut counts = vec![vec![0.0; k]; k];
    for u in units.iter().filter(|u| u.len() >= 2) {
        let w = 1.0 / (u.len() as f64 - 1.0);
        for (i, &a) in u.iter().enumerate() {
            for (j, &b) in u.iter().enumerate() {
                if i != j {
                    counts[a][b] += w;
                }
            }
        }
    }
    Confusion { values: names.to_vec(), counts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> LabelSchema {
        serde_json::from_value(json!({"fields": [
            {"name": "sentiment", "kind": "single_choice", "options": ["pos", "neg", "neu"]},
            {"name": "stars", "kind": "rating", "max": 5},
            {"name": "tags", "kind": "multi_choice", "options": ["a", "b", "c"]},
            {"name": "note", "kind": "text"},
            {"name": "ents", "kind": "span", "source": "text", "labels": ["PER", "ORG"]}
        ]}))
        .unwrap()
    }

    fn row(sample: u128, labeler: &str, payload: Value) -> QualityRow {
        QualityRow {
            label_id: Uuid::now_v7(),
            sample_id: Uuid::from_u128(sample),
            labeler: labeler.into(),
            payload,
            sample: Some(json!({"text": "Ada Lovelace met Babbage"})),
        }
    }

    #[test]
    fn a_report_measures_every_field_and_says_why_text_has_no_measure() {
        let mut c = Collector::new(&schema());
        assert!(c.needs_samples());
        let ents = json!([{"start": 0, "end": 12, "label": "PER"}]);
        for (s, w, sent, stars) in [
            (1, "a", "pos", 5),
            (1, "b", "pos", 4),
            (2, "a", "neg", 1),
            (2, "b", "neu", 2),
            (3, "a", "pos", 5),
            (3, "b", "pos", 5),
        ] {
            c.add(&row(
                s,
                w,
                json!({"sentiment": sent, "stars": stars, "tags": ["a"], "note": "x", "ents": ents}),
            ));
        }
        let r = c.report(Uuid::nil(), 2, 1, &GoldSettings::default());
        assert_eq!((r.labels, r.samples, r.samples_multiply_labeled), (6, 3, 3));
        let f = |n: &str| r.fields.iter().find(|f| f.name == n).unwrap();
        assert_eq!(f("sentiment").measure.as_deref(), Some("krippendorff_alpha_nominal"));
        assert!(f("sentiment").value.unwrap() > 0.0);
        assert_eq!(f("sentiment").pairs.len(), 1);
        assert_eq!(f("stars").measure.as_deref(), Some("krippendorff_alpha_ordinal"));
        assert_eq!(f("tags").value, None, "every label has the same set");
        assert!(f("tags").why.as_deref().unwrap().contains("same value"));
        assert_eq!(f("note").measure, None);
        assert!(f("note").why.is_some());
        assert_eq!(f("ents").measure.as_deref(), Some("span_f1_overlap"));
        assert_eq!(f("ents").value, Some(1.0));
        let a = &r.labelers[0];
        assert_eq!(a.labeler, "a");
        // sentiment 2 of 3 agree, stars 1 of 3, tags 3 of 3 → 6 of 9 pairs.
        assert!((a.agreement_with_others.unwrap() - 6.0 / 9.0).abs() < 1e-12);
    }

    #[test]
    fn values_of_another_kind_are_left_out() {
        let mut c = Collector::new(&schema());
        c.add(&row(1, "a", json!({"sentiment": 3, "stars": "five"})));
        c.add(&row(1, "b", json!({"sentiment": "pos"})));
        let r = c.report(Uuid::nil(), 2, 1, &GoldSettings::default());
        assert_eq!(r.fields[0].value, None);
        assert_eq!(r.fields[0].why.as_deref(), Some(Undefined::TooFewPairs.reason().as_str()));
    }
}
