//! Gold (check) samples, free of UI (unit-tested natively): the settings form (the rate and the floor as
//! percentages, the exempt labelers) and how the server's 422 pointers land on its fields; gold items pasted
//! as JSON Lines and the server's `/items/N/...` pointers mapped back to the pasted line; a labeler's gold
//! accuracy and standing as the quality page shows them.

use std::collections::{BTreeMap, HashMap};

use anvil_types::{FieldError, GoldFloor, GoldSettings, LabelerQuality, NewGold};

use crate::model::{BadLines, parse_lines};

/// Most gold items per `POST /v1/queues/{id}/gold` (the server's limit); a longer paste goes in batches.
pub const MAX_GOLD_PER_BATCH: usize = 1000;
/// The code of the claim's 403 for a labeler under the queue's gold floor.
pub const BELOW_FLOOR: &str = "below_gold_floor";
/// A floor switched on in the form starts at these (a minimum accuracy in %, gold items before it applies).
pub const DEFAULT_MIN_ACCURACY: &str = "80";
pub const DEFAULT_AFTER: &str = "10";

// ---------------------------------------------------------------------------------------------------------
// Rates and accuracies as percentages
// ---------------------------------------------------------------------------------------------------------

/// A share (0…1) as the percentage an input shows: at most two decimals, no trailing zeros (`0.05` → `5`,
/// `0.125` → `12.5`, `0` → `0`).
pub fn share_to_percent(share: f64) -> String {
    if !share.is_finite() {
        return String::new();
    }
    let s = format!("{:.2}", (share * 100.0 * 100.0).round() / 100.0);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

/// A percentage as typed (`5`, `12.5`, `12,5`, `5 %`) as a share (`0.05`). Only whether it is a number is
/// checked here; its range is the server's to say (its 422 lands next to the field).
pub fn percent_to_share(text: &str) -> Result<f64, String> {
    let t = text.trim().trim_end_matches('%').trim_end().replace(',', ".");
    if t.is_empty() {
        return Err("Enter a percentage.".into());
    }
    match t.parse::<f64>() {
        Ok(p) if p.is_finite() => Ok(p / 100.0),
        _ => Err(format!("“{}” is not a number; enter a percentage such as 5 or 12.5.", text.trim())),
    }
}

/// The gold rate in words: "never (gold is off)", "one claim in 20", "about one claim in 33".
pub fn rate_in_words(rate: f64) -> String {
    if !rate.is_finite() || rate < 0.0 {
        return String::new();
    }
    if rate == 0.0 {
        return "never (gold is off)".into();
    }
    if rate >= 1.0 {
        return "every claim".into();
    }
    let n = 1.0 / rate;
    if (n - n.round()).abs() < 0.05 {
        format!("one claim in {}", n.round() as u64)
    } else {
        format!("about one claim in {}", n.round() as u64)
    }
}

// ---------------------------------------------------------------------------------------------------------
// The settings form
// ---------------------------------------------------------------------------------------------------------

/// The gold settings as the form edits them: text as typed, the floor switched on or off.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SettingsForm {
    /// The rate in percent of claims.
    pub rate: String,
    pub floor: bool,
    /// The floor's minimum accuracy in percent.
    pub min_accuracy: String,
    /// Gold items a labeler labels before the floor applies.
    pub after: String,
    pub exempt: Vec<String>,
}

/// A place in the settings form a problem belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SettingsField {
    Rate,
    MinAccuracy,
    After,
    /// The add box of the exempt list.
    NewExempt,
    /// One exempt labeler, by index.
    Exempt(usize),
    /// Not one field (shown above the Save button).
    Form,
}

/// Problems by field; several for one field are joined.
pub type SettingsErrors = BTreeMap<SettingsField, String>;

fn add_error(errs: &mut SettingsErrors, at: SettingsField, message: String) {
    match errs.get_mut(&at) {
        Some(m) => {
            m.push_str("; ");
            m.push_str(&message);
        }
        None => {
            errs.insert(at, message);
        }
    }
}

impl SettingsForm {
    pub fn from_settings(s: &GoldSettings) -> Self {
        let (floor, min_accuracy, after) = match &s.floor {
            Some(f) => (true, share_to_percent(f.min_accuracy), f.after.to_string()),
            None => (false, DEFAULT_MIN_ACCURACY.to_string(), DEFAULT_AFTER.to_string()),
        };
        SettingsForm { rate: share_to_percent(s.rate), floor, min_accuracy, after, exempt: s.exempt.clone() }
    }

    /// The settings to send; the fields that cannot be read as numbers otherwise (nothing is sent then).
    pub fn to_settings(&self) -> Result<GoldSettings, SettingsErrors> {
        let mut errs = SettingsErrors::new();
        let rate = percent_to_share(&self.rate).map_err(|e| errs.insert(SettingsField::Rate, e)).ok();
        let floor = if self.floor {
            let min = percent_to_share(&self.min_accuracy)
                .map_err(|e| errs.insert(SettingsField::MinAccuracy, e))
                .ok();
            let after = match self.after.trim().parse::<i32>() {
                Ok(n) => Some(n),
                Err(_) => {
                    errs.insert(
                        SettingsField::After,
                        "Enter a whole number of gold items (1 or more).".to_string(),
                    );
                    None
                }
            };
            min.zip(after).map(|(min_accuracy, after)| GoldFloor { min_accuracy, after })
        } else {
            None
        };
        match rate {
            Some(rate) if errs.is_empty() => Ok(GoldSettings { rate, floor, exempt: self.exempt.clone() }),
            _ => Err(errs),
        }
    }

    /// Adds a labeler to the exempt list (trimmed); `Err` says why not.
    pub fn add_exempt(&mut self, who: &str) -> Result<(), String> {
        let who = who.trim();
        if who.is_empty() {
            return Err("Type the labeler's name (their subject, as the quality page lists them).".into());
        }
        if self.exempt.iter().any(|e| e == who) {
            return Err(format!("{who} is already exempt."));
        }
        self.exempt.push(who.to_string());
        Ok(())
    }

    pub fn remove_exempt(&mut self, i: usize) {
        if i < self.exempt.len() {
            self.exempt.remove(i);
        }
    }
}

/// The field a pointer of the settings body names (`/rate`, `/floor/min_accuracy`, `/exempt/2`).
pub fn settings_field(pointer: &str) -> SettingsField {
    match pointer {
        "/rate" => SettingsField::Rate,
        "/floor/min_accuracy" => SettingsField::MinAccuracy,
        "/floor/after" => SettingsField::After,
        p => match p.strip_prefix("/exempt/").map(str::parse::<usize>) {
            Some(Ok(i)) => SettingsField::Exempt(i),
            _ => SettingsField::Form,
        },
    }
}

/// The server's 422 details by field. The server speaks in shares (0..=0.5) where the form shows
/// percentages, so those messages get the form's units first.
pub fn settings_errors(details: &[FieldError]) -> SettingsErrors {
    let mut errs = SettingsErrors::new();
    for d in details {
        let at = settings_field(&d.pointer);
        let message = match at {
            SettingsField::Rate => format!("From 0 to 50 % of claims (the server said: {})", d.message),
            SettingsField::MinAccuracy => format!("From 0 to 100 % (the server said: {})", d.message),
            SettingsField::Form => format!("{}: {}", d.pointer, d.message),
            _ => d.message.clone(),
        };
        add_error(&mut errs, at, message);
    }
    errs
}

// ---------------------------------------------------------------------------------------------------------
// Gold items pasted as JSON Lines
// ---------------------------------------------------------------------------------------------------------

/// Gold items read from a paste, each with the (1-based) line it came from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GoldBatch {
    pub items: Vec<NewGold>,
    pub lines: Vec<usize>,
}

impl GoldBatch {
    /// The line of the item with this external id.
    pub fn line_of(&self, external_id: &str) -> Option<usize> {
        self.items.iter().position(|g| g.external_id == external_id).map(|i| self.lines[i])
    }
}

/// Parses gold items, one `{"external_id", "payload", "answer"}` per line (blank lines skipped): a payload
/// and an answer that are JSON objects, the answer naming at least one field, every external id once.
/// Every bad line is reported; nothing is sent until the whole paste reads.
pub fn parse_gold_jsonl(text: &str) -> Result<GoldBatch, BadLines> {
    let check = |g: &NewGold| {
        if g.external_id.trim().is_empty() {
            Some("external_id is empty".to_string())
        } else if !g.payload.is_object() {
            Some("payload must be a JSON object".to_string())
        } else if !g.answer.as_object().is_some_and(|o| o.values().any(|v| !v.is_null())) {
            Some("answer must be a JSON object with the known value of at least one field".to_string())
        } else {
            None
        }
    };
    let rows = parse_lines(text, check);
    let mut bad = match &rows {
        Ok(_) => Vec::new(),
        Err(b) => b.clone(),
    };
    // The same external id twice: the second would silently replace the first one's answer.
    let text_lines: Vec<&str> = text.lines().collect();
    let mut first: HashMap<String, usize> = HashMap::new();
    for (n, line) in text_lines.iter().enumerate() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim()) else { continue };
        let Some(id) = v.get("external_id").and_then(|x| x.as_str()) else { continue };
        match first.get(id) {
            Some(&m) => bad.push((n + 1, format!("external_id `{id}` is also on line {m}"))),
            None => {
                first.insert(id.to_string(), n + 1);
            }
        }
    }
    if !bad.is_empty() {
        bad.sort_by_key(|b| b.0);
        return Err(bad);
    }
    let rows = rows.unwrap_or_default();
    let (lines, items) = rows.into_iter().unzip();
    Ok(GoldBatch { items, lines })
}

/// A problem the server found with one pasted item (or with the whole batch: `line` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemProblem {
    pub line: Option<usize>,
    /// Where in the item (`answer/sentiment`), empty for the whole item or batch.
    pub at: String,
    pub message: String,
}

/// `/items/3/answer/sentiment` of a batch whose items came from `lines` → the line of item 3 and
/// `answer/sentiment`. `None` when the pointer is not about one item of the batch.
pub fn pointer_line(pointer: &str, lines: &[usize]) -> Option<(usize, String)> {
    let rest = pointer.strip_prefix("/items/")?;
    let (index, at) = rest.split_once('/').unwrap_or((rest, ""));
    let line = *lines.get(index.parse::<usize>().ok()?)?;
    Some((line, at.replace("~1", "/").replace("~0", "~")))
}

/// The server's 422 details for a batch as problems by line (then the ones about the whole batch).
pub fn item_problems(details: &[FieldError], lines: &[usize]) -> Vec<ItemProblem> {
    let mut out: Vec<ItemProblem> = details
        .iter()
        .map(|d| match pointer_line(&d.pointer, lines) {
            Some((line, at)) => ItemProblem { line: Some(line), at, message: d.message.clone() },
            None => ItemProblem { line: None, at: d.pointer.clone(), message: d.message.clone() },
        })
        .collect();
    out.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    out
}

/// The external id a message names between backticks (the 409 `not_gold`: "`r-1` is an ordinary sample…").
pub fn named_id(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

// ---------------------------------------------------------------------------------------------------------
// A labeler's gold accuracy on the quality page
// ---------------------------------------------------------------------------------------------------------

/// Gold samples the labeler has labeled (0 without any).
pub fn gold_items(l: &LabelerQuality) -> u64 {
    l.gold.as_ref().map_or(0, |g| g.items)
}

/// The labeler's gold accuracy; `None` without gold labels or without a scored field.
pub fn gold_accuracy(l: &LabelerQuality) -> Option<f64> {
    l.gold.as_ref().filter(|g| g.scored > 0).map(|g| g.accuracy)
}

/// The badge of the labeler's standing against the floor: (CSS class, words).
pub fn gold_standing(l: &LabelerQuality) -> Option<(&'static str, &'static str)> {
    let g = l.gold.as_ref()?;
    if g.exempt {
        Some(("exempt", "exempt"))
    } else if g.below_floor {
        Some(("below-floor", "below floor"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rates_as_percentages_and_back() {
        assert_eq!(share_to_percent(0.05), "5");
        assert_eq!(share_to_percent(0.125), "12.5");
        assert_eq!(share_to_percent(0.07), "7", "no float noise");
        assert_eq!(share_to_percent(0.0), "0");
        assert_eq!(share_to_percent(0.5), "50");
        assert_eq!(share_to_percent(1.0 / 3.0), "33.33");
        assert_eq!(share_to_percent(0.75), "75");
        assert_eq!(percent_to_share("5"), Ok(0.05));
        assert_eq!(percent_to_share(" 12,5 % "), Ok(0.125));
        assert_eq!(percent_to_share("50%"), Ok(0.5));
        assert_eq!(percent_to_share("0"), Ok(0.0));
        assert_eq!(percent_to_share("60"), Ok(0.6), "the range is the server's to check");
        assert!(percent_to_share("").is_err());
        assert!(percent_to_share("five").unwrap_err().contains("not a number"));
        assert!(percent_to_share("inf").is_err());
        for p in ["0", "1", "2.5", "5", "7", "10", "12.5", "33.33", "50"] {
            assert_eq!(share_to_percent(percent_to_share(p).unwrap()), p, "round trip of {p}");
        }
    }

    #[test]
    fn rates_in_words() {
        assert_eq!(rate_in_words(0.0), "never (gold is off)");
        assert_eq!(rate_in_words(0.05), "one claim in 20");
        assert_eq!(rate_in_words(0.5), "one claim in 2");
        assert_eq!(rate_in_words(0.03), "about one claim in 33");
        assert_eq!(rate_in_words(0.1), "one claim in 10");
        assert_eq!(rate_in_words(-1.0), "");
    }

    #[test]
    fn the_form_reads_and_writes_settings() {
        let s = GoldSettings {
            rate: 0.05,
            floor: Some(GoldFloor { min_accuracy: 0.75, after: 4 }),
            exempt: vec!["carol".into()],
        };
        let f = SettingsForm::from_settings(&s);
        assert_eq!(
            (f.rate.as_str(), f.floor, f.min_accuracy.as_str(), f.after.as_str()),
            ("5", true, "75", "4")
        );
        assert_eq!(f.to_settings(), Ok(s));
        let off = SettingsForm::from_settings(&GoldSettings::default());
        assert!(!off.floor);
        assert_eq!((off.min_accuracy.as_str(), off.after.as_str()), (DEFAULT_MIN_ACCURACY, DEFAULT_AFTER));
        assert_eq!(off.to_settings(), Ok(GoldSettings::default()), "a floor switched off is not sent");
        let bad = SettingsForm {
            rate: "x".into(),
            floor: true,
            min_accuracy: "".into(),
            after: "2.5".into(),
            exempt: vec![],
        };
        let errs = bad.to_settings().unwrap_err();
        assert_eq!(
            errs.keys().copied().collect::<Vec<_>>(),
            [SettingsField::Rate, SettingsField::MinAccuracy, SettingsField::After]
        );
        // A floor that is off is not read at all.
        let ignored = SettingsForm { floor: false, ..bad.clone() };
        assert_eq!(ignored.to_settings().unwrap_err().len(), 1);
    }

    #[test]
    fn exempt_labelers_are_added_once_and_removed() {
        let mut f = SettingsForm::default();
        assert!(f.add_exempt("  ").is_err());
        f.add_exempt(" bob ").unwrap();
        f.add_exempt("alice").unwrap();
        assert!(f.add_exempt("bob").unwrap_err().contains("already"));
        assert_eq!(f.exempt, ["bob", "alice"]);
        f.remove_exempt(0);
        f.remove_exempt(7);
        assert_eq!(f.exempt, ["alice"]);
    }

    #[test]
    fn server_pointers_land_on_the_settings_fields_in_the_forms_units() {
        assert_eq!(settings_field("/rate"), SettingsField::Rate);
        assert_eq!(settings_field("/floor/min_accuracy"), SettingsField::MinAccuracy);
        assert_eq!(settings_field("/floor/after"), SettingsField::After);
        assert_eq!(settings_field("/exempt/2"), SettingsField::Exempt(2));
        assert_eq!(settings_field("/exempt"), SettingsField::Form);
        let errs = settings_errors(&[
            FieldError::new("/rate", "must be 0..=0.5 (0.05 is one claim in 20)"),
            FieldError::new("/floor/after", "must be 1..=100000"),
            FieldError::new("/exempt/1", "not a valid labeler subject"),
            FieldError::new("/exempt", "at most 10000 labelers"),
            FieldError::new("/floor/after", "again"),
        ]);
        assert!(errs[&SettingsField::Rate].starts_with("From 0 to 50 % of claims"));
        assert!(errs[&SettingsField::Rate].contains("must be 0..=0.5"));
        assert_eq!(errs[&SettingsField::After], "must be 1..=100000; again");
        assert_eq!(errs[&SettingsField::Exempt(1)], "not a valid labeler subject");
        assert_eq!(errs[&SettingsField::Form], "/exempt: at most 10000 labelers");
    }

    const G1: &str =
        r#"{"external_id": "g-1", "payload": {"text": "a"}, "answer": {"sentiment": "positive"}}"#;
    const G2: &str =
        r#"{"external_id": "g-2", "payload": {"text": "b"}, "answer": {"sentiment": "negative"}}"#;

    #[test]
    fn gold_lines_keep_their_line_numbers() {
        let b = parse_gold_jsonl(&format!("{G1}\n\n  \n{G2}\n")).unwrap();
        assert_eq!(b.lines, [1, 4]);
        assert_eq!(b.items[1].external_id, "g-2");
        assert_eq!(b.items[1].answer, json!({"sentiment": "negative"}));
        assert_eq!(b.line_of("g-2"), Some(4));
        assert_eq!(b.line_of("nope"), None);
        assert_eq!(parse_gold_jsonl("").unwrap(), GoldBatch::default());
    }

    #[test]
    fn bad_gold_lines_are_each_reported() {
        let text = [
            G1,
            r#"{"external_id": "g-3", "payload": {"text": "c"}}"#,
            r#"{"external_id": "g-4", "payload": {"text": "d"}, "answer": {}}"#,
            r#"{"external_id": "g-5", "payload": "text", "answer": {"x": 1}}"#,
            r#"{"external_id": "g-6", "payload": {}, "answer": {"x": null}}"#,
            "not json",
            r#"{"external_id": "g-7", "payload": {}, "answer": {"x": 1}, "priority": 3}"#,
            G1,
        ]
        .join("\n");
        let errs = parse_gold_jsonl(&text).unwrap_err();
        assert_eq!(errs.iter().map(|e| e.0).collect::<Vec<_>>(), [2, 3, 4, 5, 6, 7, 8]);
        assert!(errs[0].1.contains("answer"), "{:?}", errs[0]);
        assert!(errs[1].1.contains("at least one field"));
        assert!(errs[2].1.contains("payload"));
        assert!(errs[3].1.contains("at least one field"), "a null answer knows nothing");
        assert!(errs[5].1.contains("priority"), "unknown fields are refused: {:?}", errs[5]);
        assert_eq!(errs[6].1, "external_id `g-1` is also on line 1");
    }

    #[test]
    fn server_pointers_map_back_to_pasted_lines() {
        let lines = [1, 2, 4, 7];
        assert_eq!(
            pointer_line("/items/0/answer/sentiment", &[1, 2, 3]),
            Some((1, "answer/sentiment".into()))
        );
        assert_eq!(
            pointer_line("/items/3/answer/sentiment", &[1, 2, 3, 4]),
            Some((4, "answer/sentiment".into()))
        );
        assert_eq!(pointer_line("/items/2/answer/sentiment", &lines), Some((4, "answer/sentiment".into())));
        assert_eq!(pointer_line("/items/3", &lines), Some((7, String::new())));
        assert_eq!(pointer_line("/items/1/answer/a~1b~0c", &lines), Some((2, "answer/a/b~c".into())));
        assert_eq!(pointer_line("/items/9/answer", &lines), None, "not an item of this batch");
        assert_eq!(pointer_line("/items", &lines), None);
        assert_eq!(pointer_line("/items/x/answer", &lines), None);
        let problems = item_problems(
            &[
                FieldError::new("/items", "at least one gold item"),
                FieldError::new("/items/3/answer/sentiment", "must be one of positive, negative"),
                FieldError::new("/items/1/external_id", "appears twice in this batch"),
            ],
            &lines,
        );
        assert_eq!(
            problems,
            [
                ItemProblem {
                    line: Some(2),
                    at: "external_id".into(),
                    message: "appears twice in this batch".into()
                },
                ItemProblem {
                    line: Some(7),
                    at: "answer/sentiment".into(),
                    message: "must be one of positive, negative".into()
                },
                ItemProblem { line: None, at: "/items".into(), message: "at least one gold item".into() },
            ]
        );
    }

    #[test]
    fn a_conflict_names_its_external_id() {
        let m = "`r-1` is an ordinary sample of this queue; a gold sample needs its own external id";
        assert_eq!(named_id(m), Some("r-1"));
        assert_eq!(named_id("no id here"), None);
        assert_eq!(named_id("`unclosed"), None);
    }

    fn labeler(gold: serde_json::Value) -> LabelerQuality {
        serde_json::from_value(json!({
            "labeler": "bob", "labels": 3, "agreement_with_others": null, "agreement_with_majority": null,
            "fields": [], "gold": gold,
        }))
        .expect("a labeler row")
    }

    #[test]
    fn gold_accuracy_and_standing() {
        let none = labeler(json!(null));
        assert_eq!((gold_items(&none), gold_accuracy(&none), gold_standing(&none)), (0, None, None));
        let g = |scored: u64, correct: u64, below: bool, exempt: bool| {
            json!({"items": 2, "scored": scored, "correct": correct,
                "accuracy": if scored > 0 { correct as f64 / scored as f64 } else { 0.0 },
                "below_floor": below, "exempt": exempt, "fields": []})
        };
        let below = labeler(g(4, 1, true, false));
        assert_eq!(gold_items(&below), 2);
        assert_eq!(gold_accuracy(&below), Some(0.25));
        assert_eq!(gold_standing(&below), Some(("below-floor", "below floor")));
        let exempt = labeler(g(4, 0, false, true));
        assert_eq!(gold_standing(&exempt), Some(("exempt", "exempt")));
        let unscored = labeler(g(0, 0, false, false));
        assert_eq!(gold_accuracy(&unscored), None, "nothing scored is no accuracy, not 0 %");
        assert_eq!(gold_standing(&unscored), None);
    }
}
