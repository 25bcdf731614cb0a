//! Label schemas: checking a schema definition when a queue or schema version is created, and validating a
//! label payload against the schema version of its assignment. Every problem is reported with a JSON pointer
//! into the request body, so a client can put the message next to the field.

use anvil_types::schema::Span;
use anvil_types::{FieldError, FieldKind, LabelSchema};
use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashSet;

pub const MAX_FIELDS: usize = 50;
pub const MAX_OPTIONS: usize = 200;
pub const MAX_TEXT_LEN: u32 = 100_000;
pub const MAX_SPANS: usize = 5_000;

/// RFC 6901 escaping of one reference token.
pub fn pointer_token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn check_options(opts: &[String], errs: &mut Vec<FieldError>, ptr: String) {
    if opts.is_empty() {
        errs.push(FieldError::new(ptr.clone(), "needs at least one option"));
    }
    if opts.len() > MAX_OPTIONS {
        errs.push(FieldError::new(ptr.clone(), format!("at most {MAX_OPTIONS} options")));
    }
    let mut seen = HashSet::new();
    for (j, o) in opts.iter().enumerate() {
        if o.is_empty() || o.chars().count() > 200 {
            errs.push(FieldError::new(format!("{ptr}/{j}"), "options are 1..=200 characters"));
        } else if !seen.insert(o.as_str()) {
            errs.push(FieldError::new(format!("{ptr}/{j}"), format!("duplicate option `{o}`")));
        }
    }
}

fn valid_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn compile_pattern(pattern: &str) -> Result<Regex, regex::Error> {
    // Anchored: a text pattern must match the whole value. Size limits keep a hostile pattern cheap.
    RegexBuilder::new(&format!("^(?:{pattern})$")).size_limit(1 << 20).dfa_size_limit(1 << 20).build()
}

/// The compiled pattern of a text field, compiled once per process (a schema version never changes; the
/// cache is dropped whole when it reaches its bound, so hostile schemas cannot grow it).
fn cached_pattern(pattern: &str) -> Result<Regex, regex::Error> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock, PoisonError};
    static CACHE: OnceLock<Mutex<HashMap<String, Regex>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(re) = cache.lock().unwrap_or_else(PoisonError::into_inner).get(pattern) {
        return Ok(re.clone());
    }
    let re = compile_pattern(pattern)?;
    let mut map = cache.lock().unwrap_or_else(PoisonError::into_inner);
    if map.len() >= 512 {
        map.clear();
    }
    map.insert(pattern.to_string(), re.clone());
    Ok(re)
}

/// Checks a schema definition; `base` is the pointer of the schema in the request body (e.g. `/schema`).
pub fn check_schema(schema: &LabelSchema, base: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if schema.fields.is_empty() {
        errs.push(FieldError::new(format!("{base}/fields"), "a schema needs at least one field"));
    }
    if schema.fields.len() > MAX_FIELDS {
        errs.push(FieldError::new(format!("{base}/fields"), format!("at most {MAX_FIELDS} fields")));
    }
    if schema.instructions.chars().count() > 20_000 {
        errs.push(FieldError::new(format!("{base}/instructions"), "at most 20000 characters"));
    }
    let mut names = HashSet::new();
    for (i, f) in schema.fields.iter().enumerate() {
        let p = format!("{base}/fields/{i}");
        if !valid_field_name(&f.name) {
            errs.push(FieldError::new(format!("{p}/name"), "must match [a-z][a-z0-9_]{0,63}"));
        } else if !names.insert(f.name.as_str()) {
            errs.push(FieldError::new(format!("{p}/name"), format!("duplicate field name `{}`", f.name)));
        }
        if f.title.chars().count() > 200 {
            errs.push(FieldError::new(format!("{p}/title"), "at most 200 characters"));
        }
        match &f.kind {
            FieldKind::SingleChoice { options } => check_options(options, &mut errs, format!("{p}/options")),
            FieldKind::MultiChoice { options, min_selected, max_selected } => {
                check_options(options, &mut errs, format!("{p}/options"));
                if let (Some(lo), Some(hi)) = (min_selected, max_selected)
                    && lo > hi
                {
                    errs.push(FieldError::new(format!("{p}/min_selected"), "must not exceed max_selected"));
                }
                if let Some(lo) = min_selected
                    && *lo as usize > options.len()
                {
                    errs.push(FieldError::new(format!("{p}/min_selected"), "exceeds the number of options"));
                }
            }
            FieldKind::Boolean | FieldKind::Date => {}
            FieldKind::Number { min, max, step } => {
                for (k, v) in [("min", min), ("max", max), ("step", step)] {
                    if let Some(v) = v
                        && !v.is_finite()
                    {
                        errs.push(FieldError::new(format!("{p}/{k}"), "must be a finite number"));
                    }
                }
                if let (Some(lo), Some(hi)) = (min, max)
                    && lo > hi
                {
                    errs.push(FieldError::new(format!("{p}/min"), "must not exceed max"));
                }
                if let Some(s) = step
                    && *s <= 0.0
                {
                    errs.push(FieldError::new(format!("{p}/step"), "must be positive"));
                }
            }
            FieldKind::Text { max_len, pattern, .. } => {
                if let Some(n) = max_len
                    && (*n == 0 || *n > MAX_TEXT_LEN)
                {
                    errs.push(FieldError::new(format!("{p}/max_len"), format!("must be 1..={MAX_TEXT_LEN}")));
                }
                if let Some(pat) = pattern
                    && let Err(e) = compile_pattern(pat)
                {
                    let msg = match e {
                        regex::Error::CompiledTooBig(_) => "pattern is too large".to_string(),
                        _ => "not a valid regular expression".to_string(),
                    };
                    errs.push(FieldError::new(format!("{p}/pattern"), msg));
                }
            }
            FieldKind::Rating { max } => {
                if !(2..=10).contains(max) {
                    errs.push(FieldError::new(format!("{p}/max"), "must be 2..=10"));
                }
            }
            FieldKind::Span { source, labels, .. } => {
                if source.is_empty() || source.len() > 64 {
                    errs.push(FieldError::new(
                        format!("{p}/source"),
                        "names the sample payload's text property (1..=64 characters)",
                    ));
                }
                check_options(labels, &mut errs, format!("{p}/labels"));
            }
        }
    }
    errs
}

/// Canonical JSON (object keys sorted, no whitespace) — the basis of the schema hash.
pub fn canonical_json(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String((*k).clone()).to_string());
                    out.push(':');
                    write(&m[k.as_str()], out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    write(v, &mut s);
    s
}

/// sha256 (hex) of the schema's canonical JSON.
pub fn schema_hash(schema: &LabelSchema) -> String {
    let v = serde_json::to_value(schema).unwrap_or(Value::Null);
    hex::encode(Sha256::digest(canonical_json(&v).as_bytes()))
}

/// Validates a label payload against `schema`. `sample` is the sample's payload (span fields index into one of
/// its text properties). Pointers are relative to the submit body, so they start with `/payload`.
pub fn validate_label(schema: &LabelSchema, sample: &Value, payload: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(obj) = payload.as_object() else {
        errs.push(FieldError::new("/payload", "must be a JSON object with one entry per schema field"));
        return errs;
    };
    let known: HashSet<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
    for k in obj.keys() {
        if !known.contains(k.as_str()) {
            errs.push(FieldError::new(
                format!("/payload/{}", pointer_token(k)),
                "not a field of this schema",
            ));
        }
    }
    for f in &schema.fields {
        let p = format!("/payload/{}", pointer_token(&f.name));
        match obj.get(&f.name) {
            None | Some(Value::Null) => {
                if f.required {
                    errs.push(FieldError::new(p, "required"));
                }
            }
            Some(v) => validate_value(&f.kind, v, sample, &p, &mut errs),
        }
    }
    errs
}

fn validate_value(kind: &FieldKind, v: &Value, sample: &Value, p: &str, errs: &mut Vec<FieldError>) {
    let mut err = |ptr: String, msg: String| errs.push(FieldError::new(ptr, msg));
    match kind {
        FieldKind::SingleChoice { options } => match v.as_str() {
            Some(s) if options.iter().any(|o| o == s) => {}
            Some(s) => err(p.to_string(), format!("`{s}` is not one of the options")),
            None => err(p.to_string(), "must be a string (one of the options)".into()),
        },
        FieldKind::MultiChoice { options, min_selected, max_selected } => {
            let Some(items) = v.as_array() else {
                return err(p.to_string(), "must be an array of options".into());
            };
            let mut seen = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(s) if !options.iter().any(|o| o == s) => {
                        err(format!("{p}/{i}"), format!("`{s}` is not one of the options"))
                    }
                    Some(s) => {
                        if !seen.insert(s) {
                            err(format!("{p}/{i}"), format!("`{s}` is selected twice"));
                        }
                    }
                    None => err(format!("{p}/{i}"), "must be a string".into()),
                }
            }
            if let Some(lo) = min_selected
                && items.len() < *lo as usize
            {
                err(p.to_string(), format!("select at least {lo}"));
            }
            if let Some(hi) = max_selected
                && items.len() > *hi as usize
            {
                err(p.to_string(), format!("select at most {hi}"));
            }
        }
        FieldKind::Boolean => {
            if !v.is_boolean() {
                err(p.to_string(), "must be true or false".into());
            }
        }
        FieldKind::Number { min, max, step } => {
            let Some(x) = v.as_f64() else {
                return err(p.to_string(), "must be a number".into());
            };
            if let Some(lo) = min
                && x < *lo
            {
                err(p.to_string(), format!("must be at least {lo}"));
            }
            if let Some(hi) = max
                && x > *hi
            {
                err(p.to_string(), format!("must be at most {hi}"));
            }
            if let Some(s) = step {
                let base = min.unwrap_or(0.0);
                let n = (x - base) / s;
                if (n - n.round()).abs() > 1e-9 * n.abs().max(1.0) {
                    err(p.to_string(), format!("must be a multiple of {s} from {base}"));
                }
            }
        }
        FieldKind::Text { max_len, pattern, .. } => {
            let Some(s) = v.as_str() else {
                return err(p.to_string(), "must be a string".into());
            };
            let limit = max_len.unwrap_or(MAX_TEXT_LEN);
            if s.chars().count() > limit as usize {
                err(p.to_string(), format!("at most {limit} characters"));
            }
            if let Some(pat) = pattern {
                match cached_pattern(pat) {
                    Ok(re) if re.is_match(s) => {}
                    Ok(_) => err(p.to_string(), format!("must match the pattern {pat}")),
                    Err(_) => err(p.to_string(), "the schema's pattern is invalid".into()),
                }
            }
        }
        FieldKind::Rating { max } => match v.as_u64() {
            Some(n) if n >= 1 && n <= u64::from(*max) => {}
            _ => err(p.to_string(), format!("must be an integer from 1 to {max}")),
        },
        FieldKind::Date => {
            let ok = v.as_str().is_some_and(|s| {
                s.len() == 10
                    && time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).is_ok()
            });
            if !ok {
                err(p.to_string(), "must be a date YYYY-MM-DD".into());
            }
        }
        FieldKind::Span { source, labels, allow_overlap } => {
            let Some(items) = v.as_array() else {
                return err(p.to_string(), "must be an array of {start, end, label}".into());
            };
            if items.len() > MAX_SPANS {
                return err(p.to_string(), format!("at most {MAX_SPANS} spans"));
            }
            let text_len = sample.get(source).and_then(Value::as_str).map(|t| t.chars().count());
            let Some(text_len) = text_len else {
                return err(p.to_string(), format!("the sample has no text property `{source}` to annotate"));
            };
            let mut spans: Vec<(usize, Span)> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let sp: Span = match serde_json::from_value(item.clone()) {
                    Ok(sp) => sp,
                    Err(_) => {
                        err(
                            format!("{p}/{i}"),
                            "must be {\"start\": int, \"end\": int, \"label\": string}".into(),
                        );
                        continue;
                    }
                };
                if sp.start >= sp.end {
                    err(format!("{p}/{i}/end"), "must be greater than start".into());
                } else if sp.end as usize > text_len {
                    err(
                        format!("{p}/{i}/end"),
                        format!("beyond the end of the text ({text_len} characters)"),
                    );
                }
                if !labels.contains(&sp.label) {
                    err(format!("{p}/{i}/label"), format!("`{}` is not one of the span labels", sp.label));
                }
                spans.push((i, sp));
            }
            if !allow_overlap {
                spans.sort_by_key(|(_, s)| (s.start, s.end));
                for w in spans.windows(2) {
                    if w[1].1.start < w[0].1.end {
                        err(format!("{p}/{}", w[1].0), format!("overlaps span {}", w[0].0));
                    }
                }
            }
        }
    }
}

/// Validates that a sample payload is usable: a JSON object.
pub fn check_sample_payload(payload: &Value, pointer: &str) -> Option<FieldError> {
    match payload {
        Value::Object(m) if !m.is_empty() => None,
        Value::Object(_) => Some(FieldError::new(pointer, "must not be empty")),
        _ => Some(FieldError::new(pointer, "must be a JSON object")),
    }
}

/// A convenience for tests and the demo.
pub fn object(pairs: &[(&str, Value)]) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert((*k).to_string(), v.clone());
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> LabelSchema {
        serde_json::from_value(json!({
            "fields": [
                {"name": "sentiment", "kind": "single_choice", "options": ["pos", "neg", "neutral"]},
                {"name": "topics", "kind": "multi_choice", "options": ["a", "b", "c"], "max_selected": 2, "required": false},
                {"name": "toxic", "kind": "boolean"},
                {"name": "score", "kind": "number", "min": 0, "max": 1, "step": 0.25, "required": false},
                {"name": "note", "kind": "text", "max_len": 10, "pattern": "[a-z ]*", "required": false},
                {"name": "quality", "kind": "rating", "max": 5, "required": false},
                {"name": "seen", "kind": "date", "required": false},
                {"name": "entities", "kind": "span", "source": "text", "labels": ["PER", "ORG"], "required": false}
            ]
        }))
        .unwrap()
    }

    fn sample() -> Value {
        json!({"text": "Ada works at Acme"})
    }

    #[test]
    fn a_complete_valid_label_passes() {
        let payload = json!({
            "sentiment": "pos", "topics": ["a", "c"], "toxic": false, "score": 0.75, "note": "fine",
            "quality": 4, "seen": "2026-02-28",
            "entities": [{"start": 0, "end": 3, "label": "PER"}, {"start": 13, "end": 17, "label": "ORG"}]
        });
        assert_eq!(validate_label(&schema(), &sample(), &payload), vec![]);
        assert!(check_schema(&schema(), "/schema").is_empty());
    }

    #[test]
    fn each_invalid_field_is_reported_with_its_pointer() {
        let payload = json!({
            "sentiment": "great", "topics": ["a", "a", "z"], "toxic": "no", "score": 0.3, "note": "UPPER",
            "quality": 6, "seen": "2026-02-30", "entities": [{"start": 5, "end": 2, "label": "LOC"}], "extra": 1
        });
        let errs = validate_label(&schema(), &sample(), &payload);
        let ptrs: Vec<&str> = errs.iter().map(|e| e.pointer.as_str()).collect();
        for p in [
            "/payload/extra",
            "/payload/sentiment",
            "/payload/topics/1",
            "/payload/topics/2",
            "/payload/toxic",
            "/payload/score",
            "/payload/note",
            "/payload/quality",
            "/payload/seen",
            "/payload/entities/0/end",
            "/payload/entities/0/label",
        ] {
            assert!(ptrs.contains(&p), "missing {p} in {ptrs:?}");
        }
    }

    #[test]
    fn required_fields_must_be_present_and_payload_must_be_an_object() {
        let errs = validate_label(&schema(), &sample(), &json!({}));
        assert_eq!(errs.len(), 2);
        assert_eq!(validate_label(&schema(), &sample(), &json!([1]))[0].pointer, "/payload");
    }

    #[test]
    fn spans_beyond_the_text_or_overlapping_are_rejected() {
        let base = json!({"sentiment": "pos", "toxic": true});
        let mut p = base.clone();
        p["entities"] = json!([{"start": 0, "end": 18, "label": "PER"}]);
        assert_eq!(validate_label(&schema(), &sample(), &p)[0].pointer, "/payload/entities/0/end");
        p["entities"] =
            json!([{"start": 0, "end": 5, "label": "PER"}, {"start": 3, "end": 8, "label": "ORG"}]);
        assert_eq!(validate_label(&schema(), &sample(), &p)[0].pointer, "/payload/entities/1");
        // offsets count characters, not bytes
        let uni = json!({"text": "Zoë Ünal"});
        p["entities"] = json!([{"start": 4, "end": 8, "label": "PER"}]);
        assert!(validate_label(&schema(), &uni, &p).is_empty());
    }

    #[test]
    fn bad_schemas_are_rejected_with_pointers() {
        let bad: LabelSchema = serde_json::from_value(json!({"fields": [
            {"name": "Bad Name", "kind": "boolean"},
            {"name": "x", "kind": "single_choice", "options": []},
            {"name": "x", "kind": "text", "pattern": "(unclosed"},
            {"name": "r", "kind": "rating", "max": 1},
            {"name": "n", "kind": "number", "min": 5, "max": 1, "step": 0}
        ]}))
        .unwrap();
        let ptrs: Vec<String> = check_schema(&bad, "/schema").into_iter().map(|e| e.pointer).collect();
        for p in [
            "/schema/fields/0/name",
            "/schema/fields/1/options",
            "/schema/fields/2/name",
            "/schema/fields/2/pattern",
            "/schema/fields/3/max",
            "/schema/fields/4/min",
            "/schema/fields/4/step",
        ] {
            assert!(ptrs.iter().any(|x| x == p), "missing {p} in {ptrs:?}");
        }
    }

    #[test]
    fn schema_hash_ignores_key_order() {
        let a = schema();
        let b: LabelSchema = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(schema_hash(&a), schema_hash(&b));
        assert_eq!(canonical_json(&json!({"b": 1, "a": [true, null]})), r#"{"a":[true,null],"b":1}"#);
    }
}
