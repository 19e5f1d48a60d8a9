//! Which snapshots of a resource to keep: pure planning over its snapshot list with rustic's
//! `KeepOptions`, plus the rules rustic does not know. No I/O here; `backup.rs` applies the plan.
//!
//! - Only the resource's own snapshots are considered (host and `resource:`/`customer:` tags).
//! - Snapshots tagged `incomplete` never take a keep slot from a complete one: the rules are
//!   applied to the complete snapshots; incomplete ones are kept only while they are newer than
//!   every complete snapshot (they then hold the newest copy of what could be read), under the
//!   same rules among themselves so that a source that never reads completely is still bounded.
//! - The newest complete snapshot is always kept.
//! - Snapshots tagged `hold` are always kept and take no keep slot: released, they are subject
//!   to the rules again.

use jiff::{Span, Zoned};
use rustic_core::repofile::{SnapshotFile, SnapshotId};
use rustic_core::KeepOptions;
use unstoppable_contract::RetentionConfig;

use crate::config::ConfigError;

/// What to keep and what to forget.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub keep: Vec<SnapshotId>,
    pub forget: Vec<SnapshotId>,
}

/// The keep rules for rustic, from the configuration (or the default rules when none is set).
pub fn keep_options(rules: &RetentionConfig) -> Result<KeepOptions, ConfigError> {
    let rules = rules.or_default_rules();
    let count = |key: &str, n: Option<u32>| -> Result<Option<i32>, ConfigError> {
        n.map(|n| {
            i32::try_from(n).map_err(|_| {
                ConfigError::new(key, format!("{n} is too large; at most {}", i32::MAX))
            })
        })
        .transpose()
    };
    let within = rules
        .keep_within
        .as_deref()
        .map(|text| {
            text.parse::<Span>().map_err(|e| {
                ConfigError::new(
                    "retention.keep_within",
                    format!("`{text}` is not a duration such as `30d` or `1y 2mo`: {e}"),
                )
            })
        })
        .transpose()?;
    Ok(KeepOptions::default()
        .keep_last(count("retention.keep_last", rules.keep_last)?)
        .keep_hourly(count("retention.keep_hourly", rules.keep_hourly)?)
        .keep_daily(count("retention.keep_daily", rules.keep_daily)?)
        .keep_weekly(count("retention.keep_weekly", rules.keep_weekly)?)
        .keep_monthly(count("retention.keep_monthly", rules.keep_monthly)?)
        .keep_yearly(count("retention.keep_yearly", rules.keep_yearly)?)
        .keep_within(within))
}

/// Whether `sn` is a snapshot of this customer's resource.
pub fn is_of(sn: &SnapshotFile, customer: &str, resource: &str) -> bool {
    let tagged = |tag: String| sn.tags.contains(&tag);
    sn.hostname == resource
        && tagged(format!("resource:{resource}"))
        && tagged(format!("customer:{customer}"))
}

/// The tag of a held snapshot (see `hold.rs`).
pub const HOLD_TAG: &str = "hold";

/// Plans retention over the snapshots of one resource (see the module's rules).
pub fn plan(
    snapshots: Vec<SnapshotFile>,
    keep: &KeepOptions,
    incomplete_tag: &str,
    now: &Zoned,
) -> Result<Plan, String> {
    let (held, snapshots): (Vec<_>, Vec<_>) = snapshots
        .into_iter()
        .partition(|sn| sn.tags.contains(HOLD_TAG));
    let (incomplete, complete): (Vec<_>, Vec<_>) = snapshots
        .into_iter()
        .partition(|sn| sn.tags.contains(incomplete_tag));
    let newest_complete = complete.iter().map(|sn| sn.time.clone()).max();
    let mut plan = Plan::default();
    let apply = |snapshots: Vec<SnapshotFile>, plan: &mut Plan| -> Result<(), String> {
        for decided in keep.apply(snapshots, now).map_err(|e| e.to_string())? {
            let newest = Some(&decided.snapshot.time) == newest_complete.as_ref()
                && !decided.snapshot.tags.contains(incomplete_tag);
            if decided.keep || newest {
                plan.keep.push(decided.snapshot.id);
            } else {
                plan.forget.push(decided.snapshot.id);
            }
        }
        Ok(())
    };
    apply(complete, &mut plan)?;
    let (newer, older): (Vec<_>, Vec<_>) = incomplete
        .into_iter()
        .partition(|sn| newest_complete.as_ref().is_none_or(|t| sn.time > *t));
    plan.forget.extend(older.into_iter().map(|sn| sn.id));
    apply(newer, &mut plan)?;
    plan.keep.extend(held.into_iter().map(|sn| sn.id));
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustic_core::StringList;

    const INCOMPLETE: &str = "incomplete";

    fn at(day: i64, hour: i64) -> Zoned {
        let base: Zoned = "2026-01-01T00:00:00+00:00[UTC]".parse().expect("time");
        base.checked_add(Span::new().days(day).hours(hour))
            .expect("time")
    }

    fn snapshot(n: u8, time: Zoned, tags: &str) -> SnapshotFile {
        let mut sn = SnapshotFile {
            time,
            hostname: "www".into(),
            ..Default::default()
        };
        sn.id = SnapshotId::from(rustic_core::Id::new([n; 32]));
        let mut all = "customer:acme,resource:www".to_string();
        if !tags.is_empty() {
            all = format!("{all},{tags}");
        }
        sn.tags = all.parse::<StringList>().expect("tags");
        sn
    }

    fn ids(list: &[u8]) -> Vec<SnapshotId> {
        list.iter()
            .map(|n| SnapshotId::from(rustic_core::Id::new([*n; 32])))
            .collect()
    }

    fn sorted(mut v: Vec<SnapshotId>) -> Vec<SnapshotId> {
        v.sort();
        v
    }

    fn rules(last: Option<u32>, daily: Option<u32>) -> KeepOptions {
        keep_options(&RetentionConfig {
            keep_last: last,
            keep_daily: daily,
            ..Default::default()
        })
        .expect("rules")
    }

    #[test]
    fn keep_last_and_daily_keep_exactly_their_slots() {
        // Twelve backups, two a day over six days: keep-last 3 + keep-daily 2.
        let snaps: Vec<_> = (0..12u8)
            .map(|i| snapshot(i + 1, at(i64::from(i / 2), 6 + 12 * i64::from(i % 2)), ""))
            .collect();
        let plan = plan(snaps, &rules(Some(3), Some(2)), INCOMPLETE, &at(6, 0)).expect("plan");
        // The last three (12, 11, 10), and the newest of the two newest days (12 on day 5, 10 on day 4).
        assert_eq!(sorted(plan.keep), sorted(ids(&[12, 11, 10])));
        assert_eq!(plan.forget.len(), 9);
    }

    #[test]
    fn incomplete_snapshots_never_take_a_slot_of_a_complete_one() {
        let snaps = vec![
            snapshot(1, at(0, 0), ""),
            snapshot(2, at(1, 0), INCOMPLETE),
            snapshot(3, at(2, 0), ""),
            snapshot(4, at(3, 0), INCOMPLETE),
            snapshot(5, at(4, 0), INCOMPLETE),
        ];
        let plan = plan(snaps, &rules(Some(2), None), INCOMPLETE, &at(5, 0)).expect("plan");
        // Complete: 3 and 1 fill keep-last 2; incomplete 2 is older than the newest complete one;
        // 5 and 4 are newer than every complete snapshot and fill their own keep-last 2.
        assert_eq!(sorted(plan.keep), sorted(ids(&[1, 3, 4, 5])));
        assert_eq!(plan.forget, ids(&[2]));
    }

    #[test]
    fn a_held_snapshot_is_always_kept_and_takes_no_slot() {
        let snaps = vec![
            snapshot(1, at(0, 0), HOLD_TAG),
            snapshot(2, at(1, 0), ""),
            snapshot(3, at(2, 0), ""),
        ];
        let plan = plan(snaps, &rules(Some(1), None), INCOMPLETE, &at(3, 0)).expect("plan");
        assert_eq!(sorted(plan.keep), sorted(ids(&[1, 3])));
        assert_eq!(plan.forget, ids(&[2]));
    }

    #[test]
    fn the_newest_complete_snapshot_is_always_kept() {
        // keep-within counts back from the newest snapshot, which is incomplete here.
        let snaps = vec![
            snapshot(1, at(0, 0), ""),
            snapshot(2, at(30, 0), INCOMPLETE),
        ];
        let keep = keep_options(&RetentionConfig {
            keep_within: Some("2d".into()),
            ..Default::default()
        })
        .expect("rules");
        let plan = plan(snaps, &keep, INCOMPLETE, &at(31, 0)).expect("plan");
        assert!(plan.keep.contains(&ids(&[1])[0]), "{plan:?}");
    }

    #[test]
    fn no_rule_means_the_documented_default() {
        let snaps: Vec<_> = (0..40u8)
            .map(|i| snapshot(i + 1, at(i64::from(i), 3), ""))
            .collect();
        let defaults = keep_options(&RetentionConfig::default()).expect("rules");
        let planned = plan(snaps, &defaults, INCOMPLETE, &at(41, 0)).expect("plan");
        // keep-last 7 and keep-daily 7 (days 33-39), keep-weekly 5, keep-monthly 12 over 40
        // daily backups.
        assert!(
            planned.keep.len() >= 7 && planned.keep.len() <= 7 + 5 + 2,
            "{}",
            planned.keep.len()
        );
        assert!(!planned.forget.is_empty());
        // Several backups a day are not thinned out at once.
        let same_day: Vec<_> = (0..5u8)
            .map(|i| snapshot(i + 1, at(0, i64::from(i)), ""))
            .collect();
        let planned = plan(same_day, &defaults, INCOMPLETE, &at(1, 0)).expect("plan");
        assert_eq!(planned.forget, Vec::new());
    }

    #[test]
    fn only_the_resources_own_snapshots_are_planned() {
        let mine = snapshot(1, at(0, 0), "");
        let mut other = snapshot(2, at(0, 0), "");
        other.tags = "customer:acme,resource:db".parse().expect("tags");
        assert!(is_of(&mine, "acme", "www"));
        assert!(!is_of(&other, "acme", "www"));
        assert!(!is_of(&mine, "other-customer", "www"));
    }

    #[test]
    fn bad_rules_name_the_key() {
        let err = keep_options(&RetentionConfig {
            keep_within: Some("a while".into()),
            ..Default::default()
        })
        .expect_err("bad duration");
        assert_eq!(err.key, "retention.keep_within");
    }
}
