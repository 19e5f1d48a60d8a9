//! Holds: a snapshot tagged `hold` is never forgotten by the retention rules — and so never
//! pruned away — until the hold is released. It keeps the last good copy of a source while a
//! person looks at what happened to it (an attack that the backups then faithfully stored).

use rustic_core::repofile::SnapshotFile;
use rustic_core::{Open, Repository, StringList};
use unstoppable_contract::{JobConfig, RunSummary};

use crate::error::Error;
use crate::lock;
use crate::repo::{self, repo_err};
use crate::restore::select::{choose, Which};
use crate::retention::{self, HOLD_TAG};

/// Puts a hold on `snapshot` (an id or `latest`).
pub fn set(cfg: &JobConfig, snapshot: &str) -> Result<RunSummary, Error> {
    change(cfg, Some(snapshot), true)
}

/// Releases the hold of `snapshot`, or of every held snapshot of the resource.
pub fn release(cfg: &JobConfig, snapshot: Option<&str>) -> Result<RunSummary, Error> {
    change(cfg, snapshot, false)
}

fn change(cfg: &JobConfig, snapshot: Option<&str>, hold: bool) -> Result<RunSummary, Error> {
    let _lock = lock::acquire(&cfg.repository.hot_dir)?;
    repo::prepare_hot(cfg)?;
    let backends = repo::backends(cfg)?;
    let repo = repo::open(cfg, &backends, false)?;
    let snapshots = repo
        .get_matching_snapshots(|sn| retention::is_of(sn, &cfg.customer, &cfg.resource))
        .map_err(repo_err("reading the snapshots"))?;
    let chosen: Vec<&SnapshotFile> = match snapshot {
        Some(which) => vec![choose(&snapshots, &Which::parse(which)).map_err(Error::Restore)?],
        None => snapshots
            .iter()
            .filter(|sn| sn.tags.contains(HOLD_TAG))
            .collect(),
    };
    let changed = retag(&repo, &chosen, hold).map_err(Error::Repository)?;
    let verb = if hold { "held" } else { "released" };
    for sn in &changed {
        tracing::info!(time = %sn.time, "snapshot of {} {verb}", sn.time.timestamp());
    }
    if changed.is_empty() {
        tracing::info!(
            "nothing to change: no snapshot was {}",
            if hold { "without a hold" } else { "held" }
        );
    }
    Ok(RunSummary {
        success: true,
        ..Default::default()
    })
}

/// Rewrites `chosen` with the hold tag added (`hold`) or removed, and returns the snapshots
/// that changed (the new files get new ids: read them back to know them). A snapshot's tags are
/// part of its file: the new file is written before the old one goes.
pub fn retag<S: Open>(
    repo: &Repository<S>,
    chosen: &[&SnapshotFile],
    hold: bool,
) -> Result<Vec<SnapshotFile>, String> {
    let tag: StringList = HOLD_TAG.parse().map_err(|e| format!("the hold tag: {e}"))?;
    let mut changed = Vec::new();
    let mut old = Vec::new();
    for sn in chosen {
        let mut new = (*sn).clone();
        let differs = if hold {
            new.add_tags(vec![tag.clone()])
        } else {
            new.remove_tags(std::slice::from_ref(&tag))
        };
        if differs {
            old.push(sn.id);
            changed.push(new);
        }
    }
    if !changed.is_empty() {
        repo.save_snapshots(changed.clone())
            .map_err(|e| format!("writing the snapshots: {e}"))?;
        repo.delete_snapshots(&old)
            .map_err(|e| format!("removing the old snapshot files: {e}"))?;
    }
    Ok(changed)
}

/// What a backup did to holds.
#[derive(Debug, Default)]
pub struct AfterBackup {
    /// The snapshot held for this run's anomaly, by its id after the hold.
    pub held_for_anomaly: Option<String>,
    /// Every held snapshot of the resource, newest first.
    pub held: Vec<String>,
}

/// Inside a backup, before the retention rules: releases the hold that `anomaly.release_hold`
/// names, then, when the run was an anomaly (its snapshot taken at `anomaly_at`), holds the
/// newest snapshot before it that is neither incomplete nor itself an anomaly: the last good
/// copy of the source.
pub fn after_backup<S: Open>(
    cfg: &JobConfig,
    repo: &Repository<S>,
    anomaly_at: Option<jiff::Timestamp>,
) -> Result<AfterBackup, String> {
    let list = || {
        repo.get_matching_snapshots(|sn| retention::is_of(sn, &cfg.customer, &cfg.resource))
            .map_err(|e| format!("reading the snapshots: {e}"))
    };
    let mut snapshots = list()?;
    if let Some(prefix) = cfg
        .anomaly
        .release_hold
        .as_deref()
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
    {
        let named: Vec<&SnapshotFile> = snapshots
            .iter()
            .filter(|sn| sn.tags.contains(HOLD_TAG) && sn.id.to_hex().starts_with(&prefix))
            .collect();
        if named.is_empty() {
            tracing::info!("no held snapshot {prefix}: nothing to release");
        } else {
            let released = retag(repo, &named, false)
                .map_err(|e| format!("releasing the hold of {prefix}: {e}"))?;
            tracing::info!(
                "released the hold of snapshot {prefix} ({} file)",
                released.len()
            );
            snapshots = list()?;
        }
    }
    let mut target_time = None;
    if let Some(at) = anomaly_at {
        let good = snapshots
            .iter()
            .filter(|sn| {
                sn.time.timestamp() < at
                    && !sn.tags.contains(crate::backup::INCOMPLETE_TAG)
                    && !sn.tags.contains(crate::changes::ANOMALY_TAG)
            })
            .max_by_key(|sn| sn.time.timestamp());
        match good {
            Some(sn) => {
                target_time = Some(sn.time.timestamp());
                if retag(repo, &[sn], true)
                    .map_err(|e| format!("holding the last good snapshot: {e}"))?
                    .is_empty()
                {
                    tracing::info!("the last good snapshot was held already");
                }
                snapshots = list()?;
            }
            None => return Err("no complete snapshot before this one to hold".into()),
        }
    }
    let mut held: Vec<&SnapshotFile> = snapshots
        .iter()
        .filter(|sn| sn.tags.contains(HOLD_TAG))
        .collect();
    held.sort_by_key(|sn| std::cmp::Reverse(sn.time.timestamp()));
    Ok(AfterBackup {
        held_for_anomaly: target_time.and_then(|t| {
            held.iter()
                .find(|sn| sn.time.timestamp() == t)
                .map(|sn| sn.id.to_hex().to_string())
        }),
        held: held.iter().map(|sn| sn.id.to_hex().to_string()).collect(),
    })
}
