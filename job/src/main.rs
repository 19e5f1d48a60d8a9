use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use unstoppable_contract::{exit_code, reason, JobConfig, RunResult, RunSummary};
use unstoppable_job::summary::{emit, RunClock};
use unstoppable_job::{backup, config, maintenance, restore, Error};

/// Backs up an FTPS server into a hot/cold rustic repository.
#[derive(Parser)]
#[command(name = "unstoppable-job", version, about)]
struct Cli {
    /// YAML configuration file; environment variables (and `.env`) override its keys.
    #[arg(long, short, env = "UNSTOPPABLE_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// A `.env` file to read (default: `.env` in the working directory, when present).
    #[arg(long, global = true)]
    env_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Back up the configured FTPS directory (the first run initialises the repository), then
    /// apply the retention rules to the resource's snapshots.
    Backup {
        /// Record the snapshot at this time instead of now, as `restic backup --time` does
        /// (RFC 3339, e.g. `2026-01-01T03:00:00Z`); the retention rules count from it too.
        #[arg(long, value_parser = parse_time)]
        time: Option<jiff::Zoned>,
    },
    /// Restore a snapshot to a local directory.
    Restore {
        /// `latest` or a snapshot id (prefix).
        #[arg(long, default_value = "latest")]
        snapshot: String,
        /// Only this path inside the snapshot.
        #[arg(long)]
        path: Option<String>,
        /// Directory to restore into (created when missing).
        #[arg(long)]
        target: PathBuf,
    },
    /// List the snapshots of the repository.
    Snapshots,
    /// Check the repository's integrity.
    Check {
        /// Also read and verify every data pack.
        #[arg(long)]
        read_data: bool,
    },
    /// Run everything locally: an in-process FTPS server, a backup, a change, an incremental
    /// backup and a verified restore.
    #[cfg(feature = "demo")]
    Demo {
        /// Keep the demo's files in this directory (default: a temporary directory).
        #[arg(long)]
        workdir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let code = match run(cli) {
        Ok(()) => exit_code::SUCCESS,
        Err(code) => code,
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn run(cli: Cli) -> Result<(), i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            exit_code::RUN_FAILED
        })?;
    #[cfg(feature = "demo")]
    if let Command::Demo { workdir } = &cli.command {
        return unstoppable_job::demo::run(&runtime, workdir.clone()).map_err(|e| {
            eprintln!("demo failed: {e}");
            exit_code::RUN_FAILED
        });
    }
    load_env_file(cli.env_file.as_deref())?;
    let clock = RunClock::start();
    let bad_config = |e: config::ConfigError| {
        eprintln!("error: {e}");
        exit_code::BAD_CONFIG
    };
    let loaded = runtime.block_on(config::load(cli.config.as_deref(), &|k| {
        std::env::var(k).ok()
    }));
    let cfg = match loaded {
        Ok(cfg) => cfg,
        Err(config::LoadError::Config(e)) => return Err(bad_config(e)),
        Err(config::LoadError::Secrets {
            message,
            summary_path,
        }) => {
            // Not a configuration error: the run could not get its credentials.
            eprintln!("error: {message}");
            let summary = RunSummary {
                result: Some(RunResult::Failed),
                reason: Some(reason::SECRETS_FAILED.to_string()),
                error: Some(message),
                ..Default::default()
            };
            emit(
                &clock.finish(command_name(&cli.command), summary),
                &summary_path,
            );
            return Err(exit_code::RUN_FAILED);
        }
    };
    let (name, result) = match &cli.command {
        Command::Backup { time } => ("backup", backup::run(&cfg, &runtime, time.clone())),
        Command::Restore {
            snapshot,
            path,
            target,
        } => (
            "restore",
            restore::run(&cfg, snapshot, path.as_deref(), target),
        ),
        Command::Snapshots => ("snapshots", maintenance::snapshots(&cfg)),
        Command::Check { read_data } => ("check", maintenance::check(&cfg, *read_data)),
        #[cfg(feature = "demo")]
        Command::Demo { .. } => unreachable!("handled above"),
    };
    finish(&cfg, &clock, name, result)
}

/// `--time`: an RFC 3339 time, in the machine's time zone (snapshots record their zone).
fn parse_time(text: &str) -> Result<jiff::Zoned, String> {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.to_zoned(jiff::tz::TimeZone::system()))
        .map_err(|e| format!("`{text}` is not an RFC 3339 time such as 2026-01-01T03:00:00Z: {e}"))
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Backup { .. } => "backup",
        Command::Restore { .. } => "restore",
        Command::Snapshots => "snapshots",
        Command::Check { .. } => "check",
        #[cfg(feature = "demo")]
        Command::Demo { .. } => "demo",
    }
}

fn finish(
    cfg: &JobConfig,
    clock: &RunClock,
    name: &str,
    result: Result<RunSummary, Error>,
) -> Result<(), i32> {
    let (summary, code) = match result {
        Ok(summary) if summary.result() == RunResult::Incomplete => {
            (summary, exit_code::INCOMPLETE)
        }
        Ok(summary) if summary.reason.as_deref() == Some(reason::REPOSITORY_DAMAGED) => {
            (summary, exit_code::REPOSITORY_DAMAGED)
        }
        Ok(summary) => (summary, exit_code::SUCCESS),
        Err(err) => {
            eprintln!("error: {err}");
            let summary = RunSummary {
                success: false,
                result: Some(RunResult::Failed),
                reason: Some(err.reason().to_string()),
                error: Some(err.to_string()),
                ..Default::default()
            };
            (summary, err.exit_code())
        }
    };
    emit(&clock.finish(name, summary), &cfg.summary_path);
    if code == exit_code::SUCCESS {
        Ok(())
    } else {
        Err(code)
    }
}

fn load_env_file(path: Option<&std::path::Path>) -> Result<(), i32> {
    // dotenvy never overrides variables already set: the environment wins over `.env`.
    let result = match path {
        Some(path) => dotenvy::from_path(path).map(|_| ()),
        None => match dotenvy::dotenv() {
            Err(e) if e.not_found() => Ok(()),
            other => other.map(|_| ()),
        },
    };
    result.map_err(|e| {
        eprintln!("error: configuration key `--env-file`: {e}; fix or remove the .env file");
        exit_code::BAD_CONFIG
    })
}

fn init_logging() {
    // rustic_core logs a warning for every file it leaves out; the job reports those itself
    // (one line per path up to a limit, then the count), so only rustic's errors are shown
    // unless RUST_LOG names rustic_core itself.
    let from_env = std::env::var("RUST_LOG").unwrap_or_default();
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,opendal=warn,rustic_backend=warn,libunftp=warn,suppaftp=error",
        )
    });
    if !from_env.contains("rustic_core") {
        if let Ok(directive) = "rustic_core=error".parse() {
            filter = filter.add_directive(directive);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
