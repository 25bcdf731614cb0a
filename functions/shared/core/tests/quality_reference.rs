//! The quality measures on random data against the reference implementations from PyPI: `krippendorff`
//! (α nominal, ordinal, interval, ratio, with missing values), `statsmodels` (`fleiss_kappa`),
//! `scikit-learn` (`cohen_kappa_score`) and `crowd-kit` (`DawidSkene`, with and without gold), to 1e-9.
//!
//! The Python side is `quality_reference.py`, run by the repository's `.venv/bin/python` (infra/test.sh
//! installs the pinned libraries there) or `$ANVIL_PYTHON`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use anvil_core::quality::dawid_skene::{self, Answers};
use anvil_core::quality::measures::{self, Level};
use serde_json::{Value, json};

/// splitmix64: a small, seeded generator, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

fn python() -> String {
    if let Ok(p) = std::env::var("ANVIL_PYTHON") {
        return p;
    }
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../.venv/bin/python");
    if std::path::Path::new(venv).exists() {
        return venv.to_string();
    }
    panic!(
        "no Python with the reference libraries: run infra/test.sh (it installs krippendorff, statsmodels, \
         scikit-learn and crowd-kit into .venv) or set ANVIL_PYTHON"
    );
}

fn reference(cases: &Value) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/quality_reference.py");
    let mut child = Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    child.stdin.take().unwrap().write_all(cases.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "reference script failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("reference output is JSON")
}

fn same(what: &str, ours: Result<f64, measures::Undefined>, theirs: &Value) {
    match (ours, theirs.as_f64()) {
        (Ok(a), Some(b)) => assert!((a - b).abs() <= 1e-9, "{what}: ours {a}, reference {b}"),
        (Err(_), None) => {}
        (a, b) => panic!("{what}: ours {a:?}, reference {b:?}"),
    }
}

/// A coders × units matrix of values (None = missing) and the same as the values of each unit.
type Matrix = Vec<Vec<Option<f64>>>;

fn random_matrix(rng: &mut Rng) -> Matrix {
    let coders = 2 + rng.below(5) as usize;
    let units = 3 + rng.below(60) as usize;
    let values = 2 + rng.below(6);
    let missing = rng.below(40) as f64 / 100.0;
    // Values spread unevenly (1, 2, 4, 7, ...), so interval, ordinal and ratio differ.
    (0..coders)
        .map(|_| {
            (0..units)
                .map(|_| {
                    (!rng.chance(missing)).then(|| {
                        let v = rng.below(values) as f64;
                        1.0 + v * (v + 1.0) / 2.0
                    })
                })
                .collect()
        })
        .collect()
}

fn units_of(m: &Matrix) -> Vec<Vec<f64>> {
    (0..m[0].len()).map(|u| m.iter().filter_map(|coder| coder[u]).collect()).collect()
}

#[test]
fn measures_match_the_reference_implementations_on_random_data() {
    let mut rng = Rng(0x5EED_2026);
    let levels = [
        ("nominal", Level::Nominal),
        ("ordinal", Level::Ordinal),
        ("interval", Level::Interval),
        ("ratio", Level::Ratio),
    ];

    let mut alpha_cases = Vec::new();
    let mut ours_alpha = Vec::new();
    for i in 0..60 {
        let m = random_matrix(&mut rng);
        let (name, level) = levels[i % levels.len()];
        let units = units_of(&m);
        ours_alpha.push((format!("alpha {name} #{i}"), measures::alpha(&units, level)));
        alpha_cases.push(json!({"matrix": m, "level": name}));
        if level == Level::Nominal {
            // The streaming nominal α on category codes agrees with the numeric one.
            let codes: Vec<Vec<usize>> =
                units.iter().map(|u| u.iter().map(|&x| x as usize).collect()).collect();
            let a = measures::alpha(&units, Level::Nominal);
            let b = measures::nominal_alpha(&codes);
            assert_eq!(a.is_ok(), b.is_ok());
            if let (Ok(a), Ok(b)) = (a, b) {
                assert!((a - b).abs() < 1e-12, "nominal α two ways: {a} vs {b}");
            }
        }
    }

    let mut fleiss_cases = Vec::new();
    let mut ours_fleiss = Vec::new();
    for _ in 0..20 {
        let raters = 2 + rng.below(6) as usize;
        let cats = 2 + rng.below(5) as usize;
        let subjects = 2 + rng.below(80) as usize;
        let table: Vec<Vec<f64>> = (0..subjects)
            .map(|_| {
                let mut row = vec![0.0; cats];
                // A skew toward the first category, so κ is not always near 0.
                let lean = rng.below(cats as u64) as usize;
                for _ in 0..raters {
                    let c = if rng.chance(0.5) { lean } else { rng.below(cats as u64) as usize };
                    row[c] += 1.0;
                }
                row
            })
            .collect();
        ours_fleiss.push(measures::fleiss_kappa(&table));
        fleiss_cases.push(json!(table));
    }

    let mut cohen_cases = Vec::new();
    let mut ours_cohen = Vec::new();
    for _ in 0..20 {
        let n = 2 + rng.below(100) as usize;
        let cats = 2 + rng.below(4);
        let p = rng.below(90) as f64 / 100.0;
        let pairs: Vec<(usize, usize)> = (0..n)
            .map(|_| {
                let a = rng.below(cats) as usize;
                let b = if rng.chance(p) { a } else { rng.below(cats) as usize };
                (a, b)
            })
            .collect();
        ours_cohen.push(measures::cohen_kappa(&pairs));
        let (a, b): (Vec<usize>, Vec<usize>) = pairs.into_iter().unzip();
        cohen_cases.push(json!([a, b]));
    }

    // Dawid–Skene: labelers of different reliability on 3 classes; the second case anchors 10 % gold.
    let mut ds_cases = Vec::new();
    let mut ds_inputs = Vec::new();
    for case in 0..3 {
        let (tasks, labelers, classes) = (150 + 50 * case, 7, 3);
        let accuracy: Vec<f64> = (0..labelers).map(|w| [0.9, 0.85, 0.75, 0.6, 0.45, 0.35, 0.34][w]).collect();
        let truth: Vec<usize> = (0..tasks).map(|_| rng.below(classes as u64) as usize).collect();
        let mut answers: Vec<Vec<(usize, usize)>> = vec![Vec::new(); tasks];
        let mut rows = Vec::new();
        for (t, &c) in truth.iter().enumerate() {
            for (w, &acc) in accuracy.iter().enumerate() {
                if rng.chance(0.45) {
                    continue;
                }
                let l = if rng.chance(acc) { c } else { rng.below(classes as u64) as usize };
                answers[t].push((w, l));
                rows.push(json!([t, w, l]));
            }
            if answers[t].is_empty() {
                answers[t].push((0, c));
                rows.push(json!([t, 0, c]));
            }
        }
        let gold: Vec<Option<usize>> =
            (0..tasks).map(|t| (case == 1 && t % 10 == 0).then_some(truth[t])).collect();
        let gold_json: serde_json::Map<String, Value> =
            gold.iter().enumerate().filter_map(|(t, g)| g.map(|c| (t.to_string(), json!(c)))).collect();
        ds_cases.push(json!({"answers": rows, "gold": gold_json, "max_iter": 100, "tol": 1e-5}));
        ds_inputs.push((answers, gold, labelers, classes));
    }

    let theirs = reference(&json!({
        "alpha": alpha_cases, "fleiss": fleiss_cases, "cohen": cohen_cases, "dawid_skene": ds_cases,
    }));

    let mut defined = 0;
    for ((what, ours), r) in ours_alpha.into_iter().zip(theirs["alpha"].as_array().unwrap()) {
        defined += usize::from(ours.is_ok());
        same(&what, ours, r);
    }
    assert!(defined >= 50, "most random cases have a defined α ({defined} of 60)");
    for (i, (ours, r)) in ours_fleiss.into_iter().zip(theirs["fleiss"].as_array().unwrap()).enumerate() {
        same(&format!("fleiss #{i}"), ours, r);
    }
    for (i, (ours, r)) in ours_cohen.into_iter().zip(theirs["cohen"].as_array().unwrap()).enumerate() {
        same(&format!("cohen #{i}"), ours, r);
    }
    for (case, ((answers, gold, labelers, classes), r)) in
        ds_inputs.into_iter().zip(theirs["dawid_skene"].as_array().unwrap()).enumerate()
    {
        assert_eq!(r["classes"], json!((0..classes).collect::<Vec<_>>()), "every class was answered");
        let est = dawid_skene::estimate(&Answers { tasks: &answers, labelers, classes }, &gold, 100, 1e-5);
        let probas = r["probas"].as_object().unwrap();
        assert_eq!(probas.len(), answers.len());
        for (t, row) in est.probas.iter().enumerate() {
            let want = probas[&t.to_string()].as_array().unwrap();
            for (c, p) in row.iter().enumerate() {
                let w = want[c].as_f64().unwrap();
                assert!(
                    (p - w).abs() <= 1e-9,
                    "Dawid–Skene case {case}, task {t}, class {c}: ours {p}, crowd-kit {w}"
                );
            }
        }
        if case == 1 {
            for (t, g) in gold.iter().enumerate() {
                if let Some(c) = g {
                    assert_eq!(est.classes[t], *c, "gold anchors task {t}");
                }
            }
        }
    }
}
