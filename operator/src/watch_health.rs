//! Whether the watches work: a watch that keeps failing (the API unreachable, an object that
//! cannot be decoded) leaves every tenant's changes unseen, so it must show in `/readyz` and in
//! the metrics, not only in the log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Errors closer together than this belong to one streak (the watcher retries with a backoff
/// of at most ~30 s).
const STREAK_GAP: Duration = Duration::from_secs(90);
/// A streak this long means the watch is stalled.
const STALLED_AFTER: Duration = Duration::from_secs(120);

/// A watch error that is part of how watches work, not a failure: the API server expired the
/// watch's resourceVersion (410 Gone, e.g. after compaction or when a CRD's storage is rebuilt),
/// and the watcher lists again at once. Counting it would page on a healthy operator.
pub fn is_routine(err: &kube::runtime::watcher::Error) -> bool {
    matches!(err, kube::runtime::watcher::Error::WatchError(status) if status.code == 410)
}

#[derive(Debug, Default)]
pub struct WatchHealth {
    streaks: Mutex<HashMap<String, (Instant, Instant)>>,
}

impl WatchHealth {
    /// A watch error of `controller` at `now`.
    pub fn error(&self, controller: &str, now: Instant) {
        if let Ok(mut streaks) = self.streaks.lock() {
            let entry = streaks.entry(controller.to_string()).or_insert((now, now));
            if now.duration_since(entry.1) > STREAK_GAP {
                *entry = (now, now);
            } else {
                entry.1 = now;
            }
        }
    }

    /// The watch of `controller` delivered an object: it works.
    pub fn ok(&self, controller: &str) {
        if let Ok(mut streaks) = self.streaks.lock() {
            streaks.remove(controller);
        }
    }

    /// Controllers whose watch has failed continuously for a while, as of `now`.
    pub fn stalled(&self, now: Instant) -> Vec<String> {
        let Ok(streaks) = self.streaks.lock() else {
            return vec!["unknown".into()];
        };
        let mut stalled: Vec<String> = streaks
            .iter()
            .filter(|(_, (first, last))| {
                now.duration_since(*last) <= STREAK_GAP
                    && last.duration_since(*first) >= STALLED_AFTER
            })
            .map(|(name, _)| name.clone())
            .collect();
        stalled.sort();
        stalled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_watch_is_routine_other_watch_errors_are_not() {
        let status = |code: u16| {
            let s: kube::core::Status = serde_json::from_value(serde_json::json!({
                "status": "Failure", "message": "too old resource version: 702 (703)",
                "reason": "Expired", "code": code
            }))
            .expect("status");
            kube::runtime::watcher::Error::WatchError(Box::new(s))
        };
        assert!(is_routine(&status(410)));
        assert!(!is_routine(&status(403)));
        assert!(!is_routine(
            &kube::runtime::watcher::Error::NoResourceVersion
        ));
    }

    #[test]
    fn a_streak_of_errors_stalls_and_a_success_or_a_pause_clears_it() {
        let h = WatchHealth::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        h.error("resource", at(0));
        assert!(h.stalled(at(1)).is_empty(), "one error is not a stall");
        for s in (30..=150).step_by(30) {
            h.error("resource", at(s));
        }
        assert_eq!(h.stalled(at(151)), vec!["resource".to_string()]);
        assert!(h.stalled(at(400)).is_empty(), "errors stopped long ago");
        h.ok("resource");
        assert!(h.stalled(at(151)).is_empty());
        h.error("job", at(0));
        h.error("job", at(200));
        assert!(
            h.stalled(at(201)).is_empty(),
            "two errors far apart are no streak"
        );
    }
}
