use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use unstoppable_contract::{exit_code, reason, JobConfig, RunResult, RunSummary};
use unstoppable_job::summary::{emit, RunClock};
use unstoppable_job::{backup, config, maintenance, recover, restore, Error};

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

// Parsed once per process: the size of the restore variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Back up the configured FTPS directory (the first run initialises the repository), then
    /// apply the retention rules to the resource's snapshots.
    Backup {
        /// Record the snapshot at this time instead of now, as `restic backup --time` does
        /// (RFC 3339, e.g. `2026-01-01T03:00:00Z`); the retention rules count from it too.
        #[arg(long, value_parser = parse_time)]
        time: Option<jiff::Zoned>,
        /// Also write the run's whole change profile and verdict here, as JSON.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
    /// Restore a snapshot (or a path inside it) into a local directory, or back onto the FTPS
    /// server: only missing and changed files are sent there, each under a temporary name that
    /// is then renamed over its place.
    #[command(group(clap::ArgGroup::new("to").required(true).args(["target", "to_ftps", "to_s3"])))]
    Restore {
        /// `latest` or a snapshot id (prefix).
        #[arg(long, default_value = "latest", conflicts_with = "snapshot_as_of")]
        snapshot: String,
        /// The newest snapshot taken at or before this time (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        snapshot_as_of: Option<jiff::Zoned>,
        /// Only this path inside the snapshot (relative to the backed-up directory).
        #[arg(long)]
        path: Option<String>,
        /// Only files matching these globs (relative to `--path`); may be repeated.
        #[arg(long)]
        include: Vec<String>,
        /// Leave out files and directories matching these globs; may be repeated.
        #[arg(long)]
        exclude: Vec<String>,
        /// Local directory to restore into (created when missing).
        #[arg(long)]
        target: Option<PathBuf>,
        /// Restore onto the FTPS server of the configuration (`ftps.*`).
        #[arg(long)]
        to_ftps: bool,
        /// Restore as plain files under this prefix of the customer's bucket (`s3.*`).
        #[arg(long, value_name = "PREFIX")]
        to_s3: Option<String>,
        /// Another bucket on the same endpoint, for `--to-s3`.
        #[arg(long, requires = "to_s3")]
        s3_bucket: Option<String>,
        /// Absolute directory on the server (default: where the restored path was backed up from).
        #[arg(long, requires = "to_ftps")]
        target_path: Option<String>,
        /// Replace files that exist on the server: `changed` (size or time differ), `always`, `never`.
        #[arg(long, default_value = "changed", requires = "to_ftps")]
        overwrite: restore::Overwrite,
        /// Remove files and directories on the server that the snapshot does not have (needs
        /// `--target-path`).
        #[arg(long, requires = "to_ftps")]
        delete: bool,
        /// Only report what would change.
        #[arg(long, requires = "to_ftps")]
        dry_run: bool,
        /// Read the cold repository as it was at this time (RFC 3339), from the bucket's
        /// object versions: what an attacker deleted since is still there.
        #[arg(long, value_parser = parse_time)]
        as_of: Option<jiff::Zoned>,
    },
    /// Make the cold repository in the bucket what it was at a time again: old object versions
    /// are copied back, newer keys hidden behind delete markers, no version is deleted; then the
    /// hot part is rebuilt from it.
    Recover {
        /// The time to go back to (RFC 3339), before the damage.
        #[arg(long, value_parser = parse_time)]
        as_of: jiff::Zoned,
        /// Only report what would be copied back and hidden.
        #[arg(long)]
        dry_run: bool,
    },
    /// Put a hold on a snapshot: the retention rules never forget it (nor prune its data) until
    /// the hold is released.
    Hold {
        /// `latest` or a snapshot id (prefix).
        #[arg(long)]
        snapshot: String,
    },
    /// Release the hold of a snapshot, or of every held snapshot of the resource.
    ReleaseHold {
        /// A snapshot id (prefix); default: every held snapshot.
        #[arg(long)]
        snapshot: Option<String>,
    },
    /// List the snapshots of the repository.
    Snapshots {
        /// The snapshots the repository had at this time (RFC 3339), from object versions.
        #[arg(long, value_parser = parse_time)]
        as_of: Option<jiff::Zoned>,
    },
    /// Check the repository's integrity.
    Check {
        /// Also read and verify every data pack.
        #[arg(long)]
        read_data: bool,
        /// Check the repository as it was at this time (RFC 3339), from object versions.
        #[arg(long, value_parser = parse_time)]
        as_of: Option<jiff::Zoned>,
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
        Command::Backup { time, report } => (
            "backup",
            backup::run(&cfg, &runtime, time.clone(), report.as_deref()),
        ),
        Command::Restore {
            snapshot,
            snapshot_as_of,
            path,
            include,
            exclude,
            target,
            to_ftps: _,
            to_s3,
            s3_bucket,
            target_path,
            overwrite,
            delete,
            dry_run,
            as_of,
        } => {
            let request = restore::Request {
                repository_as_of: as_of.as_ref().map(jiff::Zoned::timestamp),
                which: match snapshot_as_of {
                    Some(at) => restore::Which::AsOf(at.timestamp()),
                    None => restore::Which::parse(snapshot),
                },
                path: path.clone().unwrap_or_default(),
                include: include.clone(),
                exclude: exclude.clone(),
                target: match (target, to_s3) {
                    (Some(dir), _) => restore::Target::Local(dir.clone()),
                    (None, Some(prefix)) => restore::Target::S3 {
                        prefix: prefix.clone(),
                        bucket: s3_bucket.clone(),
                    },
                    (None, None) => restore::Target::Ftps {
                        path: target_path.clone(),
                        overwrite: *overwrite,
                        delete: *delete,
                        dry_run: *dry_run,
                    },
                },
            };
            ("restore", restore::run(&cfg, &runtime, &request))
        }
        Command::Snapshots { as_of } => (
            "snapshots",
            maintenance::snapshots(&cfg, as_of.as_ref().map(jiff::Zoned::timestamp)),
        ),
        Command::Check { read_data, as_of } => (
            "check",
            maintenance::check(&cfg, *read_data, as_of.as_ref().map(jiff::Zoned::timestamp)),
        ),
        Command::Hold { snapshot } => ("hold", unstoppable_job::hold::set(&cfg, snapshot)),
        Command::ReleaseHold { snapshot } => (
            "release-hold",
            unstoppable_job::hold::release(&cfg, snapshot.as_deref()),
        ),
        Command::Recover { as_of, dry_run } => (
            "recover",
            recover::run(&cfg, &runtime, as_of.timestamp(), *dry_run),
        ),
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
        Command::Snapshots { .. } => "snapshots",
        Command::Check { .. } => "check",
        Command::Recover { .. } => "recover",
        Command::Hold { .. } => "hold",
        Command::ReleaseHold { .. } => "release-hold",
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
            "info,rustic_backend=warn,libunftp=warn,suppaftp=error,aws_smithy_runtime=warn,aws_sdk_s3=warn",
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
