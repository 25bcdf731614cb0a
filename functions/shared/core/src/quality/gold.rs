//! Gold samples: checking a batch of them, scoring a label against a known answer, and a labeler's standing
//! against the queue's accuracy floor. Pure: both stores hand over rows, this decides.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anvil_types::{
    FieldError, FieldKind, GoldAccuracy, GoldFieldAccuracy, GoldSettings, LabelSchema, NewGold,
};
use serde_json::Value;

use crate::domain::TenantId;
use crate::schema::{check_sample_payload, validate_label};

/// Most gold items per `POST /v1/queues/{id}/gold`.
pub const MAX_GOLD_PER_BATCH: usize = 1000;
/// Highest share of claims that may be gold.
pub const MAX_GOLD_RATE: f64 = 0.5;

/// Checks a batch of gold items against the queue's current schema: ids, payloads, and each answer field by
/// field (a gold answer names the fields it knows; those must validate as a label's would, span offsets
/// against the item's own payload). Pointers are relative to the body (`/items/3/answer/sentiment`).
pub fn check_gold(schema: &LabelSchema, items: &[NewGold]) -> Result<(), Vec<FieldError>> {
    let mut errs = Vec::new();
    if items.is_empty() {
        errs.push(FieldError::new("/items", "at least one gold item"));
    }
    if items.len() > MAX_GOLD_PER_BATCH {
        errs.push(FieldError::new("/items", format!("at most {MAX_GOLD_PER_BATCH} gold items per call")));
        return Err(errs);
    }
    // Every field optional: an answer is scored on the fields it names.
    let mut relaxed = schema.clone();
    relaxed.fields.iter_mut().for_each(|f| f.required = false);
    let mut seen = std::collections::HashSet::new();
    for (i, g) in items.iter().enumerate() {
        let id = &g.external_id;
        if id.is_empty() || id.len() > 255 || id.chars().any(char::is_control) {
            errs.push(FieldError::new(format!("/items/{i}/external_id"), "1..=255 characters"));
        } else if !seen.insert(id.as_str()) {
            errs.push(FieldError::new(format!("/items/{i}/external_id"), "appears twice in this batch"));
        }
        if let Some(e) = check_sample_payload(&g.payload, &format!("/items/{i}/payload")) {
            errs.push(e);
        } else if g.payload.to_string().len() > crate::domain::MAX_SAMPLE_PAYLOAD_BYTES {
            errs.push(FieldError::new(format!("/items/{i}/payload"), "larger than 256 KiB"));
        }
        match g.answer.as_object() {
            Some(o) if o.values().any(|v| !v.is_null()) => {
                for e in validate_label(&relaxed, &g.payload, &g.answer) {
                    let rest = e.pointer.strip_prefix("/payload").unwrap_or(&e.pointer);
                    errs.push(FieldError::new(format!("/items/{i}/answer{rest}"), e.message));
                }
            }
            _ => errs.push(FieldError::new(
                format!("/items/{i}/answer"),
                "a JSON object with the known value of at least one field",
            )),
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// Checks gold settings: a rate in 0..=0.5, a floor's accuracy in 0..=1 and `after` >= 1, exempt labelers
/// as subjects.
pub fn check_gold_settings(s: &GoldSettings) -> Result<(), Vec<FieldError>> {
    let mut errs = Vec::new();
    if !(0.0..=MAX_GOLD_RATE).contains(&s.rate) {
        errs.push(FieldError::new("/rate", format!("must be 0..={MAX_GOLD_RATE} (0.05 is one claim in 20)")));
    }
    if let Some(f) = &s.floor {
        if !(0.0..=1.0).contains(&f.min_accuracy) {
            errs.push(FieldError::new("/floor/min_accuracy", "must be 0..=1"));
        }
        if !(1..=100_000).contains(&f.after) {
            errs.push(FieldError::new("/floor/after", "must be 1..=100000"));
        }
    }
    if s.exempt.len() > 10_000 {
        errs.push(FieldError::new("/exempt", "at most 10000 labelers"));
    }
    for (i, l) in s.exempt.iter().enumerate() {
        if crate::domain::Subject::parse(l).is_none() {
            errs.push(FieldError::new(format!("/exempt/{i}"), "not a valid labeler subject"));
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// Whether a labeler's value of a field equals the known one: the same choice, boolean, date or text
/// (trimmed, case-insensitive); the same number (within 1e-9); the same set of options; the same set of
/// spans (start, end, label).
pub fn same_answer(kind: &FieldKind, given: &Value, known: &Value) -> bool {
    match kind {
        FieldKind::Number { .. } | FieldKind::Rating { .. } => match (given.as_f64(), known.as_f64()) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-9,
            _ => false,
        },
        FieldKind::Text { .. } => match (given.as_str(), known.as_str()) {
            (Some(a), Some(b)) => a.trim().to_lowercase() == b.trim().to_lowercase(),
            _ => false,
        },
        FieldKind::MultiChoice { .. } => {
            as_set(given, |v| v.as_str().map(str::to_string))
                == as_set(known, |v| v.as_str().map(str::to_string))
        }
        FieldKind::Span { .. } => {
            let span = |v: &Value| {
                Some((
                    v.get("start")?.as_u64()?,
                    v.get("end")?.as_u64()?,
                    v.get("label")?.as_str()?.to_string(),
                ))
            };
            as_set(given, span) == as_set(known, span)
        }
        FieldKind::SingleChoice { .. } | FieldKind::Boolean | FieldKind::Date => given == known,
    }
}

fn as_set<T: Ord>(v: &Value, item: impl Fn(&Value) -> Option<T>) -> Option<std::collections::BTreeSet<T>> {
    v.as_array()?.iter().map(item).collect()
}

/// One labeler's tally on gold: per field, (scored, correct).
#[derive(Debug, Clone, Default)]
pub struct GoldTally {
    pub items: u64,
    fields: BTreeMap<String, (u64, u64)>,
}

impl GoldTally {
    /// Scores one label against a gold answer: each field the answer names (and the current schema has)
    /// counts; a field the label leaves empty counts as wrong.
    pub fn add(&mut self, schema: &LabelSchema, payload: &Value, answer: &Value) {
        self.items += 1;
        let Some(known) = answer.as_object() else { return };
        for f in &schema.fields {
            let Some(k) = known.get(&f.name).filter(|v| !v.is_null()) else { continue };
            let right = payload.get(&f.name).is_some_and(|g| same_answer(&f.kind, g, k));
            let e = self.fields.entry(f.name.clone()).or_default();
            e.0 += 1;
            e.1 += u64::from(right);
        }
    }

    pub fn scored(&self) -> u64 {
        self.fields.values().map(|v| v.0).sum()
    }

    pub fn correct(&self) -> u64 {
        self.fields.values().map(|v| v.1).sum()
    }

    pub fn accuracy(&self) -> Option<f64> {
        let n = self.scored();
        (n > 0).then(|| self.correct() as f64 / n as f64)
    }

    /// Whether the floor of `settings` stops `labeler` (not exempt, enough gold items, under the floor).
    pub fn below_floor(&self, settings: &GoldSettings, labeler: &str) -> bool {
        let Some(f) = &settings.floor else { return false };
        !settings.exempt.iter().any(|e| e == labeler)
            && self.items >= u64::try_from(f.after).unwrap_or(u64::MAX)
            && self.accuracy().is_some_and(|a| a < f.min_accuracy)
    }

    pub fn report(&self, settings: &GoldSettings, labeler: &str) -> GoldAccuracy {
        GoldAccuracy {
            items: self.items,
            scored: self.scored(),
            correct: self.correct(),
            accuracy: self.accuracy().unwrap_or(0.0),
            below_floor: self.below_floor(settings, labeler),
            exempt: settings.exempt.iter().any(|e| e == labeler),
            fields: self
                .fields
                .iter()
                .map(|(name, &(scored, correct))| GoldFieldAccuracy {
                    field: name.clone(),
                    scored,
                    correct,
                    accuracy: if scored > 0 { correct as f64 / scored as f64 } else { 0.0 },
                })
                .collect(),
        }
    }
}

/// How long a process trusts what it read about a queue's gold settings and a labeler's standing. A
/// change made through this process applies at once (it forgets its own entries); one made through another
/// instance applies within this time.
pub const GOLD_CACHE_TTL: Duration = Duration::from_secs(5);
const GOLD_CACHE_MAX: usize = 50_000;

type QueueKey = (TenantId, uuid::Uuid);

/// What the claim needs to know about gold without a query on every claim: per queue its settings, per
/// labeler whether the floor stops them. Bounded (cleared when full) and short-lived ([`GOLD_CACHE_TTL`]).
#[derive(Debug, Default)]
pub struct GoldCache {
    settings: Mutex<HashMap<QueueKey, (Instant, Arc<GoldSettings>)>>,
    standing: Mutex<HashMap<(QueueKey, String), (Instant, bool)>>,
    /// Gold leases this process handed out, not yet submitted: their submit changes a standing.
    leases: Mutex<std::collections::HashSet<uuid::Uuid>>,
}

fn fresh<K: std::hash::Hash + Eq, V: Clone>(m: &Mutex<HashMap<K, (Instant, V)>>, k: &K) -> Option<V> {
    let map = m.lock().unwrap_or_else(PoisonError::into_inner);
    map.get(k).filter(|(at, _)| at.elapsed() < GOLD_CACHE_TTL).map(|(_, v)| v.clone())
}

fn keep<K: std::hash::Hash + Eq, V>(m: &Mutex<HashMap<K, (Instant, V)>>, k: K, v: V) {
    let mut map = m.lock().unwrap_or_else(PoisonError::into_inner);
    if map.len() >= GOLD_CACHE_MAX {
        map.clear();
    }
    map.insert(k, (Instant::now(), v));
}

impl GoldCache {
    pub fn settings(&self, t: &TenantId, queue: uuid::Uuid) -> Option<Arc<GoldSettings>> {
        fresh(&self.settings, &(t.clone(), queue))
    }
    pub fn keep_settings(&self, t: &TenantId, queue: uuid::Uuid, s: Arc<GoldSettings>) {
        keep(&self.settings, (t.clone(), queue), s);
    }
    pub fn standing(&self, t: &TenantId, queue: uuid::Uuid, labeler: &str) -> Option<bool> {
        fresh(&self.standing, &((t.clone(), queue), labeler.to_string()))
    }
    pub fn keep_standing(&self, t: &TenantId, queue: uuid::Uuid, labeler: &str, below: bool) {
        keep(&self.standing, ((t.clone(), queue), labeler.to_string()), below);
    }
    /// Forgets a queue's settings and every standing in it (its gold or its settings changed).
    pub fn forget_queue(&self, t: &TenantId, queue: uuid::Uuid) {
        let k = (t.clone(), queue);
        self.settings.lock().unwrap_or_else(PoisonError::into_inner).remove(&k);
        self.standing.lock().unwrap_or_else(PoisonError::into_inner).retain(|(q, _), _| *q != k);
    }
    /// Remembers a gold lease handed out by this process.
    pub fn gold_lease(&self, assignment: uuid::Uuid) {
        let mut set = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
        if set.len() >= GOLD_CACHE_MAX {
            set.clear();
        }
        set.insert(assignment);
    }

    /// After a submit: when the assignment was a gold lease of this process, forgets the labeler's
    /// standing (their next claim reads it again). Other submits change no standing and cost one lookup.
    pub fn submitted(&self, t: &TenantId, queue: uuid::Uuid, labeler: &str, assignment: uuid::Uuid) {
        let was_gold = {
            let mut set = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
            !set.is_empty() && set.remove(&assignment)
        };
        if was_gold {
            self.standing
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&((t.clone(), queue), labeler.to_string()));
        }
    }
}

/// True with probability `rate` (0..=1), from the operating system's randomness.
pub fn draw(rate: f64) -> bool {
    if rate <= 0.0 {
        return false;
    }
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return false;
    }
    ((u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64) < rate
}

#[cfg(test)]
mod tests {
    use super::*;
    use anvil_types::GoldFloor;
    use serde_json::json;

    fn schema() -> LabelSchema {
        serde_json::from_value(json!({"fields": [
            {"name": "sentiment", "kind": "single_choice", "options": ["pos", "neg"]},
            {"name": "tags", "kind": "multi_choice", "options": ["a", "b"], "required": false},
            {"name": "ents", "kind": "span", "source": "text", "labels": ["PER"], "required": false},
            {"name": "score", "kind": "number", "required": false}
        ]}))
        .unwrap()
    }

    #[test]
    fn answers_are_checked_field_by_field_with_pointers() {
        let ok = NewGold {
            external_id: "g1".into(),
            payload: json!({"text": "Ada"}),
            answer: json!({"sentiment": "pos"}),
        };
        assert!(check_gold(&schema(), std::slice::from_ref(&ok)).is_ok());
        let bad = NewGold {
            external_id: "g2".into(),
            payload: json!({"text": "Ada"}),
            answer: json!({"sentiment": "meh", "ents": [{"start": 0, "end": 9, "label": "PER"}], "nope": 1}),
        };
        let errs = check_gold(&schema(), &[ok.clone(), bad]).unwrap_err();
        let ptrs: Vec<&str> = errs.iter().map(|e| e.pointer.as_str()).collect();
        assert!(ptrs.contains(&"/items/1/answer/sentiment"), "{ptrs:?}");
        assert!(ptrs.contains(&"/items/1/answer/nope"), "{ptrs:?}");
        assert!(ptrs.iter().any(|p| p.starts_with("/items/1/answer/ents")), "{ptrs:?}");
        let empty = NewGold { answer: json!({}), ..ok };
        assert_eq!(check_gold(&schema(), &[empty]).unwrap_err()[0].pointer, "/items/0/answer");
    }

    #[test]
    fn scoring_compares_by_kind_and_the_floor_needs_enough_items() {
        let s = schema();
        let answer = json!({"sentiment": "pos", "tags": ["a", "b"], "score": 2});
        let mut t = GoldTally::default();
        t.add(&s, &json!({"sentiment": "pos", "tags": ["b", "a"], "score": 2.0}), &answer);
        assert_eq!((t.scored(), t.correct()), (3, 3));
        t.add(&s, &json!({"sentiment": "neg", "tags": ["a"]}), &answer);
        assert_eq!((t.items, t.scored(), t.correct()), (2, 6, 3));
        let mut settings = GoldSettings {
            rate: 0.1,
            floor: Some(GoldFloor { min_accuracy: 0.8, after: 3 }),
            exempt: vec![],
        };
        assert!(!t.below_floor(&settings, "ann"), "two items: the floor waits for three");
        t.add(&s, &json!({"sentiment": "pos"}), &answer);
        assert!(t.below_floor(&settings, "ann"));
        settings.exempt.push("ann".into());
        assert!(!t.below_floor(&settings, "ann"));
        let r = t.report(&settings, "ann");
        assert!(r.exempt && !r.below_floor);
        assert_eq!(r.fields.len(), 3);
        let spans = json!([{"start": 0, "end": 3, "label": "PER"}]);
        assert!(same_answer(&s.fields[2].kind, &spans, &spans));
        assert!(!same_answer(&s.fields[2].kind, &json!([]), &spans));
    }
}
