//! Repository upkeep inside a successful backup run, after the retention rules: a prune when due
//! and a slice of the rolling read-data check. No schedule and no lock of their own (the run's
//! lock and `concurrencyPolicy: Forbid` keep them single). What they remember between runs is
//! kept in the hot directory, next to the run lock; a lost hot volume only means an early prune
//! and a check that starts its round again.

pub mod check;
pub mod locks;
pub mod prune;
pub mod size;

use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// In the hot directory, next to the run lock.
const STATE_FILE: &str = ".unstoppable-maintenance.json";

/// What upkeep remembers between runs.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub last_prune: Option<Timestamp>,
    /// The slice of the data packs the next check reads (0-based, modulo the slice count).
    #[serde(default)]
    pub next_check_slice: u32,
}

impl State {
    /// The remembered state; a missing or unreadable file means "nothing done yet" (a prune
    /// too many is harmless).
    pub fn load(hot: &Path) -> State {
        let path = hot.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!("ignoring {}: {e}", path.display());
                State::default()
            }),
            Err(_) => State::default(),
        }
    }

    /// Writes the state atomically: a crash leaves the old file or the new one. A failure is
    /// logged only: the work is done, the next run merely repeats some of it.
    pub fn save(&self, hot: &Path) {
        let path = hot.join(STATE_FILE);
        let tmp = hot.join(format!("{STATE_FILE}.tmp"));
        let written = serde_json::to_vec(self)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            tracing::warn!("cannot record maintenance state in {}: {e}", hot.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_survives_a_round_trip_and_a_broken_file_means_nothing_done() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = State {
            last_prune: Some("2026-03-01T00:00:00Z".parse().expect("time")),
            next_check_slice: 4,
        };
        state.save(dir.path());
        assert_eq!(State::load(dir.path()), state);
        std::fs::write(dir.path().join(STATE_FILE), b"{not json").expect("write");
        assert_eq!(State::load(dir.path()), State::default());
    }
}
