//! Object Lock that lasts as long as the data is needed. A bucket's default retention locks a
//! version for N days from its upload, but a pack written on day 0 may be needed by a snapshot
//! kept for a year: after N days anyone with the job's keys could delete it. So whenever a prune
//! has run (it has just removed what no snapshot needs), every object the repository still has
//! whose lock ends within the margin is locked again until now + N days, as Kopia's
//! `--extend-object-locks` does. The margin is twice the prune interval, so a lock cannot run
//! out before the next prune extends it (the configuration refuses N not above that).

use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{ObjectLockRetention, ObjectLockRetentionMode};
use jiff::{SignedDuration, Timestamp};
use unstoppable_contract::{JobConfig, LockOutcome, S3Config};

/// The extension due for one object: `Some(new end)` when its lock ends before `now + margin`.
pub fn extension(
    locked_until: Option<Timestamp>,
    now: Timestamp,
    margin: SignedDuration,
    days: u32,
) -> Option<Timestamp> {
    let until = now
        .checked_add(SignedDuration::from_hours(24 * i64::from(days)))
        .ok()?;
    match locked_until {
        Some(end) if end >= now.checked_add(margin).ok()? => None,
        _ => Some(until),
    }
}

/// Extends the locks of every object under the resource's prefix that needs it; `None` when the
/// bucket has no Object Lock configured for the job.
pub async fn extend(cfg: &JobConfig, now: Timestamp) -> Option<LockOutcome> {
    let s3 = cfg.s3.as_ref()?;
    let days = s3.object_lock_days?;
    let margin = SignedDuration::from_hours(48 * i64::from(cfg.maintenance.prune_interval_days));
    let mut outcome = LockOutcome::default();
    if let Err(e) = extend_all(
        s3,
        &format!("{}/", cfg.resource),
        now,
        margin,
        days,
        &mut outcome,
    )
    .await
    {
        tracing::error!("extending Object Lock retention failed: {e}");
        outcome.error = Some(e);
    } else {
        tracing::info!(
            checked = outcome.checked,
            extended = outcome.extended,
            "Object Lock retention extended to {days} days from now where it ran short"
        );
    }
    Some(outcome)
}

async fn extend_all(
    s3: &S3Config,
    prefix: &str,
    now: Timestamp,
    margin: SignedDuration,
    days: u32,
    outcome: &mut LockOutcome,
) -> Result<(), String> {
    let client = crate::s3client::client(s3);
    let mut pages = client
        .list_objects_v2()
        .bucket(&s3.bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("listing {prefix} in bucket {}: {e}", s3.bucket))?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            // Directory markers of the back-end hold no data.
            if key.ends_with('/') {
                continue;
            }
            outcome.checked += 1;
            let head = client
                .head_object()
                .bucket(&s3.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| format!("reading the lock of {key}: {e}"))?;
            let locked_until = head
                .object_lock_retain_until_date()
                .and_then(|d| Timestamp::from_second(d.secs()).ok());
            let Some(until) = extension(locked_until, now, margin, days) else {
                continue;
            };
            // A lock's mode cannot be weakened: keep the object's own, else the strict one.
            let mode = head
                .object_lock_mode()
                .map(|m| ObjectLockRetentionMode::from(m.as_str()))
                .unwrap_or(ObjectLockRetentionMode::Compliance);
            client
                .put_object_retention()
                .bucket(&s3.bucket)
                .key(key)
                .retention(
                    ObjectLockRetention::builder()
                        .mode(mode)
                        .retain_until_date(DateTime::from_secs(until.as_second()))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| format!("extending the lock of {key}: {e}"))?;
            outcome.extended += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_locks_that_end_within_the_margin_are_extended_to_now_plus_the_days() {
        let now: Timestamp = "2026-03-10T00:00:00Z".parse().expect("time");
        let margin = SignedDuration::from_hours(48 * 7);
        let at = |t: &str| Some(t.parse::<Timestamp>().expect("time"));
        let thirty_days_on = at("2026-04-09T00:00:00Z");
        // Ends in 20 days, beyond the 14-day margin: left alone.
        assert_eq!(extension(at("2026-03-30T00:00:00Z"), now, margin, 30), None);
        // Ends in 10 days: extended to now + 30 days.
        assert_eq!(
            extension(at("2026-03-20T00:00:00Z"), now, margin, 30),
            thirty_days_on
        );
        // Ended already, or never locked: locked again.
        assert_eq!(
            extension(at("2026-03-01T00:00:00Z"), now, margin, 30),
            thirty_days_on
        );
        assert_eq!(extension(None, now, margin, 30), thirty_days_on);
    }
}
