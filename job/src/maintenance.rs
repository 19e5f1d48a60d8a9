//! `snapshots` and `check`.

use jiff::Timestamp;
use rustic_core::CheckOptions;
use unstoppable_contract::{JobConfig, RunSummary};

use crate::error::Error;
use crate::repo::{self, repo_err};

/// Prints one line per snapshot, oldest first; with `as_of`, those the repository had then.
pub fn snapshots(cfg: &JobConfig, as_of: Option<Timestamp>) -> Result<RunSummary, Error> {
    if as_of.is_none() {
        repo::prepare_hot(cfg)?;
    }
    let backends = repo::backends_at(cfg, as_of)?;
    let repo = repo::open(cfg, &backends, false)?;
    let mut snaps = repo
        .get_all_snapshots()
        .map_err(repo_err("listing snapshots"))?;
    snaps.sort_by(|a, b| a.time.cmp(&b.time));
    for snap in &snaps {
        let s = snap.summary.clone().unwrap_or_default();
        eprintln!(
            "{}  {}  host={}  tags={}  tree={}  files={}  bytes={}",
            snap.id,
            snap.time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            snap.hostname,
            snap.tags,
            snap.tree,
            s.total_files_processed,
            s.total_bytes_processed,
        );
    }
    Ok(RunSummary {
        success: true,
        snapshot_id: snaps.last().map(|s| s.id.to_string()),
        ..Default::default()
    })
}

/// Checks the repository's structure, and with `read_data` every pack's content; with `as_of`,
/// the repository as it was then.
pub fn check(
    cfg: &JobConfig,
    read_data: bool,
    as_of: Option<Timestamp>,
) -> Result<RunSummary, Error> {
    // A backup writing beside the check would show up as packs missing from the index.
    let _lock = crate::lock::acquire(&cfg.repository.hot_dir)?;
    if as_of.is_none() {
        repo::prepare_hot(cfg)?;
    }
    let backends = repo::backends_at(cfg, as_of)?;
    let repo = repo::open(cfg, &backends, false)?;
    let results = repo
        .check(CheckOptions::default().read_data(read_data))
        .map_err(repo_err("checking"))?;
    results
        .is_ok()
        .map_err(|e| Error::Repository(format!("check found errors: {}", e.display_log())))?;
    Ok(RunSummary {
        success: true,
        ..Default::default()
    })
}
