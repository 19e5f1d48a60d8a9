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
        crate::hot_state::load(hot, STATE_FILE)
    }

    /// Writes the state; a failure is logged only: the work is done, the next run merely
    /// repeats some of it.
    pub fn save(&self, hot: &Path) {
        crate::hot_state::save(hot, STATE_FILE, self)
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
