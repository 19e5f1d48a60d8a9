//! What went wrong in one run: at most one fatal failure (the run produces no snapshot) and any
//! number of paths that could not be read (the snapshot is written without them, tagged
//! `incomplete`). The log gets one line per failed path up to [`LOG_LIMIT`], then only the count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use unstoppable_contract::FailedPath;

/// Failed paths logged one by one; beyond this only the total is logged.
pub const LOG_LIMIT: u64 = 20;
/// Failed paths kept with their reason for the summary.
const KEEP: usize = 20;

#[derive(Debug, Default)]
pub struct Failures {
    fatal: Mutex<Option<String>>,
    paths: Mutex<Vec<FailedPath>>,
    failed: AtomicU64,
    vanished: AtomicU64,
}

impl Failures {
    /// Records a failure that makes the whole run meaningless. Only the first is kept and
    /// logged: what follows it is its consequence.
    pub fn fatal(&self, message: impl Into<String>) {
        let message = message.into();
        if let Ok(mut fatal) = self.fatal.lock() {
            if fatal.is_none() {
                tracing::error!("{message}");
                *fatal = Some(message);
            }
        }
    }

    pub fn fatal_message(&self) -> Option<String> {
        self.fatal.lock().ok().and_then(|f| f.clone())
    }

    pub fn is_fatal(&self) -> bool {
        self.fatal.lock().map(|f| f.is_some()).unwrap_or(true)
    }

    /// Records a path that could not be read. Ignored once the run has failed: a path that
    /// fails because the run is ending is not news.
    pub fn path(&self, path: &str, reason: impl Into<String>) {
        if self.is_fatal() {
            return;
        }
        let reason = reason.into();
        let n = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= LOG_LIMIT {
            tracing::warn!("cannot read `{path}`: {reason}");
        }
        if n == LOG_LIMIT + 1 {
            tracing::warn!("more paths cannot be read; the rest are only counted");
        }
        if let Ok(mut paths) = self.paths.lock() {
            if paths.len() < KEEP {
                paths.push(FailedPath {
                    path: path.to_string(),
                    reason,
                });
            }
        }
    }

    /// Records a file or directory that disappeared between listing and reading: not a
    /// failure (it is simply not there any more), but counted.
    pub fn vanished(&self, path: &str) {
        let n = self.vanished.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= LOG_LIMIT {
            tracing::info!("`{path}` vanished while the backup ran");
        }
    }

    pub fn failed_count(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    pub fn vanished_count(&self) -> u64 {
        self.vanished.load(Ordering::Relaxed)
    }

    /// The first failed paths, in the order they failed.
    pub fn first_paths(&self) -> Vec<FailedPath> {
        self.paths.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// The closing log line when more failed than were logged.
    pub fn log_total(&self) {
        let n = self.failed_count();
        if n > LOG_LIMIT {
            tracing::warn!(
                "{n} paths could not be read in all ({} not logged one by one)",
                n - LOG_LIMIT
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_counted_kept_up_to_a_limit_and_ignored_after_a_fatal_failure() {
        let f = Failures::default();
        for i in 0..100 {
            f.path(&format!("/p{i}"), "553 Prohibited file name");
        }
        f.vanished("/gone");
        assert_eq!(f.failed_count(), 100);
        assert_eq!(f.vanished_count(), 1);
        assert_eq!(f.first_paths().len(), KEEP);
        assert_eq!(f.first_paths()[0].path, "/p0");
        assert!(!f.is_fatal());
        f.fatal("server gone");
        f.fatal("and a consequence");
        f.path("/after", "connection reset");
        assert_eq!(f.fatal_message().as_deref(), Some("server gone"));
        assert_eq!(f.failed_count(), 100);
    }
}
