//! Reconciles a BackupResource into its CronJob and hot PVC, and reports why when it cannot.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::ResourceExt;

use crate::applied;
use crate::conditions;
use crate::context::Context;
use crate::crd::{BackupCustomer, BackupResource};
use crate::error::{Error, Result};
use crate::keys::FIELD_MANAGER;
use crate::metrics::ResourceLabels;
use crate::render::{self, RenderError};
use crate::schedule::{Schedule, ScheduleError};
use crate::secrets;
use crate::status::{patch_status, time_now, to_time};

pub const CONTROLLER: &str = "backupresource";

/// Why a resource cannot be scheduled: becomes `Ready=False` with its reason and an Event.
struct NotReady {
    why: Why,
    message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    CustomerNotFound,
    CustomerNotReady,
    InvalidSchedule,
    InvalidTimeZone,
    NoSecretSource,
    RenderFailed,
    CronJobRejected,
    /// A Secret or key the pod needs (the reason comes from `secrets`).
    Credential(&'static str),
}

impl Why {
    fn reason(self) -> &'static str {
        match self {
            Self::CustomerNotFound => "CustomerNotFound",
            Self::CustomerNotReady => "CustomerNotReady",
            Self::InvalidSchedule => "InvalidSchedule",
            Self::InvalidTimeZone => "InvalidTimeZone",
            Self::NoSecretSource => "NoSecretSource",
            Self::RenderFailed => "RenderFailed",
            Self::CronJobRejected => "CronJobRejected",
            Self::Credential(reason) => reason,
        }
    }
}

pub async fn reconcile(res: Arc<BackupResource>, ctx: Arc<Context>) -> Result<Action> {
    ctx.reconciling(
        CONTROLLER,
        res.as_ref(),
        reconcile_once(res.clone(), ctx.clone()),
    )
    .await
}

async fn reconcile_once(res: Arc<BackupResource>, ctx: Arc<Context>) -> Result<Action> {
    let ns = res
        .namespace()
        .ok_or_else(|| Error::NoNamespace(res.name_any()))?;
    let customer = ctx.customer(&ns, &res.spec.customer_ref.name).await?;
    let labels = ResourceLabels::of(&res);
    restore_metrics(&res, &labels, &ctx);
    // What the alerts need is exported before anything can fail: a resource that can never run
    // must still be able to page (never succeeded, not scheduled).
    let now = Utc::now();
    let interval = Schedule::parse(&res.spec.schedule, res.spec.time_zone.as_deref())
        .ok()
        .and_then(|schedule| schedule.expected_interval_seconds_cached(now).ok());
    let suspended = res.spec.suspend || customer.as_ref().is_some_and(|c| c.spec.suspend);
    ctx.metrics.set_schedule(
        &labels,
        res.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_second()),
        interval,
        suspended,
    );

    let plan = match plan(customer.as_ref(), &res) {
        Ok(plan) => plan,
        Err(not_ready) => {
            if not_ready.why == Why::CustomerNotReady {
                if let Some(customer) = &customer {
                    suspend_cron_job(customer, &res, &ctx, &ns).await?;
                }
            }
            report_not_ready(&res, &ctx, &labels, not_ready).await?;
            return Ok(Action::requeue(Duration::from_secs(300)));
        }
    };
    let (customer, schedule) = plan;
    let desired = match render::render(customer, &res, &ctx.settings) {
        Ok(d) => d,
        Err(e) => {
            let why = match e {
                RenderError::NoSecretSource => Why::NoSecretSource,
                _ => Why::RenderFailed,
            };
            report_not_ready(
                &res,
                &ctx,
                &labels,
                NotReady {
                    why,
                    message: e.to_string(),
                },
            )
            .await?;
            return Ok(Action::requeue(Duration::from_secs(300)));
        }
    };
    if let Some((reason, message)) = secrets::missing_credential(&ctx, customer, &res, &ns).await? {
        let why = NotReady {
            why: Why::Credential(reason),
            message,
        };
        report_not_ready(&res, &ctx, &labels, why).await?;
        return Ok(Action::requeue(Duration::from_secs(300)));
    }

    // The CronJob first: schedule and suspend changes must reach it even when the hot volume
    // cannot be changed.
    let cron_name = desired.cron_job.name_any();
    let cron_jobs: Api<CronJob> = Api::namespaced(ctx.client.clone(), &ns);
    if let Err(e) = apply_child(&ctx, &cron_jobs, &desired.cron_job).await {
        let Some(message) = rejection(&e) else {
            return Err(e.into());
        };
        let why = NotReady {
            why: Why::CronJobRejected,
            message: format!("the API server refused CronJob {cron_name}: {message}"),
        };
        report_not_ready(&res, &ctx, &labels, why).await?;
        return Ok(Action::requeue(Duration::from_secs(300)));
    }
    let pvc_name = desired.hot_pvc.name_any();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let hot_problem = match apply_child(&ctx, &pvcs, &desired.hot_pvc).await {
        Ok(()) => None,
        Err(e) => match rejection(&e) {
            Some(message) => Some(format!(
                "the hot volume {pvc_name} keeps its current settings, the API server refused the change: {message}; \
                 backups go on with the current volume (storage class and size cannot shrink or \
                 change class: set hotStorage back, or delete the PVC to recreate it, which \
                 empties the hot part until the next backup)"
            )),
            None => return Err(e.into()),
        },
    };

    let suspended = customer.spec.suspend || res.spec.suspend;
    let mut status = res.status.clone().unwrap_or_default();
    let t = time_now();
    let generation = res.metadata.generation;
    conditions::set(
        &mut status.conditions,
        "Ready",
        true,
        "Reconciled",
        &format!("CronJob {cron_name} is up to date"),
        generation,
        t.clone(),
    );
    if suspended {
        conditions::set(
            &mut status.conditions,
            "Scheduled",
            false,
            "Suspended",
            "backups are suspended on the resource or its customer",
            generation,
            t,
        );
        status.next_schedule_time = None;
    } else {
        conditions::set(
            &mut status.conditions,
            "Scheduled",
            true,
            "Scheduled",
            &format!("runs on `{}`", res.spec.schedule),
            generation,
            t,
        );
        status.next_schedule_time = schedule.next_after(now).ok().map(to_time);
    }
    let t = time_now();
    match &hot_problem {
        Some(message) => conditions::set(
            &mut status.conditions,
            "HotVolumeUpToDate",
            false,
            "HotVolumeUnchangeable",
            message,
            generation,
            t,
        ),
        None => conditions::set(
            &mut status.conditions,
            "HotVolumeUpToDate",
            true,
            "Applied",
            &format!("PVC {pvc_name} is up to date"),
            generation,
            t,
        ),
    }
    status.cron_job_name = Some(cron_name);
    status.observed_generation = generation;
    if res.status.as_ref() != Some(&status) {
        patch_status(&ctx, res.as_ref(), &status).await?;
    }
    ctx.metrics.set_ready(&labels, true);
    if let Some(message) = hot_problem {
        ctx.event(res.as_ref(), true, "HotVolumeUnchangeable", message)
            .await;
    }
    // Come back to refresh nextScheduleTime after the next run is due.
    Ok(Action::requeue(Duration::from_secs(3600)))
}

/// Decides whether the resource can be scheduled: its customer exists and is ready, and its
/// schedule and time zone are valid.
fn plan<'a>(
    customer: Option<&'a BackupCustomer>,
    res: &BackupResource,
) -> std::result::Result<(&'a BackupCustomer, Schedule), NotReady> {
    let name = &res.spec.customer_ref.name;
    let customer = customer.ok_or_else(|| NotReady {
        why: Why::CustomerNotFound,
        message: format!("BackupCustomer {name} does not exist in this namespace"),
    })?;
    let ready = customer
        .status
        .as_ref()
        .is_some_and(|s| conditions::is_true(&s.conditions, "Ready"));
    if !ready {
        return Err(NotReady {
            why: Why::CustomerNotReady,
            message: format!("BackupCustomer {name} is not Ready; see its conditions"),
        });
    }
    let schedule =
        Schedule::parse(&res.spec.schedule, res.spec.time_zone.as_deref()).map_err(|e| {
            NotReady {
                why: match e {
                    ScheduleError::TimeZone(_) => Why::InvalidTimeZone,
                    _ => Why::InvalidSchedule,
                },
                message: e.to_string(),
            }
        })?;
    Ok((customer, schedule))
}

/// A customer that is not ready must not back up: its resource's CronJob is applied suspended
/// (created suspended when it does not exist yet).
async fn suspend_cron_job(
    customer: &BackupCustomer,
    res: &BackupResource,
    ctx: &Context,
    ns: &str,
) -> Result<()> {
    let Ok(mut desired) = render::render(customer, res, &ctx.settings) else {
        return Ok(());
    };
    if let Some(spec) = desired.cron_job.spec.as_mut() {
        spec.suspend = Some(true);
    }
    let cron_jobs: Api<CronJob> = Api::namespaced(ctx.client.clone(), ns);
    apply_child(ctx, &cron_jobs, &desired.cron_job).await?;
    Ok(())
}

/// Server-side applies a child unless the API server already has exactly what we last applied.
async fn apply_child<K>(ctx: &Context, api: &Api<K>, desired: &K) -> kube::Result<()>
where
    K: kube::Resource<DynamicType = ()> + k8s_openapi::Resource + Clone + std::fmt::Debug,
    K: serde::Serialize + serde::de::DeserializeOwned,
{
    let name = kube::Resource::meta(desired)
        .name
        .clone()
        .unwrap_or_default();
    let key = (
        <K as k8s_openapi::Resource>::KIND,
        kube::Resource::meta(desired)
            .namespace
            .clone()
            .unwrap_or_default(),
        name.clone(),
    );
    let hash = applied::desired_hash(desired);
    if ctx.applied.is_current(&key, hash) {
        return Ok(());
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match api.patch(&name, &params, &Patch::Apply(desired)).await {
        Ok(live) => {
            ctx.applied.record(key, hash, kube::Resource::meta(&live));
            Ok(())
        }
        Err(e) => {
            ctx.applied.invalidate(&key);
            Err(e)
        }
    }
}

/// The API server's message when it refused a request for good: a 4xx other than a conflict or
/// throttling, or the 500 a server-side apply gets when the object cannot even be converted (an
/// unparsable quantity such as `memory: banana`). Retrying the same request cannot help; a
/// person must change the spec.
fn rejection(err: &kube::Error) -> Option<String> {
    match err {
        kube::Error::Api(status)
            if (400..500).contains(&status.code) && ![409, 429].contains(&status.code) =>
        {
            Some(status.message.clone())
        }
        kube::Error::Api(status)
            if status.code == 500 && status.message.starts_with("failed to convert new object") =>
        {
            Some(status.message.clone())
        }
        _ => None,
    }
}

async fn report_not_ready(
    res: &BackupResource,
    ctx: &Context,
    labels: &ResourceLabels,
    why: NotReady,
) -> Result<()> {
    let reason = why.why.reason();
    tracing::info!(resource = %res.name_any(), reason, "{}", why.message);
    ctx.metrics.set_ready(labels, false);
    let mut status = res.status.clone().unwrap_or_default();
    let generation = res.metadata.generation;
    let t = time_now();
    conditions::set(
        &mut status.conditions,
        "Ready",
        false,
        reason,
        &why.message,
        generation,
        t.clone(),
    );
    conditions::set(
        &mut status.conditions,
        "Scheduled",
        false,
        reason,
        &why.message,
        generation,
        t,
    );
    status.observed_generation = generation;
    if res.status.as_ref() != Some(&status) {
        patch_status(ctx, res, &status).await?;
    }
    ctx.event(res, true, reason, why.message).await;
    Ok(())
}

/// After an operator restart the metrics are empty: take the last success from the status, so a
/// missed-backup alert keeps its memory, and an unreleased anomaly, so its alert goes on.
fn restore_metrics(res: &BackupResource, labels: &ResourceLabels, ctx: &Context) {
    if res.status.as_ref().is_some_and(|s| s.anomaly.is_some()) {
        ctx.metrics.set_anomaly(labels, true);
    }
    if let Some(t) = res
        .status
        .as_ref()
        .and_then(|s| s.last_successful_time.as_ref())
    {
        ctx.metrics
            .restore_last_success(labels, t.0.as_second() as f64);
    }
}

pub fn error_policy(res: Arc<BackupResource>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.retry_after_error(CONTROLLER, res.as_ref(), err)
}
