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

use jiff::{SignedDuration, Timestamp};
use rustic_core::{Open, PruneOptions, Repository};
use unstoppable_contract::{JobConfig, PruneOutcome};

use super::State;

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
    state: &mut State,
    now: Timestamp,
) -> Option<PruneOutcome> {
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
}
