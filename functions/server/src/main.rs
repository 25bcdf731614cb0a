//! `anvil`: the container, on-prem and local entry point.
//!
//! - `anvil serve`       every route group + the labeling app until SIGTERM/SIGINT; `--demo` seeds a demo queue
//! - `anvil worker`      run exports and imports from the job table until SIGTERM/SIGINT
//! - `anvil migrate`     apply the database migrations and exit
//! - `anvil healthcheck` exit 0 when this host's `anvil serve` answers /health/ready (container health checks)
//! - `anvil bench`       size a deployment: loop, floor, compare, scale, export, sqlite-loop (BENCHMARKS.md)
//! - `anvil token`       mint a JWT for a tenant/subject/role with the configured (or local) HS256 secret

mod bench;
mod demo;
mod oidc;
mod runtime;

use std::time::Duration;

use anvil_core::config::Config;
use anvil_core::domain::{Subject, TenantId};
use anvil_types::Role;
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "anvil", version, about = "Anvil: multi-tenant human data labeling")]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (and the labeling app when built) until SIGTERM/SIGINT.
    Serve {
        /// Seed a demo tenant, queue and samples (once) and print ready-to-use tokens.
        #[arg(long)]
        demo: bool,
    },
    /// Run background jobs (exports, imports) from the job table until SIGTERM/SIGINT.
    Worker,
    /// Apply the database migrations and exit.
    Migrate,
    /// Exit 0 when this host's `anvil serve` answers /health/ready with 200 (for container health checks).
    Healthcheck,
    /// Benchmarks to size a deployment: loop, floor, compare, scale, export, sqlite-loop (see BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Mint a JWT with the configured HS256 secret (or the embedded default's local secret).
    Token {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        subject: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Hours until the token expires.
        #[arg(long, default_value_t = 24)]
        ttl_hours: u64,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Labeler,
    Auditor,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Labeler => Role::Labeler,
            RoleArg::Auditor => Role::Auditor,
            RoleArg::Admin => Role::Admin,
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    anvil_core::telemetry::init_tracing(&cli.config.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("anvil: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "anvil failed");
            eprintln!("anvil: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = cli.config;
    match cli.command {
        Command::Serve { demo } => runtime::serve(cfg, demo).await,
        Command::Worker => runtime::worker(cfg).await,
        Command::Migrate => runtime::migrate(&cfg).await,
        Command::Healthcheck => runtime::healthcheck(&cfg).await,
        Command::Bench(args) => bench::run(cfg, args).await,
        Command::Token { tenant, subject, role, ttl_hours } => {
            let verifier = runtime::verifier(&cfg, None).await?;
            let tenant =
                TenantId::parse(&tenant).context("--tenant: 1..=64 characters of [A-Za-z0-9_.:@|-]")?;
            let subject = Subject::parse(&subject).context("--subject: 1..=255 characters")?;
            let token =
                verifier.mint(&tenant, &subject, role.into(), Duration::from_secs(ttl_hours * 3600))?;
            println!("{token}");
            Ok(())
        }
    }
}
