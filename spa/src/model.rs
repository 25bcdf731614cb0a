//! The labeling form's model, free of any UI: the schema's fields as the app reads them, the value a labeler
//! has entered for each, the label payload built from those values, and the word/character cursor used to
//! select spans with the keyboard.

use std::collections::BTreeMap;

use anvil_types::schema::Span;
use anvil_types::{FieldKind, SchemaField};
use serde_json::{Map, Value, json};

/// A schema as the labeling view renders it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schema {
    pub instructions: String,
    pub fields: Vec<FieldSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    pub name: String,
    pub title: String,
    pub required: bool,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Known(FieldKind),
    /// A kind this build does not know: edited as raw JSON.
    Unknown {
        kind: String,
    },
}

impl Schema {
    /// Reads a schema leniently: each field on its own, so one unknown kind does not lose the others.
    pub fn from_json(v: &Value) -> Schema {
        let instructions = v.get("instructions").and_then(Value::as_str).unwrap_or_default().to_string();
        let fields = v
            .get("fields")
            .and_then(Value::as_array)
            .map(|fs| fs.iter().map(FieldSpec::from_json).collect())
            .unwrap_or_default();
        Schema { instructions, fields }
    }

    pub fn from_schema(s: &anvil_types::LabelSchema) -> Schema {
        Schema {
            instructions: s.instructions.clone(),
            fields: s.fields.iter().map(FieldSpec::from_field).collect(),
        }
    }

    /// Index of the field a JSON pointer into a submit body (`/payload/<name>/...`) is about.
    pub fn field_of_pointer(&self, pointer: &str) -> Option<usize> {
        let rest = pointer.strip_prefix("/payload/")?;
        let token = rest.split('/').next()?;
        let name = token.replace("~1", "/").replace("~0", "~");
        self.fields.iter().position(|f| f.name == name)
    }
}

impl FieldSpec {
    fn from_field(f: &SchemaField) -> FieldSpec {
        FieldSpec {
            name: f.name.clone(),
            title: if f.title.is_empty() { f.name.clone() } else { f.title.clone() },
            required: f.required,
            kind: Kind::Known(f.kind.clone()),
        }
    }

    fn from_json(v: &Value) -> FieldSpec {
        if let Ok(f) = serde_json::from_value::<SchemaField>(v.clone()) {
            return FieldSpec::from_field(&f);
        }
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let name = s("name");
        let title = s("title");
        FieldSpec {
            title: if title.is_empty() { name.clone() } else { title },
            name,
            required: v.get("required").and_then(Value::as_bool).unwrap_or(true),
            kind: Kind::Unknown { kind: s("kind") },
        }
    }

    /// Whether the field is edited by typing (its input takes the keyboard while focused).
    pub fn is_typed(&self) -> bool {
        matches!(
            self.kind,
            Kind::Unknown { .. }
                | Kind::Known(FieldKind::Number { .. })
                | Kind::Known(FieldKind::Text { .. })
                | Kind::Known(FieldKind::Date)
        )
    }

    pub fn kind_name(&self) -> &str {
        match &self.kind {
            Kind::Known(k) => k.name(),
            Kind::Unknown { kind } => kind,
        }
    }
}

/// What the labeler has entered for one field.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum FieldValue {
    Choice(Option<String>),
    Multi(Vec<String>),
    Bool(Option<bool>),
    /// The text of the number input, parsed on submit.
    Number(String),
    Text(String),
    Rating(Option<u32>),
    /// `YYYY-MM-DD` or empty.
    Date(String),
    Spans(Vec<Span>),
    /// The raw JSON of a field of an unknown kind.
    Json(String),
}

impl FieldValue {
    pub fn empty(kind: &Kind) -> FieldValue {
        match kind {
            Kind::Known(k) => match k {
                FieldKind::SingleChoice { .. } => FieldValue::Choice(None),
                FieldKind::MultiChoice { .. } => FieldValue::Multi(Vec::new()),
                FieldKind::Boolean => FieldValue::Bool(None),
                FieldKind::Number { .. } => FieldValue::Number(String::new()),
                FieldKind::Text { .. } => FieldValue::Text(String::new()),
                FieldKind::Rating { .. } => FieldValue::Rating(None),
                FieldKind::Date => FieldValue::Date(String::new()),
                FieldKind::Span { .. } => FieldValue::Spans(Vec::new()),
            },
            Kind::Unknown { .. } => FieldValue::Json(String::new()),
        }
    }

    /// Whether this value is of the shape a field of `kind` holds (a stored draft may predate a schema change).
    pub fn fits(&self, kind: &Kind) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(&FieldValue::empty(kind))
    }

    /// The value of this field in a label payload; `None` leaves the field out (nothing entered).
    /// `Err` is a problem the labeler can fix before anything is sent.
    pub fn to_json(&self) -> Result<Option<Value>, String> {
        Ok(match self {
            FieldValue::Choice(c) => c.as_ref().map(|c| json!(c)),
            // An empty list is an answer ("none of these"), not a missing one.
            FieldValue::Multi(v) => Some(json!(v)),
            FieldValue::Bool(b) => b.map(Value::Bool),
            FieldValue::Number(s) => {
                let t = s.trim();
                if t.is_empty() {
                    None
                } else {
                    let n: f64 = t.parse().map_err(|_| "not a number".to_string())?;
                    let n = serde_json::Number::from_f64(n).ok_or("not a finite number")?;
                    // Whole numbers go out as integers so they read back as typed.
                    Some(if n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                        json!(n.as_f64().unwrap_or_default() as i64)
                    } else {
                        Value::Number(n)
                    })
                }
            }
            FieldValue::Text(s) => (!s.is_empty()).then(|| json!(s)),
            FieldValue::Rating(r) => r.map(|r| json!(r)),
            FieldValue::Date(s) => (!s.is_empty()).then(|| json!(s)),
            FieldValue::Spans(v) => Some(json!(v)),
            FieldValue::Json(s) => {
                if s.trim().is_empty() {
                    None
                } else {
                    Some(serde_json::from_str(s).map_err(|e| format!("not valid JSON: {e}"))?)
                }
            }
        })
    }

    /// The value a stored label holds for a field (for showing labels and restoring input).
    pub fn from_json(kind: &Kind, v: Option<&Value>) -> FieldValue {
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return FieldValue::empty(kind);
        };
        match (kind, FieldValue::empty(kind)) {
            (_, FieldValue::Choice(_)) => FieldValue::Choice(v.as_str().map(str::to_string)),
            (_, FieldValue::Multi(_)) => FieldValue::Multi(
                v.as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                    .unwrap_or_default(),
            ),
            (_, FieldValue::Bool(_)) => FieldValue::Bool(v.as_bool()),
            (_, FieldValue::Number(_)) => FieldValue::Number(v.to_string()),
            (_, FieldValue::Text(_)) => FieldValue::Text(v.as_str().unwrap_or_default().to_string()),
            (_, FieldValue::Rating(_)) => FieldValue::Rating(v.as_u64().map(|r| r as u32)),
            (_, FieldValue::Date(_)) => FieldValue::Date(v.as_str().unwrap_or_default().to_string()),
            (_, FieldValue::Spans(_)) => {
                FieldValue::Spans(serde_json::from_value(v.clone()).unwrap_or_default())
            }
            (_, FieldValue::Json(_)) => FieldValue::Json(v.to_string()),
        }
    }
}

/// Builds the label payload from the form; on failure, the problems by field index.
pub fn build_payload(schema: &Schema, values: &[FieldValue]) -> Result<Value, BTreeMap<usize, String>> {
    let mut out = Map::new();
    let mut errs = BTreeMap::new();
    for (i, (f, v)) in schema.fields.iter().zip(values).enumerate() {
        match v.to_json() {
            Ok(Some(j)) => {
                out.insert(f.name.clone(), j);
            }
            Ok(None) => {}
            Err(e) => {
                errs.insert(i, e);
            }
        }
    }
    if errs.is_empty() { Ok(Value::Object(out)) } else { Err(errs) }
}

/// The text of a sample that a span field annotates (`payload[source]`), if it is a string.
pub fn span_source<'a>(payload: &'a Value, source: &str) -> Option<&'a str> {
    payload.get(source).and_then(Value::as_str)
}

// ---------------------------------------------------------------------------------------------------------
// Span selection with the keyboard: offsets are in chars (Unicode scalar values), like the server's.
// ---------------------------------------------------------------------------------------------------------

/// The words of a text as char ranges: runs of letters/digits (with inner `'` `-` `.` between them, so
/// "partner's" and "4K" stay whole), and every other non-space char on its own.
pub fn words(text: &str) -> Vec<(usize, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() {
            let start = i;
            i += 1;
            while i < chars.len() {
                let c = chars[i];
                let joiner = matches!(c, '\'' | '’' | '-' | '.')
                    && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric())
                    && chars[i - 1].is_alphanumeric();
                if c.is_alphanumeric() || joiner {
                    i += 1;
                } else {
                    break;
                }
            }
            out.push((start, i));
        } else {
            out.push((i, i + 1));
            i += 1;
        }
    }
    out
}

/// A selection over a text: `anchor` stays put, `focus` moves; the selected range is between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    pub anchor: usize,
    pub focus: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorMove {
    /// Select the next / previous word.
    NextWord,
    PrevWord,
    /// Move the end of the selection by a word (grow / shrink).
    GrowWord,
    ShrinkWord,
    /// Move the end of the selection by one character.
    EndRight,
    EndLeft,
    /// Move the start of the selection by one character.
    StartRight,
    StartLeft,
}

impl Cursor {
    pub fn range(&self) -> (usize, usize) {
        (self.anchor.min(self.focus), self.anchor.max(self.focus))
    }

    pub fn is_empty(&self) -> bool {
        self.anchor == self.focus
    }

    /// The cursor after a move over `text`; `None` (no cursor yet) starts at the first word.
    pub fn moved(cur: Option<Cursor>, text: &str, m: CursorMove) -> Option<Cursor> {
        let ws = words(text);
        let len = text.chars().count();
        let first = ws.first().map(|&(s, e)| Cursor { anchor: s, focus: e });
        let Some(c) = cur else {
            return match m {
                CursorMove::PrevWord => ws.last().map(|&(s, e)| Cursor { anchor: s, focus: e }),
                _ => first,
            };
        };
        let (start, end) = c.range();
        let select = |(s, e): (usize, usize)| Cursor { anchor: s, focus: e };
        Some(match m {
            CursorMove::NextWord => ws.iter().find(|&&(s, _)| s >= end).copied().map(select).unwrap_or(c),
            CursorMove::PrevWord => {
                ws.iter().rev().find(|&&(_, e)| e <= start).copied().map(select).unwrap_or(c)
            }
            CursorMove::GrowWord => match ws.iter().find(|&&(_, e)| e > end) {
                Some(&(_, e)) => Cursor { anchor: start, focus: e },
                None => c,
            },
            CursorMove::ShrinkWord => match ws.iter().rev().find(|&&(_, e)| e < end && e > start) {
                Some(&(_, e)) => Cursor { anchor: start, focus: e },
                None => c,
            },
            CursorMove::EndRight => Cursor { anchor: start, focus: (end + 1).min(len) },
            CursorMove::EndLeft => {
                Cursor { anchor: start, focus: end.saturating_sub(1).max(start + 1).min(end) }
            }
            CursorMove::StartRight => {
                Cursor { anchor: (start + 1).min(end.saturating_sub(1)).max(start), focus: end }
            }
            CursorMove::StartLeft => Cursor { anchor: start.saturating_sub(1), focus: end },
        })
    }
}

/// Adds a span; without `allow_overlap`, spans it overlaps are replaced (re-tagging a range).
pub fn add_span(spans: &[Span], new: Span, allow_overlap: bool) -> Vec<Span> {
    let mut out: Vec<Span> = spans
        .iter()
        .filter(|s| {
            if allow_overlap {
                !(s.start == new.start && s.end == new.end && s.label == new.label)
            } else {
                s.end <= new.start || s.start >= new.end
            }
        })
        .cloned()
        .collect();
    out.push(new);
    out.sort_by_key(|s| (s.start, s.end));
    out
}

/// Removes the spans that overlap `[start, end)`.
pub fn remove_spans(spans: &[Span], start: usize, end: usize) -> Vec<Span> {
    spans.iter().filter(|s| (s.end as usize) <= start || (s.start as usize) >= end).cloned().collect()
}

/// The chars `[start, end)` of a text.
pub fn slice_chars(text: &str, start: usize, end: usize) -> String {
    text.chars().skip(start).take(end.saturating_sub(start)).collect()
}

/// Converts an offset in UTF-16 code units (what the DOM counts) into chars within `text`.
pub fn utf16_to_chars(text: &str, units: u32) -> usize {
    let mut seen = 0u32;
    for (i, c) in text.chars().enumerate() {
        if seen >= units {
            return i;
        }
        seen += c.len_utf16() as u32;
    }
    text.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "Bought the AeroPress for my partner's birthday. Acme Corp, 4K!";

    #[test]
    fn words_keep_inner_apostrophes_and_split_punctuation() {
        let ws: Vec<String> = words(TEXT).into_iter().map(|(s, e)| slice_chars(TEXT, s, e)).collect();
        assert_eq!(
            ws,
            [
                "Bought",
                "the",
                "AeroPress",
                "for",
                "my",
                "partner's",
                "birthday",
                ".",
                "Acme",
                "Corp",
                ",",
                "4K",
                "!"
            ]
        );
    }

    #[test]
    fn the_keyboard_cursor_walks_words_and_grows_by_word_and_char() {
        let c = Cursor::moved(None, TEXT, CursorMove::NextWord).unwrap();
        assert_eq!(c.range(), (0, 6));
        let c = Cursor::moved(Some(c), TEXT, CursorMove::NextWord).unwrap();
        assert_eq!(c.range(), (7, 10));
        let c = Cursor::moved(Some(c), TEXT, CursorMove::GrowWord).unwrap();
        assert_eq!(c.range(), (7, 20));
        let c = Cursor::moved(Some(c), TEXT, CursorMove::ShrinkWord).unwrap();
        assert_eq!(c.range(), (7, 10));
        let c = Cursor::moved(Some(c), TEXT, CursorMove::EndRight).unwrap();
        assert_eq!(c.range(), (7, 11));
        let c = Cursor::moved(Some(c), TEXT, CursorMove::StartLeft).unwrap();
        assert_eq!(c.range(), (6, 11));
        let c = Cursor::moved(Some(c), TEXT, CursorMove::PrevWord).unwrap();
        assert_eq!(c.range(), (0, 6));
    }

    #[test]
    fn a_selection_never_shrinks_to_nothing() {
        let c = Cursor { anchor: 7, focus: 8 };
        assert_eq!(Cursor::moved(Some(c), TEXT, CursorMove::EndLeft).unwrap().range(), (7, 8));
        assert_eq!(Cursor::moved(Some(c), TEXT, CursorMove::StartRight).unwrap().range(), (7, 8));
        assert_eq!(Cursor::moved(Some(c), TEXT, CursorMove::ShrinkWord).unwrap().range(), (7, 8));
    }

    #[test]
    fn tagging_an_overlapping_range_replaces_the_old_span() {
        let s = |a, b, l: &str| Span { start: a, end: b, label: l.into() };
        let spans = add_span(&[s(0, 6, "PER")], s(0, 10, "ORG"), false);
        assert_eq!(spans, vec![s(0, 10, "ORG")]);
        let spans = add_span(&[s(0, 6, "PER")], s(0, 10, "ORG"), true);
        assert_eq!(spans.len(), 2);
        assert_eq!(remove_spans(&spans, 2, 3), vec![]);
    }

    #[test]
    fn payloads_leave_out_empty_fields_and_keep_numbers_whole() {
        let schema = Schema::from_json(&json!({"fields": [
            {"name": "a", "kind": "single_choice", "options": ["x"]},
            {"name": "n", "kind": "number"},
            {"name": "t", "kind": "text", "required": false},
            {"name": "m", "kind": "multi_choice", "options": ["x"]},
            {"name": "z", "kind": "polygon", "points": 3}
        ]}));
        assert!(matches!(schema.fields[4].kind, Kind::Unknown { .. }));
        let values = vec![
            FieldValue::Choice(Some("x".into())),
            FieldValue::Number("3".into()),
            FieldValue::Text(String::new()),
            FieldValue::Multi(vec![]),
            FieldValue::Json("[1, 2]".into()),
        ];
        assert_eq!(build_payload(&schema, &values).unwrap(), json!({"a": "x", "n": 3, "m": [], "z": [1, 2]}));
        let bad = vec![
            FieldValue::Choice(None),
            FieldValue::Number("three".into()),
            FieldValue::Text(String::new()),
            FieldValue::Multi(vec![]),
            FieldValue::Json("{".into()),
        ];
        let errs = build_payload(&schema, &bad).unwrap_err();
        assert_eq!(errs.keys().copied().collect::<Vec<_>>(), vec![1, 4]);
    }

    #[test]
    fn pointers_name_their_field() {
        let schema = Schema::from_json(&json!({"fields": [
            {"name": "a", "kind": "boolean"}, {"name": "b", "kind": "span", "source": "text", "labels": ["X"]}
        ]}));
        assert_eq!(schema.field_of_pointer("/payload/b/0/end"), Some(1));
        assert_eq!(schema.field_of_pointer("/payload/a"), Some(0));
        assert_eq!(schema.field_of_pointer("/payload"), None);
        assert_eq!(schema.field_of_pointer("/assignment_id"), None);
    }

    #[test]
    fn dom_offsets_in_utf16_become_char_offsets() {
        assert_eq!(utf16_to_chars("a😀b", 0), 0);
        assert_eq!(utf16_to_chars("a😀b", 1), 1);
        assert_eq!(utf16_to_chars("a😀b", 3), 2);
        assert_eq!(utf16_to_chars("a😀b", 4), 3);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Samples pasted as JSON Lines
// ---------------------------------------------------------------------------------------------------------

/// Lines of a paste that cannot be used: (1-based line number, why).
pub type BadLines = Vec<(usize, String)>;

/// Parses JSON Lines into `T`, each line on its own; blank lines are skipped. `check` refuses a line that reads
/// but is not right (`Some(reason)`). Every bad line is reported (1-based line numbers) so nothing is sent until
/// the whole paste is right; the good ones come with their line numbers (to map the server's answers back).
pub fn parse_lines<T: serde::de::DeserializeOwned>(
    text: &str,
    check: impl Fn(&T) -> Option<String>,
) -> Result<Vec<(usize, T)>, BadLines> {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(line) {
            Ok(v) => match check(&v) {
                Some(why) => bad.push((n + 1, why)),
                None => ok.push((n + 1, v)),
            },
            Err(e) => bad.push((n + 1, e.to_string())),
        }
    }
    if bad.is_empty() { Ok(ok) } else { Err(bad) }
}

/// Parses JSON Lines of `{external_id, payload, priority?}` (see [`parse_lines`]).
pub fn parse_jsonl(text: &str) -> Result<Vec<anvil_types::NewSample>, BadLines> {
    let samples = parse_lines(text, |s: &anvil_types::NewSample| {
        (!s.payload.is_object()).then(|| "payload must be a JSON object".to_string())
    })?;
    Ok(samples.into_iter().map(|(_, s)| s).collect())
}

#[cfg(test)]
mod jsonl_tests {
    use super::*;

    #[test]
    fn jsonl_reports_every_bad_line_by_number() {
        let text = "{\"external_id\": \"a\", \"payload\": {\"text\": \"x\"}}\n\n{\"external_id\": \"b\"}\nnope\n\
                    {\"external_id\": \"c\", \"payload\": 3}\n{\"external_id\": \"d\", \"payload\": {}, \"priority\": 2}";
        let errs = parse_jsonl(text).unwrap_err();
        assert_eq!(errs.iter().map(|e| e.0).collect::<Vec<_>>(), vec![3, 4, 5]);
        let ok = parse_jsonl("{\"external_id\": \"d\", \"payload\": {}, \"priority\": 2}\n").unwrap();
        assert_eq!(ok[0].priority, 2);
    }
}
