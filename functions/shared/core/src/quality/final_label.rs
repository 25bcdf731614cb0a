//! The final answer of a sample from its labels: per field the unanimous or most frequent value (or the
//! Dawid–Skene class, for nominal fields, when the queue uses it), the share of label pairs that agree, and
//! whether the sample goes to adjudication (a tie, a difference under `unanimous`, or one of the queue's
//! rules). An auditor's decision overrides all of it. Pure: the stores hand over rows.

use std::collections::BTreeMap;

use anvil_types::{
    AdjudicationWhen, FieldError, FieldKind, FinalLabel, FinalMethod, FinalSettings, LabelBehind, LabelSchema,
};
use serde_json::{Map, Value};

use crate::schema::canonical_json;

/// A sample with its labels (rejected ones left out) and the auditor's decision, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleLabels {
    pub sample_id: uuid::Uuid,
    pub external_id: String,
    pub payload: Value,
    pub labels: Vec<LabelBehind>,
    pub decision: Option<Decision>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub answer: Value,
    pub decided_by: String,
}

/// The comparison key of a value: equal keys are the same answer (option sets and spans compare as sets,
/// text trimmed and case-folded).
fn key(kind: &FieldKind, v: &Value) -> String {
    match (kind, v) {
        (FieldKind::MultiChoice { .. } | FieldKind::Span { .. }, Value::Array(items)) => {
            let mut keys: Vec<String> = items.iter().map(canonical_json).collect();
            keys.sort();
            keys.dedup();
            keys.join("\u{1f}")
        }
        (FieldKind::Text { .. }, Value::String(s)) => s.trim().to_lowercase(),
        (FieldKind::Number { .. } | FieldKind::Rating { .. }, Value::Number(n)) => {
            n.as_f64().map_or_else(|| n.to_string(), |x| format!("{x}"))
        }
        _ => canonical_json(v),
    }
}

/// Whether the field is nominal (Dawid–Skene applies).
pub fn nominal(kind: &FieldKind) -> bool {
    matches!(kind, FieldKind::SingleChoice { .. } | FieldKind::Boolean)
}

/// Decides one sample. `ds` gives, for a nominal field (by index in the schema), the Dawid–Skene value of
/// this sample when the queue uses that method.
pub fn decide(
    schema: &LabelSchema,
    settings: &FinalSettings,
    overlap: i32,
    s: &SampleLabels,
    ds: &dyn Fn(usize) -> Option<Value>,
) -> FinalLabel {
    let mut answer = Map::new();
    let mut agreement = BTreeMap::new();
    let mut reasons = Vec::new();
    let mut all_unanimous = true;
    let mut used_ds = false;
    for (fi, f) in schema.fields.iter().enumerate() {
        let values: Vec<&Value> =
            s.labels.iter().filter_map(|l| l.payload.get(&f.name)).filter(|v| !v.is_null()).collect();
        if values.is_empty() {
            continue;
        }
        // Tally by key, keeping the first value given for each key (its original form).
        let mut tally: Vec<(String, &Value, usize)> = Vec::new();
        for v in &values {
            let k = key(&f.kind, v);
            match tally.iter_mut().find(|(tk, _, _)| *tk == k) {
                Some(t) => t.2 += 1,
                None => tally.push((k, v, 1)),
            }
        }
        let n = values.len();
        let pairs = n * (n - 1) / 2;
        let agree: usize = tally.iter().map(|(_, _, c)| c * (c - 1) / 2).sum();
        let share = if pairs == 0 { 1.0 } else { agree as f64 / pairs as f64 };
        agreement.insert(f.name.clone(), share);
        tally.sort_by_key(|t| std::cmp::Reverse(t.2));
        let unanimous = tally.len() == 1;
        all_unanimous &= unanimous;
        for rule in settings.adjudicate.iter().filter(|r| r.field == f.name) {
            match rule.when {
                AdjudicationWhen::Disagreement if !unanimous => {
                    reasons.push(format!("{}: the labels differ", f.name));
                }
                AdjudicationWhen::AgreementBelow if share < rule.threshold.unwrap_or(1.0) => {
                    reasons.push(format!(
                        "{}: agreement {:.2} is under {:.2}",
                        f.name,
                        share,
                        rule.threshold.unwrap_or(1.0)
                    ))
                }
                _ => {}
            }
        }
        let chosen = if unanimous {
            Some(tally[0].1.clone())
        } else {
            match settings.method {
                FinalMethod::Unanimous => {
                    reasons.push(format!("{}: the labels differ and the queue asks for unanimity", f.name));
                    None
                }
                FinalMethod::DawidSkene if let Some(v) = nominal(&f.kind).then(|| ds(fi)).flatten() => {
                    used_ds = true;
                    Some(v)
                }
                _ if tally[0].2 > tally[1].2 => Some(tally[0].1.clone()),
                _ => {
                    let counts: Vec<String> =
                        tally.iter().map(|(_, v, c)| format!("{} × {}", canonical_json(v), c)).collect();
                    reasons.push(format!("{}: a tie ({})", f.name, counts.join(", ")));
                    None
                }
            }
        };
        if let Some(v) = chosen {
            answer.insert(f.name.clone(), v);
        }
    }
    let labels = s.labels.clone();
    let base = FinalLabel {
        sample_id: s.sample_id,
        external_id: s.external_id.clone(),
        status: String::new(),
        answer: None,
        method: None,
        agreement,
        reasons: Vec::new(),
        decided_by: None,
        labels,
    };
    if let Some(d) = &s.decision {
        return FinalLabel {
            status: "final".into(),
            answer: Some(d.answer.clone()),
            method: Some("adjudicated".into()),
            decided_by: Some(d.decided_by.clone()),
            ..base
        };
    }
    if (s.labels.len() as i64) < i64::from(overlap) {
        return FinalLabel { status: "incomplete".into(), ..base };
    }
    if !reasons.is_empty() {
        return FinalLabel { status: "adjudication".into(), reasons, ..base };
    }
    let method = if all_unanimous {
        "unanimous"
    } else if used_ds {
        "dawid_skene"
    } else {
        "majority"
    };
    FinalLabel {
        status: "final".into(),
        answer: Some(Value::Object(answer)),
        method: Some(method.into()),
        ..base
    }
}

/// Checks final settings against the queue's schema: rules name fields of it, thresholds are 0..=1.
pub fn check_final_settings(schema: &LabelSchema, s: &FinalSettings) -> Result<(), Vec<FieldError>> {
    let mut errs = Vec::new();
    if s.adjudicate.len() > 100 {
        errs.push(FieldError::new("/adjudicate", "at most 100 rules"));
    }
    for (i, r) in s.adjudicate.iter().enumerate() {
        if !schema.fields.iter().any(|f| f.name == r.field) {
            errs.push(FieldError::new(format!("/adjudicate/{i}/field"), "not a field of the queue's schema"));
        }
        match (r.when, r.threshold) {
            (AdjudicationWhen::AgreementBelow, Some(t)) if (0.0..=1.0).contains(&t) => {}
            (AdjudicationWhen::AgreementBelow, _) => {
                errs.push(FieldError::new(format!("/adjudicate/{i}/threshold"), "0..=1 for agreement_below"));
            }
            (AdjudicationWhen::Disagreement, Some(_)) => {
                errs.push(FieldError::new(format!("/adjudicate/{i}/threshold"), "only for agreement_below"));
            }
            _ => {}
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anvil_types::AdjudicationRule;
    use serde_json::json;

    fn schema() -> LabelSchema {
        serde_json::from_value(json!({"fields": [
            {"name": "sentiment", "kind": "single_choice", "options": ["pos", "neg", "neu"]},
            {"name": "tags", "kind": "multi_choice", "options": ["a", "b"], "required": false},
            {"name": "note", "kind": "text", "required": false}
        ]}))
        .unwrap()
    }

    fn sample(payloads: &[Value]) -> SampleLabels {
        SampleLabels {
            sample_id: uuid::Uuid::nil(),
            external_id: "s".into(),
            payload: json!({}),
            labels: payloads
                .iter()
                .enumerate()
                .map(|(i, p)| LabelBehind {
                    label_id: uuid::Uuid::from_u128(i as u128),
                    labeler: format!("l{i}"),
                    payload: p.clone(),
                })
                .collect(),
            decision: None,
        }
    }

    fn no_ds(_: usize) -> Option<Value> {
        None
    }

    #[test]
    fn unanimous_majority_ties_and_rules() {
        let st = FinalSettings::default();
        let s = sample(&[
            json!({"sentiment": "pos", "tags": ["a", "b"]}),
            json!({"sentiment": "pos", "tags": ["b", "a"]}),
        ]);
        let f = decide(&schema(), &st, 2, &s, &no_ds);
        assert_eq!((f.status.as_str(), f.method.as_deref()), ("final", Some("unanimous")));
        assert_eq!(f.answer.unwrap()["tags"], json!(["a", "b"]), "sets compare as sets");

        let s =
            sample(&[json!({"sentiment": "pos"}), json!({"sentiment": "neg"}), json!({"sentiment": "pos"})]);
        let f = decide(&schema(), &st, 3, &s, &no_ds);
        assert_eq!((f.status.as_str(), f.method.as_deref()), ("final", Some("majority")));
        assert_eq!(f.answer.unwrap()["sentiment"], "pos");
        assert!((f.agreement["sentiment"] - 1.0 / 3.0).abs() < 1e-12);

        let s = sample(&[json!({"sentiment": "pos"}), json!({"sentiment": "neg"})]);
        let f = decide(&schema(), &st, 2, &s, &no_ds);
        assert_eq!(f.status, "adjudication");
        assert!(f.reasons[0].contains("tie"), "{:?}", f.reasons);

        let unanimous = FinalSettings { method: FinalMethod::Unanimous, adjudicate: vec![] };
        let s3 =
            sample(&[json!({"sentiment": "pos"}), json!({"sentiment": "neg"}), json!({"sentiment": "pos"})]);
        assert_eq!(decide(&schema(), &unanimous, 3, &s3, &no_ds).status, "adjudication");

        let rules = FinalSettings {
            method: FinalMethod::Majority,
            adjudicate: vec![AdjudicationRule {
                field: "sentiment".into(),
                when: AdjudicationWhen::AgreementBelow,
                threshold: Some(0.5),
            }],
        };
        let f = decide(&schema(), &rules, 3, &s3, &no_ds);
        assert_eq!(f.status, "adjudication");
        assert!(f.reasons[0].contains("under 0.50"), "{:?}", f.reasons);

        // Fewer labels than the overlap: incomplete; a decision wins over everything.
        assert_eq!(
            decide(&schema(), &st, 3, &sample(&[json!({"sentiment": "pos"})]), &no_ds).status,
            "incomplete"
        );
        let mut d = s.clone();
        d.decision = Some(Decision { answer: json!({"sentiment": "neu"}), decided_by: "aud".into() });
        let f = decide(&schema(), &st, 2, &d, &no_ds);
        assert_eq!(
            (f.status.as_str(), f.method.as_deref(), f.decided_by.as_deref()),
            ("final", Some("adjudicated"), Some("aud"))
        );
    }

    #[test]
    fn dawid_skene_decides_nominal_fields_when_asked() {
        let st = FinalSettings { method: FinalMethod::DawidSkene, adjudicate: vec![] };
        let s = sample(&[json!({"sentiment": "pos"}), json!({"sentiment": "neg"})]);
        let f = decide(&schema(), &st, 2, &s, &|fi| (fi == 0).then(|| json!("neg")));
        assert_eq!((f.status.as_str(), f.method.as_deref()), ("final", Some("dawid_skene")));
        assert_eq!(f.answer.unwrap()["sentiment"], "neg");
    }

    #[test]
    fn settings_name_fields_of_the_schema() {
        let bad = FinalSettings {
            method: FinalMethod::Majority,
            adjudicate: vec![
                AdjudicationRule {
                    field: "nope".into(),
                    when: AdjudicationWhen::Disagreement,
                    threshold: None,
                },
                AdjudicationRule {
                    field: "sentiment".into(),
                    when: AdjudicationWhen::AgreementBelow,
                    threshold: None,
                },
            ],
        };
        let errs = check_final_settings(&schema(), &bad).unwrap_err();
        assert_eq!(errs.len(), 2);
    }
}
