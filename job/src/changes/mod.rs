//! The change profile of a backup and its verdict: what changed in the source since the parent
//! snapshot, and whether that is an attack on it (mass deletion, mass change, content that
//! became encrypted, files renamed to a new extension) rather than this resource's usual.

pub mod diff;
pub mod history;
pub mod sample;
pub mod verdict;

use std::collections::{BTreeSet, HashMap, HashSet};

use rustic_core::repofile::{IndexFile, SnapshotFile};
use rustic_core::{DataId, IndexedTree, Repository, TreeId};
use serde::Serialize;
use unstoppable_contract::{AnomalyConfig, AnomalyReason, ChangeProfile, DirChanges};

use diff::{Known, Tally};
use history::{History, Rates};
use verdict::Counts;

/// The tag of a snapshot whose backup was an anomaly.
pub const ANOMALY_TAG: &str = "anomaly";
/// Directories and extensions kept in the profile (the summary names fewer).
const NAMED: usize = 50;
/// Previous content "compressed well" when it packed to at most this share of its size.
const COMPRESSED_WELL: f64 = 0.8;
/// Bytes rustic adds to each encrypted blob (nonce and MAC).
const CRYPTO_OVERHEAD: u64 = 32;

/// A run's profile with what its verdict and the history need.
pub struct Analysis {
    pub profile: ChangeProfile,
    pub counts: Counts,
    pub rates: Rates,
    /// Extensions the run's new and renamed files have (to learn when the run is normal);
    /// `None` on a first backup, whose extensions are learned from it at the next run.
    pub extensions: Option<BTreeSet<String>>,
    /// Extensions the parent had, when no record of them was kept (learned from its trees).
    pub known_before: Option<BTreeSet<String>>,
}

/// The parent snapshot the archiver compared `snap` with.
pub fn parent_of<S: rustic_core::Open>(
    repo: &Repository<S>,
    snap: &SnapshotFile,
) -> Result<Option<SnapshotFile>, String> {
    match &snap.parent {
        Some(id) => Ok(Some(
            repo.get_snapshots(&[id.to_string()])
                .map_err(|e| format!("reading the parent snapshot {id}: {e}"))?
                .into_iter()
                .next()
                .ok_or_else(|| format!("the parent snapshot {id} is missing"))?,
        )),
        None => Ok(None),
    }
}

/// Whether profiling `snap` reads trees the run just wrote (the caller then opens the index
/// afresh): only when its tree differs from the parent's.
pub fn reads_new_trees(snap: &SnapshotFile, parent: Option<&SnapshotFile>) -> bool {
    parent.is_some_and(|p| p.tree != snap.tree)
}

/// Profiles the new snapshot `snap` against its parent, from trees in the hot part and, only
/// when some changed content streamed in incompressible, the index. A first backup is all new
/// and is not walked; an unchanged one (same root tree) reads nothing.
pub fn analyse<S: IndexedTree>(
    repo: &Repository<S>,
    snap: &SnapshotFile,
    parent: Option<&SnapshotFile>,
    history: &History,
    incompressible: &dyn Fn(&str) -> bool,
) -> Result<Analysis, String> {
    let load = |id: &TreeId| {
        repo.get_tree(id)
            .map(|t| t.nodes)
            .map_err(|e| format!("reading tree {id}: {e}"))
    };
    // Without a record of the resource's extensions (first profile, or a rebuilt hot part),
    // they are learned from the parent once; on a first backup nothing is "new".
    let mut learned = None;
    let known = match (&history.extensions, parent) {
        (Some(known), _) => Some(known),
        (None, Some(p)) => {
            let mut all = BTreeSet::new();
            diff::all_extensions(&load, &p.tree, &mut all)?;
            learned = Some(all);
            learned.as_ref()
        }
        (None, None) => None,
    };
    let mut tally = Tally::default();
    let Some(parent) = parent else {
        // A first backup: everything is new, nothing to compare; its extensions are learned
        // from it at the next run.
        let files = snap.summary.as_ref().map_or(0, |s| s.total_files_processed);
        let bytes = snap.summary.as_ref().map_or(0, |s| s.total_bytes_processed);
        return Ok(Analysis {
            profile: ChangeProfile {
                files_new: files,
                bytes_changed: bytes,
                ..Default::default()
            },
            counts: Counts::default(),
            rates: Rates::default(),
            extensions: None,
            known_before: None,
        });
    };
    diff::diff(
        &load,
        &Known {
            extensions: known,
            incompressible,
        },
        Some(&parent.tree),
        Some(&snap.tree),
        "",
        &mut tally,
    )?;
    let incompressible_files = if tally.suspects.is_empty() {
        0
    } else {
        compressed_before(repo, &tally)?
    };
    let files_before = parent
        .summary
        .as_ref()
        .map_or(0, |s| s.total_files_processed);
    let files_after = snap.summary.as_ref().map_or(0, |s| s.total_files_processed);
    let mut dirs: Vec<(String, u64)> = tally.per_dir.drain().collect();
    dirs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let counts = Counts {
        before: files_before,
        deleted: tally.deleted,
        changed: tally.changed,
        incompressible: incompressible_files,
        renamed_to_new_extension: tally.renamed_to_new_extension,
    };
    let profile = ChangeProfile {
        files_before,
        files_new: tally.new,
        files_changed: tally.changed,
        files_deleted: tally.deleted,
        files_unchanged: files_after.saturating_sub(tally.new + tally.changed + tally.renamed),
        files_renamed: tally.renamed,
        files_new_extension: tally.new_extension_files,
        files_incompressible: incompressible_files,
        bytes_changed: tally.bytes_changed,
        bytes_deleted: tally.bytes_deleted,
        new_extensions: tally.new_extensions.iter().take(NAMED).cloned().collect(),
        top_dirs: dirs
            .into_iter()
            .take(NAMED)
            .map(|(path, files)| DirChanges {
                path: if path.is_empty() { ".".into() } else { path },
                files,
            })
            .collect(),
    };
    Ok(Analysis {
        rates: verdict::rates(&counts),
        counts,
        profile,
        extensions: Some(tally.extensions_seen),
        known_before: learned,
    })
}

/// Of the suspects (changed files whose new content streamed in incompressible), how many had
/// previous content that compressed well, by the sizes the index records for its blobs.
fn compressed_before<S: IndexedTree>(repo: &Repository<S>, tally: &Tally) -> Result<u64, String> {
    let wanted: HashSet<DataId> = tally
        .suspects
        .iter()
        .flat_map(|s| s.old_content.iter().copied())
        .collect();
    // (packed bytes without the encryption's, bytes before compression) per blob.
    let mut sizes: HashMap<DataId, (u64, u64)> = HashMap::new();
    let files = repo
        .stream_files::<IndexFile>()
        .map_err(|e| format!("reading the index: {e}"))?;
    for file in files {
        let (_, index) = file.map_err(|e| format!("reading the index: {e}"))?;
        for pack in index.packs {
            for blob in pack.blobs {
                let id = DataId::from(blob.id);
                if wanted.contains(&id) {
                    let length = u64::from(blob.location.length);
                    let raw = blob
                        .location
                        .uncompressed_length
                        .map_or(length.saturating_sub(CRYPTO_OVERHEAD), |n| {
                            u64::from(n.get())
                        });
                    sizes.insert(id, (length.saturating_sub(CRYPTO_OVERHEAD), raw));
                }
            }
        }
    }
    Ok(tally
        .suspects
        .iter()
        .filter(|s| {
            let (packed, raw) = s
                .old_content
                .iter()
                .filter_map(|id| sizes.get(id))
                .fold((0, 0), |(p, r), (bp, br)| (p + bp, r + br));
            raw >= sample::MIN_BYTES as u64 && (packed as f64) <= COMPRESSED_WELL * raw as f64
        })
        .count() as u64)
}

/// The verdict of an analysed run against the resource's history.
pub fn judge(analysis: &Analysis, history: &History, cfg: &AnomalyConfig) -> Vec<AnomalyReason> {
    verdict::judge(
        &analysis.counts,
        &history.usual(),
        history.runs.len(),
        cfg,
        &analysis.profile.new_extensions,
    )
}

/// What `backup --report` writes for a person: the whole profile, the rates, the usual ones.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report<'a> {
    pub snapshot_id: &'a str,
    pub parent_id: Option<String>,
    pub changes: &'a ChangeProfile,
    pub rates_percent: Rates,
    pub usual_percent: Rates,
    pub normal_runs_remembered: usize,
    pub anomaly: Option<&'a unstoppable_contract::Anomaly>,
}
