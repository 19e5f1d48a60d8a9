//! Holds: a snapshot tagged `hold` is never forgotten by the retention rules — and so never
//! pruned away — until the hold is released. It keeps the last good copy of a source while a
//! person looks at what happened to it (an attack that the backups then faithfully stored).

use rustic_core::repofile::SnapshotFile;
use rustic_core::StringList;
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
    let tag: StringList = HOLD_TAG
        .parse()
        .map_err(|e| Error::Repository(format!("the hold tag: {e}")))?;
    let mut changed = Vec::new();
    let mut old = Vec::new();
    for sn in chosen {
        let mut new = sn.clone();
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
    // A snapshot's tags are part of its file: the new file is written before the old one goes.
    if !changed.is_empty() {
        repo.save_snapshots(changed.clone())
            .map_err(repo::storage_err(cfg, "writing the snapshots"))?;
        repo.delete_snapshots(&old)
            .map_err(repo::storage_err(cfg, "removing the old snapshot files"))?;
    }
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
