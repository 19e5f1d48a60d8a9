//! The rolling read-data check: every successful backup reads one slice of the data packs
//! (rustic's `read_data_subset` n/m, the slices in turn), so every pack has been read back from
//! the bucket once every `maintenance.check_slices` backups — a month of daily ones by default —
//! without any run reading everything. The metadata (index, snapshots, trees) is checked in full
//! every time: it lives in the hot part, on local disk. A finding fails the run as
//! `RepositoryDamaged`; the backup it follows is written, and later backups still run.

use rustic_core::{CheckOptions, Open, ReadSubsetOption, Repository};
use unstoppable_contract::{CheckOutcome, JobConfig};

use super::State;

/// Which slice (1-based) of how many this run reads, moving the state on to the next one.
pub fn next_slice(state: &mut State, slices: u32) -> (u32, u32) {
    let slice = state.next_check_slice % slices;
    state.next_check_slice = (slice + 1) % slices;
    (slice + 1, slices)
}

/// Checks the repository and reads this run's slice of the data packs; `None` when the rolling
/// check is off (`maintenance.check_slices` 0).
pub fn run<S: Open>(
    cfg: &JobConfig,
    repo: &Repository<S>,
    state: &mut State,
) -> Option<CheckOutcome> {
    let slices = cfg.maintenance.check_slices;
    if slices == 0 {
        return None;
    }
    let (n, m) = next_slice(state, slices);
    let opts = CheckOptions::default()
        .read_data(true)
        .read_data_subset(ReadSubsetOption::IdSubSet((n, m)));
    let outcome = match repo.check(opts) {
        Ok(results) => match results.is_ok() {
            Ok(()) => CheckOutcome {
                slice: format!("{n}/{m}"),
                error: None,
            },
            Err(e) => CheckOutcome {
                slice: format!("{n}/{m}"),
                error: Some(format!("the check found damage: {}", e.display_log())),
            },
        },
        Err(e) => CheckOutcome {
            slice: format!("{n}/{m}"),
            error: Some(format!("the check could not run: {e}")),
        },
    };
    match &outcome.error {
        None => tracing::info!(slice = %outcome.slice, "repository checked"),
        Some(e) => tracing::error!(slice = %outcome.slice, "{e}"),
    }
    Some(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slices_are_read_in_turn_and_a_changed_count_starts_over_safely() {
        let mut state = State::default();
        let seen: Vec<_> = (0..5).map(|_| next_slice(&mut state, 3)).collect();
        assert_eq!(seen, vec![(1, 3), (2, 3), (3, 3), (1, 3), (2, 3)]);
        // Fewer slices than the remembered position: still a valid slice.
        state.next_check_slice = 7;
        assert_eq!(next_slice(&mut state, 4), (4, 4));
        assert_eq!(next_slice(&mut state, 4), (1, 4));
    }
}
