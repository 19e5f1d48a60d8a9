//! One backup run: connect, open the repository, archive the FTPS tree, report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Zoned};
use rustic_core::{BackupOptions, ParentOptions, SnapshotOptions, StringList};
use tokio::runtime::Runtime;
use unstoppable_contract::{
    reason, Anomaly, FtpsConfig, JobConfig, RetentionOutcome, RunResult, RunSummary,
};

use crate::changes::{self, history::History, ANOMALY_TAG};

use crate::config::ConfigError;
use crate::error::Error;
use crate::ftps::tls::{client_config, Trust};
use crate::ftps::{
    with_retries, Connector, Dating, FtpsSource, ListingMode, Pool, Previous, SourceOptions,
    SourceStats,
};
use crate::lock;
use crate::previous::{self, SnapshotFiles};
use crate::progress;
use crate::repo::{self, repo_err, SnapshotHold};
use crate::retention;
use crate::upkeep;

/// The tag of snapshots that lack paths the run could not read (restic's convention for
/// "snapshot created, but some source data could not be read").
pub const INCOMPLETE_TAG: &str = "incomplete";

/// The connection pool for a configured server.
pub fn pool_for(ftps: &FtpsConfig) -> Result<Arc<Pool>, Error> {
    let trust = match (&ftps.ca_file, ftps.insecure_skip_verify) {
        (_, true) => Trust::InsecureSkipVerify,
        (Some(ca), false) => Trust::CaFile(ca.clone()),
        (None, false) => Trust::System,
    };
    let connector = Connector::new(
        &ftps.host,
        ftps.port,
        ftps.server_name.as_deref(),
        client_config(&trust)?,
        &ftps.username,
        ftps.password.clone(),
        Duration::from_secs(ftps.timeout_secs),
    );
    Ok(Pool::new(connector, ftps.max_connections))
}

/// Backs up the configured FTPS directory. The summary names the new snapshot: complete, or
/// tagged `incomplete` (result `incomplete`) when some paths could not be read. A failure of the
/// whole run (server, TLS, login, repository) writes no snapshot and is returned.
pub fn run(
    cfg: &JobConfig,
    rt: &Runtime,
    time: Option<Zoned>,
    report: Option<&Path>,
) -> Result<RunSummary, Error> {
    let ftps = cfg.ftps.as_ref().ok_or_else(|| {
        ConfigError::new("ftps.host", "is missing; a backup needs the ftps.* keys")
    })?;
    let _lock = lock::acquire(&cfg.repository.hot_dir)?;
    let stats = Arc::new(SourceStats::default());
    let pool = pool_for(ftps)?;
    // Connect, log in and learn the listing mode before touching the repository: a wrong
    // password or an untrusted certificate fails fast and leaves nothing behind.
    let mode = rt.block_on(with_retries(ftps.retries, || {
        crate::ftps::detect_mode(&pool)
    }))?;
    tracing::info!(?mode, host = %ftps.host, path = %ftps.path, "connected");

    repo::prepare_hot(cfg)?;
    let hold = SnapshotHold::new();
    let backends = repo::gated(&repo::backends(cfg)?, hold.clone());
    let repo = Arc::new(
        repo::open(cfg, &backends, true)?
            .to_indexed_ids()
            .map_err(repo_err("reading the repository index"))?,
    );

    let snap = SnapshotOptions::default()
        .host(cfg.resource.clone())
        .add_tags(&format!(
            "customer:{},resource:{}",
            cfg.customer, cfg.resource
        ))
        .map_err(repo_err("tagging the snapshot"))?
        .time(time.clone())
        .to_snapshot()
        .map_err(repo_err("preparing the snapshot"))?;
    // The parent is found once, for the archiver and for dating files on LIST servers.
    let previous = previous::latest(&repo, &cfg.resource, &ftps.path)
        .map_err(|e| tracing::warn!("the previous snapshot could not be found: {e}"))
        .ok()
        .flatten();
    let parent_opts = match &previous {
        Some(p) => ParentOptions::default().parents(vec![p.id.to_string()]),
        None => ParentOptions::default(),
    };
    let opts = BackupOptions::default().parent_opts(parent_opts);
    let dating = match (&previous, mode) {
        (Some(p), ListingMode::ListAndMdtm) => Some(Dating::new(
            &ftps.path,
            Previous {
                files: Arc::new(SnapshotFiles::new(repo.clone(), p)),
                read_after: previous::read_after(p),
            },
            SignedDuration::from_secs(i64::try_from(ftps.clock_skew_secs).unwrap_or(i64::MAX)),
        )),
        _ => None,
    };
    let source = FtpsSource::new(
        rt.handle().clone(),
        pool.clone(),
        mode,
        SourceOptions {
            root: ftps.path.clone(),
            include: ftps.include.clone(),
            exclude: ftps.exclude.clone(),
            retries: ftps.retries,
            dating,
        },
        stats.clone(),
    )?;

    let reporter = progress::spawn(rt, stats.clone(), cfg.progress_interval_secs);
    let result = repo.archive(&opts, &source, snap, &[PathBuf::from(&ftps.path)]);
    reporter.abort();
    rt.block_on(pool.close());
    let skipped = SourceStats::get(&stats.mdtm_skipped);
    if skipped > 0 {
        tracing::info!(
            files = skipped,
            "dated from the previous snapshot, as LIST showed them unchanged"
        );
    }

    let failures = &stats.failures;
    if let Some(fatal) = failures.fatal_message() {
        hold.discard();
        return Err(Error::Run(fatal));
    }
    let mut snap = result.map_err(|e| {
        hold.discard();
        repo::storage_err(cfg, "writing the backup")(e)
    })?;
    let s = snap.summary.clone().unwrap_or_default();
    // rustic's archiver leaves out, with only a log line, any file it could not store. Every
    // file handed to it must be in the snapshot or be one we know was dropped.
    let handed = SourceStats::get(&stats.files_listed);
    let accounted = s.total_files_processed + SourceStats::get(&stats.files_dropped);
    if accounted < handed {
        failures.path(
            &ftps.path,
            format!(
                "{} listed files are missing from the snapshot for a reason the run could not tell",
                handed - accounted
            ),
        );
    }
    failures.log_total();
    let complete = failures.failed_count() == 0;
    let hot = Path::new(&cfg.repository.hot_dir);
    let mut history = History::load(hot);
    let analysis = if cfg.anomaly.enabled {
        profile(cfg, &backends, &repo, &snap, &history, &stats)
            .map_err(|e| tracing::error!("the change profile could not be computed: {e}"))
            .ok()
    } else {
        None
    };
    // Only a complete run is judged: paths it could not read would look deleted.
    let reasons = match (&analysis, complete) {
        (Some(a), true) => changes::judge(a, &history, &cfg.anomaly),
        _ => Vec::new(),
    };
    let anomalous = !reasons.is_empty();
    if complete && !anomalous {
        hold.release()
            .map_err(repo::storage_err(cfg, "writing the snapshot"))?;
    } else {
        hold.discard();
        let tag = if complete {
            ANOMALY_TAG
        } else {
            INCOMPLETE_TAG
        };
        let tag = tag
            .parse::<StringList>()
            .map_err(|e| Error::Repository(format!("tagging the snapshot: {e}")))?;
        snap.add_tags(vec![tag]);
        repo.save_snapshots(vec![snap.clone()])
            .map_err(repo::storage_err(cfg, "writing the tagged snapshot"))?;
    }
    let id = hold
        .written()
        .map(|id| id.to_hex().to_string())
        .unwrap_or_else(|| snap.id.to_string());
    // Holds before the retention rules, so this run's forget already spares the held copy.
    let holds = crate::hold::after_backup(cfg, &repo, anomalous.then(|| snap.time.timestamp()));
    let anomaly = anomalous.then(|| {
        let (held_snapshot, hold_error) = match &holds {
            Ok(h) => (h.held_for_anomaly.clone(), None),
            Err(e) => (None, Some(e.clone())),
        };
        tracing::warn!(
            snapshot = %id,
            held = held_snapshot.as_deref().unwrap_or("none"),
            "the source changed unusually: {}",
            reasons.iter().map(|r| r.message.as_str()).collect::<Vec<_>>().join("; ")
        );
        Anomaly {
            reasons: reasons.clone(),
            held_snapshot,
            hold_error,
        }
    });
    let held_snapshots = match holds {
        Ok(h) => Some(h.held),
        Err(e) => {
            tracing::error!("holds could not be updated: {e}");
            None
        }
    };
    if let Some(a) = &analysis {
        if let Some(known) = &a.known_before {
            history.learn(known);
        }
        if complete && !anomalous {
            history.record(a.rates);
            // An attack's extensions (`.locked`) are not learned: the next one is new again.
            if let Some(seen) = a
                .extensions
                .as_ref()
                .filter(|_| history.extensions.is_some())
            {
                history.learn(seen);
            }
        }
        if complete {
            history.save(hot);
        }
        if let Some(path) = report {
            write_report(path, &id, &snap, a, &history, anomaly.as_ref());
        }
    }
    let failed = failures.failed_count();
    let first = failures.first_paths();
    // Retention and prune only after a complete backup: its snapshot is the newest one to keep.
    let now = time.unwrap_or_else(Zoned::now);
    let retention = complete.then(|| forget(cfg, &repo, &now));
    let mut upkeep_state = upkeep::State::load(hot);
    let prune = match &retention {
        Some(r) if r.error.is_none() => {
            upkeep::prune::run_if_due(cfg, &repo, &mut upkeep_state, now.timestamp())
        }
        _ => None,
    };
    // What the prune left is what kept snapshots need: keep it locked long enough.
    let object_lock = match &prune {
        Some(p) if p.error.is_none() => rt.block_on(upkeep::locks::extend(cfg, now.timestamp())),
        _ => None,
    };
    let check = complete
        .then(|| upkeep::check::run(cfg, &repo, &mut upkeep_state))
        .flatten();
    if complete {
        upkeep_state.save(Path::new(&cfg.repository.hot_dir));
    }
    let repository = upkeep::size::measure(Path::new(&cfg.repository.hot_dir), &repo);
    let damaged = check.as_ref().is_some_and(|c| c.error.is_some());
    if complete {
        tracing::info!(snapshot = %id, "backup finished");
    } else {
        tracing::warn!(
            snapshot = %id,
            "backup finished incomplete: {failed} paths could not be read; the snapshot is tagged `{INCOMPLETE_TAG}`"
        );
    }
    let check_error = check.as_ref().and_then(|c| c.error.clone());
    // The snapshot is written either way; damage found by the check fails the run loudly.
    let (result, why) = match (complete, damaged) {
        (false, _) => (RunResult::Incomplete, Some(reason::PATHS_UNREADABLE)),
        (true, true) => (RunResult::Failed, Some(reason::REPOSITORY_DAMAGED)),
        (true, false) => (RunResult::Success, None),
    };
    Ok(RunSummary {
        success: result == RunResult::Success,
        result: Some(result),
        reason: why.map(str::to_string),
        snapshot_id: Some(id),
        files_new: s.files_new,
        files_changed: s.files_changed,
        files_unmodified: s.files_unmodified,
        dirs: s.total_dirs_processed,
        bytes_listed: SourceStats::get(&stats.bytes_listed),
        bytes_downloaded: SourceStats::get(&stats.bytes_downloaded),
        files_downloaded: SourceStats::get(&stats.files_downloaded),
        bytes_added: s.data_added_packed,
        files_vanished: failures.vanished_count(),
        failed_paths: failed,
        error: first.first().map(|f| {
            format!(
                "{failed} paths could not be read (first: `{}`: {}); the snapshot has everything else and is tagged `{INCOMPLETE_TAG}`",
                f.path, f.reason
            )
        })
        .or(check_error),
        failures: first,
        retention,
        prune,
        check,
        object_lock,
        repository,
        changes: analysis.map(|a| a.profile),
        anomaly,
        held_snapshots,
        ..Default::default()
    })
}

/// The run's change profile. When the run wrote new trees, they are read through an index
/// opened afresh (the run's own was read before the archiver added them).
fn profile(
    cfg: &JobConfig,
    backends: &rustic_core::RepositoryBackends,
    repo: &rustic_core::Repository<rustic_core::IndexedIdsStatus>,
    snap: &rustic_core::repofile::SnapshotFile,
    history: &History,
    stats: &SourceStats,
) -> Result<changes::Analysis, String> {
    let parent = changes::parent_of(repo, snap)?;
    let incompressible = |p: &str| stats.incompressible.contains(p);
    if changes::reads_new_trees(snap, parent.as_ref()) {
        let fresh = repo::reopen(cfg, backends, repo.key())
            .map_err(|e| e.to_string())?
            .to_indexed_ids()
            .map_err(|e| format!("reading the index: {e}"))?;
        changes::analyse(&fresh, snap, parent.as_ref(), history, &incompressible)
    } else {
        changes::analyse(repo, snap, parent.as_ref(), history, &incompressible)
    }
}

/// `backup --report`: the whole profile as JSON, for a person. A failure is logged only.
fn write_report(
    path: &Path,
    id: &str,
    snap: &rustic_core::repofile::SnapshotFile,
    analysis: &changes::Analysis,
    history: &History,
    anomaly: Option<&Anomaly>,
) {
    let report = changes::Report {
        snapshot_id: id,
        parent_id: snap.parent.map(|p| p.to_string()),
        changes: &analysis.profile,
        rates_percent: analysis.rates,
        usual_percent: history.usual(),
        normal_runs_remembered: history.runs.len(),
        anomaly,
    };
    let written = serde_json::to_vec_pretty(&report)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(path, bytes));
    if let Err(e) = written {
        tracing::error!("cannot write the report to {}: {e}", path.display());
    }
}

/// Applies the retention rules to the resource's snapshots (see `retention.rs`). A failure is
/// reported, never a reason to undo the backup that was just written.
fn forget<S: rustic_core::Open>(
    cfg: &JobConfig,
    repo: &rustic_core::Repository<S>,
    now: &Zoned,
) -> RetentionOutcome {
    let outcome = (|| -> Result<RetentionOutcome, String> {
        let keep = retention::keep_options(&cfg.retention).map_err(|e| e.to_string())?;
        let snapshots = repo
            .get_matching_snapshots(|sn| retention::is_of(sn, &cfg.customer, &cfg.resource))
            .map_err(|e| format!("reading the snapshots: {e}"))?;
        let plan = retention::plan(snapshots, &keep, INCOMPLETE_TAG, now)?;
        if !plan.forget.is_empty() {
            repo.delete_snapshots(&plan.forget)
                .map_err(|e| format!("removing {} snapshots: {e}", plan.forget.len()))?;
        }
        Ok(RetentionOutcome {
            kept: plan.keep.len() as u64,
            removed: plan.forget.len() as u64,
            error: None,
        })
    })();
    match outcome {
        Ok(outcome) => {
            tracing::info!(
                kept = outcome.kept,
                removed = outcome.removed,
                "retention applied"
            );
            outcome
        }
        Err(e) => {
            tracing::error!("retention could not be applied (the backup is written): {e}");
            RetentionOutcome {
                error: Some(e),
                ..Default::default()
            }
        }
    }
}
