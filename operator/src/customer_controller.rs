//! Reconciles a BackupCustomer: checks what can be checked without touching its data, and tells
//! its resources whether they may be scheduled (`Ready`).

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::ResourceExt;
use serde_json::json;

use crate::conditions;
use crate::context::Context;
use crate::crd::{BackupCustomer, BackupResource};
use crate::error::{Error, Result};
use crate::names::bucket_name_problem;
use crate::render::bucket_of;
use crate::resource_controller::time_now;

pub const CONTROLLER: &str = "backupcustomer";

pub async fn reconcile(customer: Arc<BackupCustomer>, ctx: Arc<Context>) -> Result<Action> {
    ctx.reconciling(
        CONTROLLER,
        customer.as_ref(),
        reconcile_once(customer.clone(), ctx.clone()),
    )
    .await
}

async fn reconcile_once(customer: Arc<BackupCustomer>, ctx: Arc<Context>) -> Result<Action> {
    let ns = customer
        .namespace()
        .ok_or_else(|| Error::NoNamespace(customer.name_any()))?;
    let resources: Api<BackupResource> = Api::namespaced(ctx.client.clone(), &ns);
    let count = resources
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|r| r.spec.customer_ref.name == customer.name_any())
        .count();

    let mut status = customer.status.clone().unwrap_or_default();
    let generation = customer.metadata.generation;
    let t = time_now();
    let bucket = bucket_of(&customer).map_err(|_| Error::NoNamespace(customer.name_any()))?;
    let storage = match bucket_name_problem(&bucket) {
        None => Ok(()),
        Some(rule) => Err(format!(
            "bucket name `{bucket}` {rule}; set coldStorage.bucket"
        )),
    };
    let secrets = match (
        &customer.spec.secrets.secret_ref,
        &customer.spec.secrets.infisical,
    ) {
        (Some(s), _) => Ok(format!("credentials from Secret {}", s.name)),
        (None, Some(i)) => Ok(format!(
            "credentials from Infisical project {} environment {} path {}",
            i.project_id, i.environment, i.path
        )),
        (None, None) => Err("no secret source; set secrets.secretRef".to_string()),
    };
    match &storage {
        Ok(()) => conditions::set(
            &mut status.conditions,
            "StorageReady",
            true,
            "BucketNameValid",
            &format!("bucket {bucket}"),
            generation,
            t.clone(),
        ),
        Err(msg) => conditions::set(
            &mut status.conditions,
            "StorageReady",
            false,
            "InvalidBucketName",
            msg,
            generation,
            t.clone(),
        ),
    }
    match &secrets {
        Ok(msg) => conditions::set(
            &mut status.conditions,
            "SecretsReady",
            true,
            "SecretSourceConfigured",
            msg,
            generation,
            t.clone(),
        ),
        Err(msg) => conditions::set(
            &mut status.conditions,
            "SecretsReady",
            false,
            "NoSecretSource",
            msg,
            generation,
            t.clone(),
        ),
    }
    let problems: Vec<&String> = [storage.as_ref().err(), secrets.as_ref().err()]
        .into_iter()
        .flatten()
        .collect();
    if problems.is_empty() {
        conditions::set(
            &mut status.conditions,
            "Ready",
            true,
            "Ready",
            "resources of this customer can be scheduled",
            generation,
            t,
        );
    } else {
        let message = problems
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        conditions::set(
            &mut status.conditions,
            "Ready",
            false,
            "NotReady",
            &message,
            generation,
            t,
        );
        ctx.event(customer.as_ref(), true, "NotReady", message)
            .await;
    }
    status.bucket = Some(bucket);
    status.resource_count = u32::try_from(count).unwrap_or(u32::MAX);
    status.observed_generation = generation;
    let api: Api<BackupCustomer> = Api::namespaced(ctx.client.clone(), &ns);
    api.patch_status(
        &customer.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": status})),
    )
    .await?;
    Ok(Action::requeue(Duration::from_secs(600)))
}

pub fn error_policy(customer: Arc<BackupCustomer>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.retry_after_error(CONTROLLER, customer.as_ref(), err)
}
