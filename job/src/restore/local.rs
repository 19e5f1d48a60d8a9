//! Restoring into a local directory with rustic's own restorer: contents verified as they are
//! read, modification times set.

use std::path::Path;

use rustic_core::repofile::Node;
use rustic_core::{LocalDestination, LsOptions, RestoreOptions};
use unstoppable_contract::RestoreOutcome;

use super::Repo;
use crate::error::Error;
use crate::ftps::Filter;
use crate::repo::repo_err;

pub fn run(
    repo: &Repo,
    node: &Node,
    filter: &Filter,
    target: &Path,
) -> Result<RestoreOutcome, Error> {
    let target_str = target
        .to_str()
        .ok_or_else(|| Error::Restore(format!("target {} is not valid UTF-8", target.display())))?;
    let dest = LocalDestination::new(target_str, true, !node.is_dir())
        .map_err(|e| Error::Restore(format!("target {target_str}: {}", e.display_log())))?;
    let ls = repo
        .ls(node, &LsOptions::default().recursive(true))
        .map_err(repo_err("reading the snapshot's trees"))?;
    // rustic's `ls` walks once; the restore needs the (filtered) list twice.
    let mut excluded: Vec<String> = Vec::new();
    let mut entries = Vec::new();
    for item in ls {
        let (path, node) = item.map_err(repo_err("reading the snapshot's trees"))?;
        let rel = super::rel_path(&path);
        if excluded.iter().any(|d| rel.starts_with(&format!("{d}/"))) {
            continue;
        }
        let keep = if node.is_dir() {
            let out = !rel.is_empty() && filter.exclude.is_match(&rel);
            if out {
                excluded.push(rel);
            }
            !out
        } else {
            rel.is_empty() || filter.wants_file(&rel)
        };
        if keep {
            entries.push((path, node));
        }
    }
    let opts = RestoreOptions::default().no_ownership(true);
    let plan = repo
        .prepare_restore(&opts, entries.iter().cloned().map(Ok), &dest, false)
        .map_err(repo_err("planning the restore"))?;
    let stats = plan.stats;
    let bytes = plan.restore_size;
    repo.restore(plan, &opts, entries.into_iter().map(Ok), &dest)
        .map_err(repo_err("restoring"))?;
    Ok(RestoreOutcome {
        target: "local".into(),
        location: target_str.to_string(),
        files_restored: stats.files.restore,
        bytes_restored: bytes,
        files_unchanged: stats.files.unchanged + stats.files.verified,
        mtimes_set: true,
        ..Default::default()
    })
}
