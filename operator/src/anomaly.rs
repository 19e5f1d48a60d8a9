//! What a successful backup's change profile and verdict do to a BackupResource's status: the
//! last changes, the anomaly kept until its held snapshot is released, the `SourceAnomaly`
//! condition. Pure: the status and the summary in, the Event to emit out.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use unstoppable_contract::{ChangeProfile, RunSummary};

use crate::conditions;
use crate::crd::{AnomalyReasonStatus, AnomalyStatus, BackupResourceStatus, ChangesStatus};

pub const CONDITION: &str = "SourceAnomaly";

/// An Event to emit: warning or not, reason, message.
pub type Note = (bool, &'static str, String);

/// Records the run's changes and verdict in `status`; `None` when the summary has no change
/// profile (detection off, or a job from before it), which leaves everything as it was.
pub fn note(
    status: &mut BackupResourceStatus,
    s: &RunSummary,
    finished: &Time,
    generation: Option<i64>,
) -> Option<Note> {
    let p = s.changes.as_ref()?;
    status.last_changes = Some(Box::new(changes_status(p)));
    let set = |status: &mut BackupResourceStatus, on: bool, reason: &str, message: &str| {
        conditions::set(
            &mut status.conditions,
            CONDITION,
            on,
            reason,
            message,
            generation,
            finished.clone(),
        )
    };
    if let Some(a) = &s.anomaly {
        let snapshot = s.snapshot_id.clone().unwrap_or_default();
        let held = a.held_snapshot.clone();
        let reasons: Vec<AnomalyReasonStatus> = a
            .reasons
            .iter()
            .map(|r| AnomalyReasonStatus {
                code: r.code.clone(),
                message: r.message.clone(),
            })
            .collect();
        let measured: Vec<&str> = reasons.iter().map(|r| r.message.as_str()).collect();
        let message = match (&held, &a.hold_error) {
            (Some(h), _) => format!(
                "snapshot {snapshot}: {}. The last good snapshot {h} is held: restore from it if the source was attacked, then set spec.anomaly.releaseHold: {h}",
                measured.join("; ")
            ),
            (None, e) => format!(
                "snapshot {snapshot}: {}. No snapshot could be held: {}",
                measured.join("; "),
                e.as_deref().unwrap_or("none before it")
            ),
        };
        let code = reasons
            .first()
            .map_or("SourceAnomaly", |r| reason_of(&r.code));
        status.anomaly = Some(Box::new(AnomalyStatus {
            time: finished.clone(),
            snapshot,
            held_snapshot: held,
            reasons,
        }));
        set(status, true, code, &message);
        return Some((true, "SourceAnomaly", message));
    }
    let released = match status.anomaly.as_ref().map(|a| a.held_snapshot.as_deref()) {
        None => None,
        // Released only when the run could tell: its list is there, and not cut off (it names
        // the newest few) before it could name this one.
        Some(Some(h)) => s
            .held_snapshots
            .as_ref()
            .filter(|list| !list.iter().any(|x| x == h) && list.len() < ChangeProfile::MAX_NAMED)
            .map(|_| {
                format!("the hold of snapshot {h} was released; the source changed as usual since")
            }),
        // Nothing was held: a normal run after it ends it.
        Some(None) => Some("the source changed as usual since the anomaly".to_string()),
    };
    match released {
        Some(message) => {
            status.anomaly = None;
            set(status, false, "HoldReleased", &message);
            Some((false, "HoldReleased", message))
        }
        None if status.anomaly.is_some() => None,
        None => {
            let message = format!(
                "{} new, {} changed, {} deleted, {} renamed of {} files",
                p.files_new, p.files_changed, p.files_deleted, p.files_renamed, p.files_before
            );
            set(status, false, "NoAnomaly", &message);
            None
        }
    }
}

/// Condition reasons are CamelCase words: the job's codes are, anything else is not trusted.
fn reason_of(code: &str) -> &'static str {
    use unstoppable_contract::anomaly_reason::*;
    [
        MASS_DELETION,
        MASS_CHANGE,
        ENCRYPTED_CONTENT,
        NEW_EXTENSIONS,
    ]
    .into_iter()
    .find(|c| *c == code)
    .unwrap_or("SourceAnomaly")
}

fn changes_status(p: &ChangeProfile) -> ChangesStatus {
    ChangesStatus {
        files_before: p.files_before,
        files_new: p.files_new,
        files_changed: p.files_changed,
        files_deleted: p.files_deleted,
        files_renamed: p.files_renamed,
        files_incompressible: p.files_incompressible,
        files_new_extension: p.files_new_extension,
        new_extensions: p
            .new_extensions
            .iter()
            .take(ChangeProfile::MAX_NAMED)
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unstoppable_contract::{Anomaly, AnomalyReason};

    fn at(s: &str) -> Time {
        Time(s.parse().expect("time"))
    }

    fn normal(held: &[&str]) -> RunSummary {
        RunSummary {
            snapshot_id: Some("b".repeat(64)),
            changes: Some(ChangeProfile {
                files_before: 100,
                files_changed: 2,
                ..Default::default()
            }),
            held_snapshots: Some(held.iter().map(|h| h.to_string()).collect()),
            ..Default::default()
        }
    }

    fn attacked() -> RunSummary {
        RunSummary {
            anomaly: Some(Anomaly {
                reasons: vec![AnomalyReason {
                    code: "MassDeletion".into(),
                    message: "60 of 100 files deleted".into(),
                }],
                held_snapshot: Some("aaaa1111".into()),
                hold_error: None,
            }),
            ..normal(&["aaaa1111"])
        }
    }

    fn condition(status: &BackupResourceStatus) -> (String, String) {
        let c = status
            .conditions
            .iter()
            .find(|c| c.type_ == CONDITION)
            .expect("condition");
        (c.status.clone(), c.reason.clone())
    }

    #[test]
    fn an_anomaly_stays_until_its_hold_is_released() {
        let mut status = BackupResourceStatus::default();
        assert_eq!(
            note(
                &mut status,
                &normal(&[]),
                &at("2026-05-01T03:00:00Z"),
                Some(1)
            ),
            None
        );
        assert_eq!(condition(&status), ("False".into(), "NoAnomaly".into()));

        let event = note(
            &mut status,
            &attacked(),
            &at("2026-05-02T03:00:00Z"),
            Some(1),
        );
        let (warning, reason, message) = event.expect("an event");
        assert!(warning);
        assert_eq!(reason, "SourceAnomaly");
        assert!(message.contains("releaseHold: aaaa1111"), "{message}");
        assert_eq!(condition(&status), ("True".into(), "MassDeletion".into()));
        assert_eq!(
            status.last_changes.as_ref().map(|c| c.files_before),
            Some(100)
        );

        // A run that could not tell what is held changes nothing.
        let unknown = RunSummary {
            held_snapshots: None,
            ..normal(&[])
        };
        assert_eq!(
            note(&mut status, &unknown, &at("2026-05-02T09:00:00Z"), Some(1)),
            None
        );
        assert!(status.anomaly.is_some());
        // Later normal runs keep it while the snapshot is held.
        assert_eq!(
            note(
                &mut status,
                &normal(&["aaaa1111"]),
                &at("2026-05-03T03:00:00Z"),
                Some(1)
            ),
            None
        );
        assert_eq!(condition(&status).0, "True");
        assert!(status.anomaly.is_some());

        let (warning, reason, _) = note(
            &mut status,
            &normal(&[]),
            &at("2026-05-04T03:00:00Z"),
            Some(2),
        )
        .expect("released");
        assert!(!warning);
        assert_eq!(reason, "HoldReleased");
        assert!(status.anomaly.is_none());
        assert_eq!(condition(&status), ("False".into(), "HoldReleased".into()));
    }

    #[test]
    fn a_run_without_a_profile_changes_nothing() {
        let mut status = BackupResourceStatus::default();
        note(
            &mut status,
            &attacked(),
            &at("2026-05-02T03:00:00Z"),
            Some(1),
        );
        let before = status.clone();
        let old_job = RunSummary {
            changes: None,
            ..normal(&[])
        };
        assert_eq!(
            note(&mut status, &old_job, &at("2026-05-03T03:00:00Z"), Some(1)),
            None
        );
        assert_eq!(status, before);
    }

    #[test]
    fn unknown_codes_do_not_become_condition_reasons() {
        assert_eq!(reason_of("EncryptedContent"), "EncryptedContent");
        assert_eq!(reason_of("bad reason!"), "SourceAnomaly");
    }
}
