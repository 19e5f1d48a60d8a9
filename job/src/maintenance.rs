//! `snapshots` and `check`.

use rustic_core::CheckOptions;
use unstoppable_contract::{JobConfig, RunSummary};

use crate::error::Error;
use crate::repo::{self, repo_err};

/// Prints one line per snapshot, oldest first.
pub fn snapshots(cfg: &JobConfig) -> Result<RunSummary, Error> {
    let backends = repo::backends(cfg)?;
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

/// Checks the repository's structure, and with `read_data` every pack's content.
pub fn check(cfg: &JobConfig, read_data: bool) -> Result<RunSummary, Error> {
    // A backup writing beside the check would show up as packs missing from the index.
    let _lock = crate::lock::acquire(&cfg.repository.hot_dir)?;
    let backends = repo::backends(cfg)?;
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
