//! Logging set-up shared by `anvil` and the Lambda functions.

use tracing_subscriber::EnvFilter;

/// Tracing to stderr: JSON lines (containers, CloudWatch) or, with `format == "pretty"`, human-readable
/// colored lines for a terminal. `RUST_LOG` filters (default `info,sqlx=warn`). A second call keeps the first
/// subscriber (tests, or a main that initializes twice).
pub fn init_tracing(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let pretty = format == "pretty";
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(pretty);
    let res = if pretty {
        builder.try_init()
    } else {
        builder.json().with_current_span(true).with_span_list(false).try_init()
    };
    drop(res);
}
