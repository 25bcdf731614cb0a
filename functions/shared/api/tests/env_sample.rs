//! `.env.sample` says it lists every setting with its default: it names every environment variable that clap
//! reads for `anvil_core::config::Config` and for the Lambda functions' `LambdaConfig`, and no `ANVIL_*`
//! variable that is not one; the Lambda-only ones are in the section that says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use clap::Args;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../..");

/// The header of the `.env.sample` section that holds the settings only the Lambda functions read.
const LAMBDA_SECTION: &str = "# ---- Lambda functions only";

/// Each variable of `.env.sample` with the section header above it.
fn env_sample() -> BTreeMap<String, String> {
    let path = Path::new(WORKSPACE).join(".env.sample");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut section = String::new();
    let mut vars = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("# ----") {
            section = line.to_string();
        } else if let Some((name, _default)) = line.split_once('=').filter(|_| !line.starts_with('#')) {
            let previous = vars.insert(name.trim().to_string(), section.clone());
            assert!(previous.is_none(), ".env.sample lists {name} twice");
        }
    }
    vars
}

/// The variables clap reads for `Config`, as `anvil` and every Lambda function parse it.
fn config_env() -> BTreeSet<String> {
    let cmd = anvil_core::config::Config::augment_args(clap::Command::new("anvil"));
    cmd.get_arguments().filter_map(|a| a.get_env()).map(|v| v.to_string_lossy().into_owned()).collect()
}

/// Every `env = "..."` of the workspace's sources (functions/*/src, not the vendored crates of
/// functions/shared/patches): the settings of `LambdaConfig`, which anvil-api cannot depend on, and any other.
fn env_attributes_in_sources() -> BTreeMap<String, String> {
    fn walk(dir: &Path, found: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy();
            if path.is_dir() {
                if !matches!(name.as_ref(), "patches" | "target" | "tests") {
                    walk(&path, found);
                }
            } else if name.ends_with(".rs") && path.components().any(|c| c.as_os_str() == "src") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split("env = \"").skip(1) {
                    let var = piece.split('"').next().unwrap().to_string();
                    let file = path.strip_prefix(WORKSPACE).unwrap_or(&path).display().to_string();
                    found.entry(var).or_insert(file);
                }
            }
        }
    }
    let mut found = BTreeMap::new();
    walk(&Path::new(WORKSPACE).join("functions"), &mut found);
    found
}

#[test]
fn env_sample_lists_every_setting_and_only_settings() {
    let sample = env_sample();
    let config = config_env();
    let in_sources = env_attributes_in_sources();
    assert!(
        config.contains("ANVIL_BIND") && in_sources.contains_key("ANVIL_DB_SECRET_ARN"),
        "{in_sources:?}"
    );
    let unseen: Vec<&String> = config.iter().filter(|v| !in_sources.contains_key(*v)).collect();
    assert!(unseen.is_empty(), "the scan of the sources misses settings of Config: {unseen:?}");

    let missing: Vec<String> = in_sources
        .iter()
        .filter(|(v, _)| !sample.contains_key(*v))
        .map(|(v, file)| format!("{v} ({file})"))
        .collect();
    assert!(missing.is_empty(), "settings missing from .env.sample: {missing:?}");

    let unknown: Vec<&String> =
        sample.keys().filter(|v| v.starts_with("ANVIL_") && !in_sources.contains_key(*v)).collect();
    assert!(unknown.is_empty(), ".env.sample lists variables that no setting reads: {unknown:?}");

    // Config's settings apply everywhere; the others only to the Lambda functions, and say so
    let misplaced: Vec<String> = sample
        .iter()
        .filter(|(v, _)| in_sources.contains_key(*v))
        .filter(|(v, section)| config.contains(*v) == section.starts_with(LAMBDA_SECTION))
        .map(|(v, section)| format!("{v} under {section:?}"))
        .collect();
    assert!(
        misplaced.is_empty(),
        "in .env.sample, the section {LAMBDA_SECTION:?} holds exactly the settings that are not Config's: \
         {misplaced:?}"
    );
}
