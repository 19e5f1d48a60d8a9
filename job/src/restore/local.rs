//! Restoring a snapshot (or a path inside it) to a local directory.

use std::path::Path;

use rustic_core::{LocalDestination, LsOptions, RestoreOptions};
use unstoppable_contract::{JobConfig, RunSummary};

use crate::error::Error;
use crate::repo::{self, repo_err};

/// Restores `snapshot` (`latest` or an id prefix), optionally only `path` inside it, into
/// `target`. File contents are verified by rustic as they are read; modification times are set.
pub fn run(
    cfg: &JobConfig,
    snapshot: &str,
    path: Option<&str>,
    target: &Path,
) -> Result<RunSummary, Error> {
    let backends = repo::backends(cfg)?;
    let repo = repo::open(cfg, &backends, false)?
        .to_indexed()
        .map_err(repo_err("reading the repository index"))?;
    let path = path.unwrap_or("").trim_start_matches('/');
    let snap = repo
        .get_snapshot_from_str(snapshot, |_| true)
        .map_err(|e| Error::Restore(format!("snapshot `{snapshot}`: {}", e.display_log())))?;
    let node = repo.node_from_snapshot_and_path(&snap, path).map_err(|e| {
        Error::Restore(format!(
            "path `{path}` in snapshot {}: {}",
            snap.id,
            e.display_log()
        ))
    })?;
    let target_str = target
        .to_str()
        .ok_or_else(|| Error::Restore(format!("target {} is not valid UTF-8", target.display())))?;
    let dest = LocalDestination::new(target_str, true, !node.is_dir())
        .map_err(|e| Error::Restore(format!("target {target_str}: {}", e.display_log())))?;
    let ls = repo
        .ls(&node, &LsOptions::default().recursive(true))
        .map_err(repo_err("reading the snapshot's trees"))?;
    let opts = RestoreOptions::default().no_ownership(true);
    let plan = repo
        .prepare_restore(&opts, ls.clone(), &dest, false)
        .map_err(repo_err("planning the restore"))?;
    repo.restore(plan, &opts, ls, &dest)
        .map_err(repo_err("restoring"))?;
    Ok(RunSummary {
        success: true,
        snapshot_id: Some(snap.id.to_string()),
        ..Default::default()
    })
}
