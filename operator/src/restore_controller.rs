//! Runs each BackupRestore once: waits for its resource (and for a running backup of it to end),
//! creates the restore Job, and when the Job has finished records the job's summary in the
//! status, as an Event and in the metrics.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::ResourceExt;
use unstoppable_contract::RunResult;

use crate::conditions;
use crate::context::Context;
use crate::crd::BackupResource;
use crate::error::{Error, Result};
use crate::keys::ANNOTATION_CUSTOMER;
use crate::metrics::ResourceLabels;
use crate::names;
use crate::restore_crd::{BackupRestore, BackupRestoreStatus, RestorePhase};
use crate::restore_render::{describe_target, render_restore};
use crate::results::{interpret, Outcome};
use crate::status::{patch_status, time_now};

pub const CONTROLLER: &str = "restore";
/// How often a waiting restore looks again (its resource, a running backup).
const WAIT: Duration = Duration::from_secs(30);

pub async fn reconcile(restore: Arc<BackupRestore>, ctx: Arc<Context>) -> Result<Action> {
    ctx.reconciling(
        CONTROLLER,
        restore.as_ref(),
        reconcile_once(restore.clone(), ctx.clone()),
    )
    .await
}

async fn reconcile_once(restore: Arc<BackupRestore>, ctx: Arc<Context>) -> Result<Action> {
    let ns = restore
        .namespace()
        .ok_or_else(|| Error::NoNamespace(restore.name_any()))?;
    let name = restore.name_any();
    let mut status = restore.status.clone().unwrap_or_default();
    if matches!(status.phase, RestorePhase::Succeeded | RestorePhase::Failed) {
        // Seen again after an operator restart: the metrics learn the outcome again (uncounted).
        let resources: Api<BackupResource> = Api::namespaced(ctx.client.clone(), &ns);
        if let (Some(res), Some(done)) = (
            resources.get_opt(&restore.spec.resource_ref.name).await?,
            &status.completion_time,
        ) {
            let result = if status.phase == RestorePhase::Succeeded {
                RunResult::Success
            } else {
                RunResult::Failed
            };
            ctx.metrics.record_restore(
                &ResourceLabels::of(&res),
                done.0.as_second() as f64,
                result,
                false,
            );
        }
        return Ok(Action::await_change());
    }
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let job_name = names::restore_job_name(&name);
    if let Some(job) = jobs.get_opt(&job_name).await? {
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        let pods = pods
            .list(&ListParams::default().labels(&format!("job-name={job_name}")))
            .await?
            .items;
        return match interpret(&job, &pods) {
            Some(outcome) => {
                let labels = ResourceLabels {
                    namespace: ns.as_str().into(),
                    customer: job
                        .annotations()
                        .get(ANNOTATION_CUSTOMER)
                        .map(String::as_str)
                        .unwrap_or_default()
                        .into(),
                    resource: restore.spec.resource_ref.name.as_str().into(),
                };
                finish(&ctx, &restore, status, &outcome, &labels).await
            }
            None => {
                if status.phase != RestorePhase::Running {
                    status.phase = RestorePhase::Running;
                    status.job_name = Some(job_name);
                    patch_status(&ctx, restore.as_ref(), &status).await?;
                }
                Ok(Action::await_change())
            }
        };
    }

    if status.phase == RestorePhase::Running {
        // Its Job is gone before it was seen finished (deleted by hand, or kept past its TTL
        // while the operator was away): a restore runs once, so it is not started again.
        let message = format!("job {job_name} disappeared before it finished; create a new BackupRestore to restore again");
        status.phase = RestorePhase::Failed;
        status.completion_time = Some(time_now());
        status.message = Some(message.clone());
        set_complete(&mut status, &restore, false, "JobLost", &message);
        patch_status(&ctx, restore.as_ref(), &status).await?;
        ctx.event(restore.as_ref(), true, "JobLost", message).await;
        return Ok(Action::await_change());
    }
    let resource_name = &restore.spec.resource_ref.name;
    let resources: Api<BackupResource> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(resource) = resources.get_opt(resource_name).await? else {
        return wait(
            &ctx,
            &restore,
            status,
            "ResourceNotFound",
            format!("BackupResource {resource_name} does not exist (yet)"),
        )
        .await;
    };
    let customer_name = &resource.spec.customer_ref.name;
    let Some(customer) = ctx.customer(&ns, customer_name).await? else {
        return wait(
            &ctx,
            &restore,
            status,
            "CustomerNotFound",
            format!("BackupCustomer {customer_name} does not exist (yet)"),
        )
        .await;
    };
    // One run per repository: the job's lock would refuse the restore beside a backup anyway;
    // waiting here spares the failed attempt.
    let cron_jobs: Api<CronJob> = Api::namespaced(ctx.client.clone(), &ns);
    let backing_up = cron_jobs
        .get_opt(&names::cronjob_name(resource_name))
        .await?
        .and_then(|c| c.status?.active)
        .is_some_and(|active| !active.is_empty());
    if backing_up {
        return wait(
            &ctx,
            &restore,
            status,
            "WaitingForBackup",
            format!("a backup of {resource_name} is running; the restore starts after it"),
        )
        .await;
    }
    let desired = match render_restore(&customer, &resource, &restore, &ctx.settings) {
        Ok(desired) => desired,
        Err(e) => {
            status.phase = RestorePhase::Failed;
            status.message = Some(e.to_string());
            status.completion_time = Some(time_now());
            set_complete(
                &mut status,
                &restore,
                false,
                "InvalidRestore",
                &e.to_string(),
            );
            patch_status(&ctx, restore.as_ref(), &status).await?;
            ctx.event(restore.as_ref(), true, "InvalidRestore", e.to_string())
                .await;
            return Ok(Action::await_change());
        }
    };
    if let Some(pvc) = &desired.pvc {
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
        create_once(&claims, pvc).await?;
    }
    create_once(&jobs, &desired.job).await?;
    status.phase = RestorePhase::Running;
    status.job_name = Some(job_name.clone());
    status.target = Some(describe_target(&restore.spec.target));
    status.start_time = Some(time_now());
    status.message = None;
    status.observed_generation = restore.metadata.generation;
    patch_status(&ctx, restore.as_ref(), &status).await?;
    ctx.event(
        restore.as_ref(),
        false,
        "RestoreStarted",
        format!("job {job_name} restores {resource_name}"),
    )
    .await;
    Ok(Action::await_change())
}

/// Creates `obj`; one that exists already (an earlier attempt of this reconcile) is fine.
async fn create_once<K>(api: &Api<K>, obj: &K) -> Result<()>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Stays `Pending` with `reason`, and looks again later.
async fn wait(
    ctx: &Context,
    restore: &BackupRestore,
    mut status: BackupRestoreStatus,
    reason: &str,
    message: String,
) -> Result<Action> {
    if status.message.as_deref() != Some(message.as_str()) {
        status.phase = RestorePhase::Pending;
        status.message = Some(message.clone());
        set_complete(&mut status, restore, false, reason, &message);
        patch_status(ctx, restore, &status).await?;
        ctx.event(restore, false, reason, message).await;
    }
    Ok(Action::requeue(WAIT))
}

async fn finish(
    ctx: &Context,
    restore: &BackupRestore,
    mut status: BackupRestoreStatus,
    outcome: &Outcome,
    labels: &ResourceLabels,
) -> Result<Action> {
    let summary = outcome.summary.clone().unwrap_or_default();
    let restored = summary.restore.clone().unwrap_or_default();
    let ok = outcome.result == RunResult::Success;
    status.phase = if ok {
        RestorePhase::Succeeded
    } else {
        RestorePhase::Failed
    };
    status.completion_time = Some(outcome.finished.clone());
    status.start_time = status.start_time.clone().or(outcome.started.clone());
    status.snapshot_id = summary.snapshot_id.clone();
    status.snapshot_time = restored
        .snapshot_time
        .as_deref()
        .and_then(|t| t.parse().ok())
        .map(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time);
    if summary.restore.is_some() {
        status.target = Some(format!("{}:{}", restored.target, restored.location));
        status.files_restored = Some(restored.files_restored);
        status.bytes_restored = Some(restored.bytes_restored);
        status.files_unchanged = Some(restored.files_unchanged);
        status.files_deleted = Some(restored.files_deleted);
        status.paths = restored.paths.clone();
    }
    status.files_failed = Some(summary.failed_paths);
    let (reason, message) = match outcome.result {
        RunResult::Success => {
            let verb = if restored.dry_run {
                "would restore"
            } else {
                "restored"
            };
            let mut text = format!(
                "{verb} {} files ({} bytes) of snapshot {}; {} unchanged, {} deleted",
                restored.files_restored,
                restored.bytes_restored,
                summary.snapshot_id.as_deref().unwrap_or("?"),
                restored.files_unchanged,
                restored.files_deleted
            );
            if let Some(note) = &restored.note {
                text.push_str("; ");
                text.push_str(note);
            }
            (
                if restored.dry_run {
                    "DryRunSucceeded"
                } else {
                    "RestoreSucceeded"
                },
                text,
            )
        }
        RunResult::Incomplete => (
            "RestoreIncomplete",
            summary
                .error
                .clone()
                .unwrap_or_else(|| format!("{} paths could not be restored", summary.failed_paths)),
        ),
        RunResult::Failed => (
            "RestoreFailed",
            outcome
                .reason
                .clone()
                .unwrap_or_else(|| "the restore job failed".into()),
        ),
    };
    status.message = Some(message.clone());
    set_complete(&mut status, restore, ok, reason, &message);
    patch_status(ctx, restore, &status).await?;
    ctx.metrics.record_restore(
        labels,
        outcome.finished.0.as_second() as f64,
        outcome.result,
        true,
    );
    ctx.event(restore, !ok, reason, message).await;
    Ok(Action::await_change())
}

fn set_complete(
    status: &mut BackupRestoreStatus,
    restore: &BackupRestore,
    ok: bool,
    reason: &str,
    message: &str,
) {
    conditions::set(
        &mut status.conditions,
        "Complete",
        ok,
        reason,
        message,
        restore.metadata.generation,
        time_now(),
    );
}

pub fn error_policy(restore: Arc<BackupRestore>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.retry_after_error(CONTROLLER, restore.as_ref(), err)
}
