//! Watches the Jobs our CronJobs start; when one finishes, records the outcome in the
//! BackupResource's status, as an Event and in the metrics.

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::ResourceExt;

use crate::anomaly;
use crate::conditions;
use crate::context::Context;
use crate::crd::{BackupResource, BackupResourceStatus, LastFailure, LastSnapshot};
use crate::error::{Error, Result};
use crate::keys::ANNOTATION_RESOURCE;
use crate::metrics::ResourceLabels;
use crate::results::interpret;
use crate::status::patch_status;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use unstoppable_contract::{RunResult, RunSummary};

pub const CONTROLLER: &str = "job";

pub async fn reconcile(job: Arc<Job>, ctx: Arc<Context>) -> Result<Action> {
    ctx.reconciling(
        CONTROLLER,
        job.as_ref(),
        reconcile_once(job.clone(), ctx.clone()),
    )
    .await
}

async fn reconcile_once(job: Arc<Job>, ctx: Arc<Context>) -> Result<Action> {
    let ns = job
        .namespace()
        .ok_or_else(|| Error::NoNamespace(job.name_any()))?;
    let Some(resource_name) = job.annotations().get(ANNOTATION_RESOURCE).cloned() else {
        return Ok(Action::await_change());
    };
    if interpret(&job, &[]).is_none() {
        return Ok(Action::await_change());
    }
    let resources: Api<BackupResource> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(res) = resources.get_opt(&resource_name).await? else {
        return Ok(Action::await_change());
    };
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pods = pods
        .list(&ListParams::default().labels(&format!("job-name={}", job.name_any())))
        .await?
        .items;
    let Some(outcome) = interpret(&job, &pods) else {
        return Ok(Action::await_change());
    };

    let labels = ResourceLabels::of(&res);
    let mut status = res.status.clone().unwrap_or_default();
    // A Job is seen again after every operator restart: record it once.
    let already = if outcome.success {
        status
            .last_successful_time
            .as_ref()
            .is_some_and(|t| t.0 >= outcome.finished.0)
    } else {
        status
            .last_failure
            .as_ref()
            .is_some_and(|f| f.time.0 >= outcome.finished.0)
    };
    let finished_secs = outcome.finished.0.as_second() as f64;
    let record = |count: bool| {
        ctx.metrics.record_run(
            &labels,
            finished_secs,
            outcome.summary.as_ref(),
            outcome.result,
            count,
        )
    };
    if already {
        record(false);
        return Ok(Action::await_change());
    }

    let generation = res.metadata.generation;
    status.last_schedule_time = outcome.started.clone().or(status.last_schedule_time);
    if let Some(summary) = &outcome.summary {
        note_maintenance(&mut status, summary, &outcome.finished);
    }
    let mut anomaly_note = None;
    if outcome.success {
        if let Some(summary) = &outcome.summary {
            anomaly_note = anomaly::note(&mut status, summary, &outcome.finished, generation);
        }
        status.last_successful_time = Some(outcome.finished.clone());
        let s = outcome.summary.clone().unwrap_or_default();
        status.last_snapshot = s.snapshot_id.clone().map(|id| {
            Box::new(LastSnapshot {
                id,
                time: Some(outcome.finished.clone()),
                files_new: s.files_new,
                files_changed: s.files_changed,
                files_unmodified: s.files_unmodified,
                bytes_processed: s.bytes_listed,
                bytes_added: s.bytes_added,
                duration_seconds: s.duration_seconds,
            })
        });
        let message = match &status.last_snapshot {
            Some(snap) => format!(
                "snapshot {}: {} new, {} changed, {} unmodified files; {} bytes added",
                snap.id,
                snap.files_new,
                snap.files_changed,
                snap.files_unmodified,
                snap.bytes_added
            ),
            None => format!("job {} completed", job.name_any()),
        };
        conditions::set(
            &mut status.conditions,
            "LastBackupSucceeded",
            true,
            "BackupSucceeded",
            &message,
            generation,
            outcome.finished.clone(),
        );
        patch_status(&ctx, &res, &status).await?;
        // Counted once the status holds it: a refused (stale) write is redone, not recounted.
        record(true);
        if let Some(p) = outcome.summary.as_ref().and_then(|s| s.changes.as_ref()) {
            ctx.metrics.record_changes(&labels, p);
        }
        ctx.metrics.set_anomaly(&labels, status.anomaly.is_some());
        ctx.event(&res, false, "BackupSucceeded", message).await;
        if let Some((warning, reason, message)) = anomaly_note {
            ctx.event(&res, warning, reason, message).await;
        }
    } else {
        // An incomplete run wrote a snapshot without some paths; a failed one wrote nothing.
        let (code, reason) = if outcome.result == RunResult::Incomplete {
            let s = outcome.summary.clone().unwrap_or_default();
            let reason = format!(
                "snapshot {} is incomplete: {}",
                s.snapshot_id.as_deref().unwrap_or("?"),
                incomplete_text(&s)
            );
            ("BackupIncomplete", reason)
        } else if outcome.summary.as_ref().and_then(|s| s.reason.as_deref())
            == Some(unstoppable_contract::reason::REPOSITORY_DAMAGED)
        {
            // The backup's snapshot is written; the check after it found damage.
            let s = outcome.summary.clone().unwrap_or_default();
            let reason = format!(
                "snapshot {} was written, but the check found damage in the repository: {}",
                s.snapshot_id.as_deref().unwrap_or("?"),
                s.error.as_deref().unwrap_or("see the job's log")
            );
            ("RepositoryDamaged", reason)
        } else {
            let reason = outcome
                .reason
                .clone()
                .unwrap_or_else(|| "the backup job failed".into());
            ("BackupFailed", reason)
        };
        status.last_failure = Some(Box::new(LastFailure {
            time: outcome.finished.clone(),
            reason: reason.clone(),
        }));
        conditions::set(
            &mut status.conditions,
            "LastBackupSucceeded",
            false,
            code,
            &reason,
            generation,
            outcome.finished.clone(),
        );
        patch_status(&ctx, &res, &status).await?;
        // Counted once the status holds it: a refused (stale) write is redone, not recounted.
        record(true);
        ctx.event(
            &res,
            true,
            code,
            format!("job {}: {reason}", job.name_any()),
        )
        .await;
    }
    Ok(Action::await_change())
}

/// Records what ran after the backup (each part only when it ran and succeeded), keeping what
/// earlier runs recorded otherwise.
fn note_maintenance(status: &mut BackupResourceStatus, s: &RunSummary, finished: &Time) {
    let m = status.maintenance.get_or_insert_with(Default::default);
    if let Some(r) = s.retention.as_ref().filter(|r| r.error.is_none()) {
        m.snapshots_kept = Some(r.kept);
    }
    if s.prune.as_ref().is_some_and(|p| p.error.is_none()) {
        m.last_prune_time = Some(finished.clone());
    }
    if let Some(c) = s.check.as_ref().filter(|c| c.error.is_none()) {
        m.last_check_time = Some(finished.clone());
        m.last_check_slice = Some(c.slice.clone());
    }
    if let Some(size) = &s.repository {
        m.hot_bytes = Some(size.hot_bytes);
        m.cold_bytes = Some(size.cold_bytes);
    }
    if status.maintenance.as_ref() == Some(&Default::default()) {
        status.maintenance = None;
    }
}

/// "N paths could not be read: `a` (why), `b` (why), ..." from an incomplete run's summary.
pub fn incomplete_text(s: &RunSummary) -> String {
    let first: Vec<String> = s
        .failures
        .iter()
        .take(3)
        .map(|f| format!("`{}` ({})", f.path, f.reason))
        .collect();
    let count = s.failed_paths.max(s.failures.len() as u64);
    if first.is_empty() {
        format!("{count} paths could not be read")
    } else {
        format!("{count} paths could not be read: {}", first.join(", "))
    }
}

pub fn error_policy(job: Arc<Job>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.retry_after_error(CONTROLLER, job.as_ref(), err)
}
