//! The previous snapshot of a resource: the parent the archiver compares against, and its files
//! by directory, so that a LIST server's unchanged files are dated without MDTM.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rustic_core::repofile::SnapshotFile;
use rustic_core::{IndexedTree, Repository, TreeId};

use crate::ftps::{Known, KnownFiles};

/// The newest snapshot of the same resource and path: the one rustic's archiver would pick as
/// parent (same host, label and paths), found once and handed to it.
pub fn latest<S: rustic_core::Open>(
    repo: &Repository<S>,
    host: &str,
    path: &str,
) -> Result<Option<SnapshotFile>, String> {
    let snaps = repo
        .get_matching_snapshots(|s| {
            s.hostname == host && s.label.is_empty() && s.paths.iter().eq([path])
        })
        .map_err(|e| format!("reading the snapshots: {e}"))?;
    Ok(snaps.into_iter().max_by(|a, b| a.time.cmp(&b.time)))
}

/// When the backup that wrote `snap` started: every copy in it was read after this.
pub fn read_after(snap: &SnapshotFile) -> jiff::Timestamp {
    let time = snap.time.timestamp();
    snap.summary
        .as_ref()
        .map_or(time, |s| time.min(s.backup_start.timestamp()))
}

/// A snapshot's files below its backed-up directory, read from its trees in the hot part.
pub struct SnapshotFiles<S> {
    repo: Arc<Repository<S>>,
    /// Tree of each directory seen so far, by path relative to the backed-up directory.
    trees: Mutex<HashMap<String, Option<TreeId>>>,
}

impl<S: IndexedTree> SnapshotFiles<S> {
    /// The snapshot's root tree is the backed-up directory itself: the FTPS source hands the
    /// archiver paths relative to it.
    pub fn new(repo: Arc<Repository<S>>, snap: &SnapshotFile) -> Self {
        Self {
            repo,
            trees: Mutex::new(HashMap::from([(String::new(), Some(snap.tree))])),
        }
    }

    fn tree_of(&self, rel: &str) -> Result<Option<TreeId>, String> {
        if let Some(hit) = self.cached(rel) {
            return Ok(hit);
        }
        let parent = rel.rsplit_once('/').map_or("", |(p, _)| p);
        if let Some(id) = self.tree_of(parent)? {
            self.remember_dirs(parent, &load(&self.repo, id)?);
        }
        let mut trees = self.trees.lock().map_err(|_| "poisoned".to_string())?;
        Ok(*trees.entry(rel.to_string()).or_insert(None))
    }

    fn cached(&self, rel: &str) -> Option<Option<TreeId>> {
        self.trees.lock().ok()?.get(rel).copied()
    }

    fn remember_dirs(&self, rel: &str, nodes: &[rustic_core::repofile::Node]) {
        let Ok(mut trees) = self.trees.lock() else {
            return;
        };
        for node in nodes.iter().filter(|n| n.is_dir()) {
            let name = node.name();
            let name = name.to_string_lossy();
            let path = if rel.is_empty() {
                name.into_owned()
            } else {
                format!("{rel}/{name}")
            };
            trees.insert(path, node.subtree);
        }
    }
}

fn load<S: IndexedTree>(
    repo: &Repository<S>,
    id: TreeId,
) -> Result<Vec<rustic_core::repofile::Node>, String> {
    repo.get_tree(&id)
        .map(|t| t.nodes)
        .map_err(|e| format!("reading tree {id}: {e}"))
}

impl<S: IndexedTree + Send + Sync> KnownFiles for SnapshotFiles<S> {
    fn dir(&self, rel: &str) -> Result<Option<HashMap<String, Known>>, String> {
        let Some(id) = self.tree_of(rel)? else {
            return Ok(None);
        };
        let nodes = load(&self.repo, id)?;
        // Its subdirectories are listed next: their trees are known from here.
        self.remember_dirs(rel, &nodes);
        Ok(Some(
            nodes
                .iter()
                .filter(|n| n.is_file())
                .filter_map(|n| {
                    let known = Known {
                        size: n.meta.size,
                        mtime: n.meta.mtime?,
                    };
                    Some((n.name().to_string_lossy().into_owned(), known))
                })
                .collect(),
        ))
    }
}
