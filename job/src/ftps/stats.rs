use std::sync::atomic::{AtomicU64, Ordering};

use super::failures::Failures;

/// Counters of one run, shared by the listing, the downloads and the progress reporter, and what
/// went wrong (see [`Failures`]).
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Files and symlinks handed to the archiver.
    pub files_listed: AtomicU64,
    pub dirs_listed: AtomicU64,
    pub bytes_listed: AtomicU64,
    pub files_downloaded: AtomicU64,
    pub bytes_downloaded: AtomicU64,
    /// Files handed to the archiver whose download did not complete (failed or vanished): the
    /// archiver leaves them out of the snapshot.
    pub files_dropped: AtomicU64,
    /// Files of a LIST server dated from the previous snapshot instead of by MDTM.
    pub mdtm_skipped: AtomicU64,
    pub failures: Failures,
    /// Downloaded files whose content does not compress (for the change profile).
    pub incompressible: crate::changes::sample::Incompressible,
}

impl SourceStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
