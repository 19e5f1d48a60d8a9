//! Prune when due, inside a successful backup run after the retention rules: no schedule and no
//! lock of its own (the run's lock and `concurrencyPolicy: Forbid` keep it single). The time of
//! the last prune is kept in the hot directory, so a prune missed (no backup that week) runs at
//! the next backup.
//!
//! rustic's prune is two-phase and lock-free: packs no snapshot needs are marked, and deleted by
//! a later prune at least 23 hours on. Only packs of the hot part (trees) are ever repacked
//! (`repack_cacheable_only`): data packs are never downloaded from the bucket, they are only
//! deleted once nothing in them is used. On a versioned bucket a delete adds a delete marker;
//! locked versions stay until their retention ends.

use std::path::Path;

use jiff::{SignedDuration, Timestamp};
use rustic_core::{Open, PruneOptions, Repository};
use serde::{Deserialize, Serialize};
use unstoppable_contract::{JobConfig, PruneOutcome};

/// In the hot directory, next to the run lock.
const STATE_FILE: &str = ".unstoppable-maintenance.json";

/// What maintenance remembers between runs.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct State {
    last_prune: Option<Timestamp>,
}

/// Whether a prune is due at `now`, the last one having been at `last`.
pub fn due(last: Option<Timestamp>, now: Timestamp, interval_days: u32) -> bool {
    let Some(last) = last else {
        return true;
    };
    let interval = SignedDuration::from_hours(24 * i64::from(interval_days));
    now.duration_since(last) >= interval
}

/// Prunes `repo` if a prune is due at `now`; `None` when none was.
pub fn run_if_due<S: Open>(
    cfg: &JobConfig,
    repo: &Repository<S>,
    now: Timestamp,
) -> Option<PruneOutcome> {
    let hot = Path::new(&cfg.repository.hot_dir);
    let mut state = load(hot);
    if !due(state.last_prune, now, cfg.maintenance.prune_interval_days) {
        return None;
    }
    Some(match prune(repo) {
        Ok(outcome) => {
            tracing::info!(
                reclaimed_bytes = outcome.reclaimed_bytes,
                packs_marked = outcome.packs_marked,
                packs_deleted = outcome.packs_deleted,
                "pruned"
            );
            state.last_prune = Some(now);
            if let Err(e) = save(hot, &state) {
                // The prune is done; the next run only prunes again early.
                tracing::warn!("cannot record the prune in {}: {e}", hot.display());
            }
            outcome
        }
        Err(e) => {
            tracing::error!("prune failed (the backup is written; the next run tries again): {e}");
            PruneOutcome {
                error: Some(e),
                ..Default::default()
            }
        }
    })
}

fn prune<S: Open>(repo: &Repository<S>) -> Result<PruneOutcome, String> {
    let opts = PruneOptions::default().repack_cacheable_only(Some(true));
    let plan = repo
        .prune_plan(&opts)
        .map_err(|e| format!("planning the prune: {e}"))?;
    let size = plan.stats.size_sum();
    let outcome = PruneOutcome {
        reclaimed_bytes: size.remove + size.repackrm,
        packs_deleted: plan.stats.packs_to_delete.remove,
        packs_marked: plan.stats.packs.unused,
        packs_repacked: plan.stats.packs.repack,
        error: None,
    };
    repo.prune(&opts, plan)
        .map_err(|e| format!("pruning: {e}"))?;
    Ok(outcome)
}

/// The remembered state; a missing or unreadable file means "never pruned" (a prune too many is
/// harmless).
fn load(hot: &Path) -> State {
    let path = hot.join(STATE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!("ignoring {}: {e}", path.display());
            State::default()
        }),
        Err(_) => State::default(),
    }
}

/// Writes the state atomically: a crash leaves the old file or the new one.
fn save(hot: &Path, state: &State) -> std::io::Result<()> {
    let path = hot.join(STATE_FILE);
    let tmp = hot.join(format!("{STATE_FILE}.tmp"));
    let bytes = serde_json::to_vec(state).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Timestamp {
        text.parse().expect("time")
    }

    #[test]
    fn a_prune_is_due_first_then_after_the_interval_and_a_missed_one_at_once() {
        assert!(due(None, t("2026-03-01T00:00:00Z"), 7));
        let last = Some(t("2026-03-01T00:00:00Z"));
        assert!(!due(last, t("2026-03-07T23:59:59Z"), 7));
        assert!(due(last, t("2026-03-08T00:00:00Z"), 7));
        // No backup for weeks: the next one prunes.
        assert!(due(last, t("2026-04-20T00:00:00Z"), 7));
        assert!(due(last, t("2026-03-01T00:00:00Z"), 0));
    }

    #[test]
    fn the_state_survives_a_round_trip_and_a_broken_file_means_never() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = State {
            last_prune: Some(t("2026-03-01T00:00:00Z")),
        };
        save(dir.path(), &state).expect("save");
        assert_eq!(load(dir.path()).last_prune, state.last_prune);
        std::fs::write(dir.path().join(STATE_FILE), b"{not json").expect("write");
        assert_eq!(load(dir.path()).last_prune, None);
    }
}
