use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Counters of one run, shared by the listing, the downloads and the progress reporter, plus the
/// first failure: once set, the run can no longer produce a snapshot.
#[derive(Debug, Default)]
pub struct SourceStats {
    pub files_listed: AtomicU64,
    pub dirs_listed: AtomicU64,
    pub bytes_listed: AtomicU64,
    pub files_downloaded: AtomicU64,
    pub bytes_downloaded: AtomicU64,
    failure: Mutex<Option<String>>,
}

impl SourceStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Records a failure; the first one is what the run reports.
    pub fn fail(&self, message: impl Into<String>) {
        let message = message.into();
        tracing::error!("{message}");
        if let Ok(mut failure) = self.failure.lock() {
            failure.get_or_insert(message);
        }
    }

    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    pub fn has_failed(&self) -> bool {
        self.failure.lock().map(|f| f.is_some()).unwrap_or(true)
    }
}
