use serde::{Deserialize, Serialize};

/// Kubernetes truncates a termination message beyond 4096 bytes; a summary never exceeds it.
pub const SUMMARY_MAX_BYTES: usize = 4096;

/// How a run ended, as the operator reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RunResult {
    /// Everything was read and stored.
    Success,
    /// A snapshot was written, tagged `incomplete`, but some paths could not be read (exit code 3).
    Incomplete,
    /// Nothing was stored (exit codes 1 and 2).
    #[default]
    Failed,
}

impl RunResult {
    /// The label value of the run metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Incomplete => "incomplete",
            Self::Failed => "failure",
        }
    }
}

/// One path the run could not read, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedPath {
    pub path: String,
    pub reason: String,
}

/// Failed paths listed by name in a summary; the rest are only counted.
pub const SUMMARY_MAX_FAILED_PATHS: usize = 5;

/// What one run of the job did. Written as JSON to the termination log and as the last line on
/// stdout, so the operator can read it without talking to the job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// `backup`, `restore`, `check`, ...
    pub command: String,
    /// True only when everything was read and stored (`result` is `success`).
    pub success: bool,
    /// Absent in summaries of older jobs: then derived from `success`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<RunResult>,
    /// A short, stable code for why the run did not succeed (e.g. `RepositoryLocked`,
    /// `SourceFailed`, `RepositoryFailed`, `PathsUnreadable`), for conditions and alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Id of the snapshot written (backup) or read (restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// RFC 3339 timestamps.
    pub start_time: String,
    pub end_time: String,
    pub duration_seconds: f64,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub dirs: u64,
    /// Sum of the sizes of all files the source listed.
    pub bytes_listed: u64,
    /// Bytes actually transferred from the source (unchanged files are never downloaded).
    pub bytes_downloaded: u64,
    /// Files actually transferred from the source.
    pub files_downloaded: u64,
    /// Bytes the repository grew by (after deduplication and compression).
    pub bytes_added: u64,
    /// Files that disappeared from the server between listing and download (not a failure).
    #[serde(default)]
    pub files_vanished: u64,
    /// Paths (files or directories) that could not be read; the snapshot lacks them.
    #[serde(default)]
    pub failed_paths: u64,
    /// The first few of them, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<FailedPath>,
    /// One line a person can act on, when the run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the retention rules did after a successful backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionOutcome>,
    /// The prune of this run, when one was due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<PruneOutcome>,
    /// The check after the backup: full metadata, and this run's slice of the data packs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckOutcome>,
    /// Object Lock retention extended after a prune (locked buckets only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<LockOutcome>,
    /// How large the repository is after the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<RepositorySize>,
    /// What a restore did (or, with `dryRun`, would do) to its target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreOutcome>,
    /// What `recover --as-of` did to the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover: Option<RecoverOutcome>,
    /// What changed in the source since the parent snapshot (backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<ChangeProfile>,
    /// The backup's changes are well outside the usual (see [`Anomaly`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<Anomaly>,
    /// Ids of the resource's snapshots that are held after the run (backup; the newest few);
    /// absent when the run could not tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_snapshots: Option<Vec<String>>,
}

/// What changed in the source since the parent snapshot, from the listing, the parent's trees
/// and the bytes that streamed through (no extra download). Content counts: a file whose time
/// changed but whose content did not is unchanged here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeProfile {
    /// Files in the parent snapshot (0 on the first backup, which has no parent).
    pub files_before: u64,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_deleted: u64,
    pub files_unchanged: u64,
    /// Deleted and new in the same directory under the same name with another extension
    /// (`a.html` -> `a.html.locked`, `a.doc` -> `a.crypt`); counted neither new nor deleted.
    pub files_renamed: u64,
    /// New or renamed files whose extension this resource never had before.
    pub files_new_extension: u64,
    /// Changed files whose new content does not compress while their previous content did.
    pub files_incompressible: u64,
    /// Bytes of new and changed files (their new size).
    pub bytes_changed: u64,
    pub bytes_deleted: u64,
    /// Extensions seen for the first time in this resource (the first few).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_extensions: Vec<String>,
    /// The directories with the most changed, new, deleted or renamed files directly in them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_dirs: Vec<DirChanges>,
}

impl ChangeProfile {
    /// Extensions and directories named in a summary; the rest are only counted.
    pub const MAX_NAMED: usize = 5;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirChanges {
    pub path: String,
    pub files: u64,
}

/// A backup whose changes are well outside this resource's usual: its snapshot is tagged
/// `anomaly` and the newest snapshot before it is held (never forgotten) until released.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Anomaly {
    pub reasons: Vec<AnomalyReason>,
    /// The snapshot kept as the last good copy (its id after the hold was tagged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_snapshot: Option<String>,
    /// Why no snapshot could be held, when none was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_error: Option<String>,
}

/// One reason for an anomaly: a code from [`anomaly_reason`] and what was measured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnomalyReason {
    pub code: String,
    pub message: String,
}

/// Values of [`AnomalyReason::code`].
pub mod anomaly_reason {
    /// Many files deleted (a wiped or replaced site).
    pub const MASS_DELETION: &str = "MassDeletion";
    /// Many files' content changed at once.
    pub const MASS_CHANGE: &str = "MassChange";
    /// Changed content that compressed before no longer does (encrypted).
    pub const ENCRYPTED_CONTENT: &str = "EncryptedContent";
    /// Many files renamed to an extension never seen in this resource (ransomware's mark).
    pub const NEW_EXTENSIONS: &str = "NewExtensions";
}

/// The cold repository made current again as it was at a time, from the bucket's versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoverOutcome {
    /// RFC 3339.
    pub as_of: String,
    #[serde(default)]
    pub dry_run: bool,
    /// Snapshots the repository had at that time.
    pub snapshots: u64,
    /// Objects deleted or overwritten since, whose old version was copied back.
    pub copied_back: u64,
    /// Objects written since, hidden behind a delete marker (their versions stay).
    pub hidden: u64,
    /// Objects already as they were.
    pub unchanged: u64,
}

/// What a restore did to its target. On an FTPS target the snapshot is compared with what the
/// server holds first, so only missing and changed files are sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreOutcome {
    /// `local`, `ftps` or `s3`.
    pub target: String,
    /// Where, e.g. `ftps://host:21/site` or `s3://bucket/prefix/`.
    pub location: String,
    /// RFC 3339 time of the snapshot restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_time: Option<String>,
    /// Nothing was changed; the counters say what would have been.
    #[serde(default)]
    pub dry_run: bool,
    /// Files written to the target, and their bytes.
    pub files_restored: u64,
    pub bytes_restored: u64,
    /// Of those, files the target did not have at all.
    #[serde(default)]
    pub files_missing: u64,
    /// Of those, files the target had with another size or time (or `overwrite: always`).
    #[serde(default)]
    pub files_changed: u64,
    /// Files on the target already equal to the snapshot's.
    #[serde(default)]
    pub files_unchanged: u64,
    /// Files that differ but were left alone (`overwrite: never`).
    #[serde(default)]
    pub files_kept: u64,
    /// Files on the target the snapshot does not have, removed (`delete`).
    #[serde(default)]
    pub files_deleted: u64,
    #[serde(default)]
    pub dirs_created: u64,
    #[serde(default)]
    pub dirs_removed: u64,
    /// Symbolic links in the snapshot that the target cannot hold.
    #[serde(default)]
    pub links_skipped: u64,
    /// Whether restored files got the snapshot's modification times.
    #[serde(default)]
    pub mtimes_set: bool,
    /// Why they did not, when they did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The first paths written (and, prefixed with `-`, deleted), for a person to check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

impl RestoreOutcome {
    /// Paths named in [`RestoreOutcome::paths`]; the rest are only counted.
    pub const MAX_PATHS: usize = 10;
}

/// The repository's size: the hot directory on its volume, and the packs in the bucket (from
/// the index, without listing the bucket).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositorySize {
    pub hot_bytes: u64,
    pub cold_bytes: u64,
}

/// Objects whose Object Lock retention was looked at and extended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockOutcome {
    pub checked: u64,
    pub extended: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The check of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckOutcome {
    /// Which slice of the data packs was read, e.g. `3/30`.
    pub slice: String,
    /// What was found (or why the check could not run); none when the repository is sound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a prune did. Packs are removed in two phases (marked now, deleted by a prune at least a
/// day later), so a concurrent reader never loses a pack it is reading. Like a retention failure,
/// a prune failure is reported and never undoes the backup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneOutcome {
    /// Bytes of data no kept snapshot needs any more, removed from the index.
    pub reclaimed_bytes: u64,
    /// Packs deleted now (marked by an earlier prune).
    pub packs_deleted: u64,
    /// Packs marked for deletion by this prune.
    pub packs_marked: u64,
    /// Metadata packs rewritten (only packs of the hot part are ever repacked).
    pub packs_repacked: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Snapshots of the resource the retention rules kept and removed. A failure to apply them does
/// not undo the backup (its snapshot is written): it is reported here and in the log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionOutcome {
    pub kept: u64,
    pub removed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunSummary {
    /// How the run ended; summaries without `result` are read by their `success` flag.
    pub fn result(&self) -> RunResult {
        self.result.unwrap_or(if self.success {
            RunResult::Success
        } else {
            RunResult::Failed
        })
    }

    /// Compact JSON that fits the termination log. What gives way, in order: long failure
    /// reasons and paths, then listed failures beyond the first, then the error message; never
    /// the counters.
    pub fn to_json_line(&self) -> String {
        let mut shortened = self.clone();
        shortened.failures.truncate(SUMMARY_MAX_FAILED_PATHS);
        for f in &mut shortened.failures {
            f.path = cut(&f.path, 300);
            f.reason = cut(&f.reason, 200);
        }
        // The errors of what ran after the snapshot; the check's names the damage found.
        for (error, max) in [
            (
                shortened.retention.as_mut().and_then(|r| r.error.as_mut()),
                300,
            ),
            (shortened.prune.as_mut().and_then(|p| p.error.as_mut()), 300),
            (shortened.check.as_mut().and_then(|c| c.error.as_mut()), 600),
            (
                shortened
                    .object_lock
                    .as_mut()
                    .and_then(|l| l.error.as_mut()),
                300,
            ),
        ] {
            if let Some(error) = error {
                *error = cut(error, max);
            }
        }
        if let Some(restore) = shortened.restore.as_mut() {
            for p in &mut restore.paths {
                *p = cut(p, 200);
            }
        }
        if let Some(held) = shortened.held_snapshots.as_mut() {
            held.truncate(ChangeProfile::MAX_NAMED);
        }
        if let Some(changes) = shortened.changes.as_mut() {
            changes.new_extensions.truncate(ChangeProfile::MAX_NAMED);
            changes.top_dirs.truncate(ChangeProfile::MAX_NAMED);
            for e in &mut changes.new_extensions {
                *e = cut(e, 20);
            }
            for d in &mut changes.top_dirs {
                d.path = cut(&d.path, 150);
            }
        }
        if let Some(anomaly) = shortened.anomaly.as_mut() {
            for r in &mut anomaly.reasons {
                r.message = cut(&r.message, 200);
            }
            if let Some(e) = anomaly.hold_error.as_mut() {
                *e = cut(e, 200);
            }
        }
        loop {
            let line = serde_json::to_string(&shortened).unwrap_or_default();
            if line.len() <= SUMMARY_MAX_BYTES {
                return line;
            }
            if shortened.failures.len() > 1 {
                shortened.failures.pop();
                continue;
            }
            if let Some(restore) = shortened.restore.as_mut().filter(|r| !r.paths.is_empty()) {
                restore.paths.pop();
                continue;
            }
            if let Some(changes) = shortened.changes.as_mut().filter(|c| c.top_dirs.len() > 1) {
                changes.top_dirs.pop();
                continue;
            }
            let excess = line.len() - SUMMARY_MAX_BYTES;
            match &shortened.error {
                Some(err) if !err.is_empty() => {
                    shortened.error = Some(cut(err, err.len().saturating_sub(excess + 3)));
                }
                _ if !shortened.failures.is_empty() => {
                    shortened.failures.clear();
                }
                _ => return line,
            }
        }
    }
}

/// `text` shortened to at most `max` bytes (plus `...`) on a character boundary.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_are_cut_to_fit_the_termination_log() {
        let summary = RunSummary {
            command: "backup".into(),
            error: Some("é".repeat(5000)),
            ..Default::default()
        };
        let line = summary.to_json_line();
        assert!(line.len() <= SUMMARY_MAX_BYTES, "{} bytes", line.len());
        let back: RunSummary = serde_json::from_str(&line).expect("valid JSON");
        assert!(back.error.expect("error kept").ends_with("..."));
    }

    #[test]
    fn many_long_failed_paths_still_fit_and_keep_the_counters() {
        let summary = RunSummary {
            command: "backup".into(),
            result: Some(RunResult::Incomplete),
            failed_paths: 4102,
            failures: (0..50)
                .map(|i| FailedPath {
                    path: format!("{i}/{}", "ü".repeat(400)),
                    reason: "553 Prohibited file name ".repeat(40),
                })
                .collect(),
            error: Some("x".repeat(3000)),
            ..Default::default()
        };
        let line = summary.to_json_line();
        assert!(line.len() <= SUMMARY_MAX_BYTES, "{} bytes", line.len());
        let back: RunSummary = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(back.failed_paths, 4102);
        assert_eq!(back.result(), RunResult::Incomplete);
        assert!(!back.failures.is_empty(), "the first failure is kept");
        assert!(back.failures[0].path.starts_with("0/"));
    }

    #[test]
    fn a_full_change_profile_and_anomaly_fit_and_keep_their_counts() {
        let summary = RunSummary {
            command: "backup".into(),
            success: true,
            changes: Some(ChangeProfile {
                files_before: 10_000,
                files_deleted: 6_000,
                new_extensions: (0..50)
                    .map(|i| format!("ext{i}-{}", "x".repeat(30)))
                    .collect(),
                top_dirs: (0..50)
                    .map(|i| DirChanges {
                        path: format!("{i}/{}", "ü".repeat(300)),
                        files: 100 - i,
                    })
                    .collect(),
                ..Default::default()
            }),
            anomaly: Some(Anomaly {
                reasons: (0..4)
                    .map(|i| AnomalyReason {
                        code: format!("R{i}"),
                        message: "m".repeat(1000),
                    })
                    .collect(),
                held_snapshot: Some("a".repeat(64)),
                hold_error: None,
            }),
            held_snapshots: Some((0..20).map(|i| format!("{i:064}")).collect()),
            error: Some("e".repeat(2000)),
            ..Default::default()
        };
        let line = summary.to_json_line();
        assert!(line.len() <= SUMMARY_MAX_BYTES, "{} bytes", line.len());
        let back: RunSummary = serde_json::from_str(&line).expect("valid JSON");
        let changes = back.changes.expect("profile kept");
        assert_eq!(changes.files_deleted, 6_000);
        assert!(!changes.top_dirs.is_empty() && changes.top_dirs.len() <= ChangeProfile::MAX_NAMED);
        assert_eq!(back.anomaly.expect("anomaly kept").reasons.len(), 4);
        assert_eq!(
            back.held_snapshots.map(|h| h.len()),
            Some(ChangeProfile::MAX_NAMED)
        );
    }

    #[test]
    fn summaries_of_older_jobs_read_their_result_from_success() {
        let old: RunSummary = serde_json::from_str(
            r#"{"command":"backup","success":true,"startTime":"","endTime":"","durationSeconds":1,"filesNew":0,"filesChanged":0,"filesUnmodified":0,"dirs":0,"bytesListed":0,"bytesDownloaded":0,"filesDownloaded":0,"bytesAdded":0}"#,
        )
        .expect("old summary");
        assert_eq!(old.result(), RunResult::Success);
        assert_eq!(RunSummary::default().result(), RunResult::Failed);
    }

    #[test]
    fn summary_round_trips_through_json() {
        let summary = RunSummary {
            command: "backup".into(),
            success: true,
            snapshot_id: Some("abc".into()),
            files_new: 3,
            bytes_downloaded: 42,
            ..Default::default()
        };
        let back: RunSummary = serde_json::from_str(&summary.to_json_line()).expect("valid JSON");
        assert_eq!(back, summary);
    }
}
