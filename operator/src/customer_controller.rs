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
use crate::infisical;
use crate::names::bucket_name_problem;
use crate::render::bucket_of;
use crate::render::{
    SECRET_KEY_CLIENT_ID, SECRET_KEY_CLIENT_SECRET, SECRET_KEY_S3_ACCESS_KEY_ID,
    SECRET_KEY_S3_SECRET_ACCESS_KEY,
};
use crate::resource_controller::time_now;
use crate::storage::{self, StorageState};
use k8s_openapi::api::core::v1::Secret;

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
    let bucket = bucket_of(&customer).map_err(|_| Error::NoNamespace(customer.name_any()))?;
    let storage = storage_state(&customer, &ctx, &ns, &bucket).await?;
    let secrets = secrets_state(&customer, &ctx, &ns).await?;
    let t = time_now();
    for (type_, check) in [("StorageReady", &storage), ("SecretsReady", &secrets)] {
        let (ok, (reason, message)) = match check {
            Ok(v) => (true, v),
            Err(v) => (false, v),
        };
        conditions::set(
            &mut status.conditions,
            type_,
            ok,
            reason,
            message,
            generation,
            t.clone(),
        );
    }
    if let Ok(("BucketCreated", message)) = &storage {
        ctx.event(customer.as_ref(), false, "BucketCreated", message.clone())
            .await;
    }
    let problems: Vec<&str> = [&storage, &secrets]
        .into_iter()
        .filter_map(|c| c.as_ref().err().map(|(_, m)| m.as_str()))
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
        let message = problems.join("; ");
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

/// A condition's outcome: (reason, message), good or bad.
type Check = std::result::Result<(&'static str, String), (&'static str, String)>;

/// Checks the bucket name, then creates or verifies the bucket with the customer's S3 keys.
async fn storage_state(
    customer: &BackupCustomer,
    ctx: &Context,
    ns: &str,
    bucket: &str,
) -> Result<Check> {
    if let Some(rule) = bucket_name_problem(bucket) {
        return Ok(Err((
            "InvalidBucketName",
            format!("bucket name `{bucket}` {rule}; set coldStorage.bucket"),
        )));
    }
    let Some(secret_ref) = &customer.spec.secrets.secret_ref else {
        return Ok(Ok((
            "NotChecked",
            format!("bucket {bucket} is not checked: the operator reads S3 keys only from secrets.secretRef"),
        )));
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let Some(secret) = secrets.get_opt(&secret_ref.name).await? else {
        return Ok(Err((
            "SecretNotFound",
            format!(
                "Secret {} does not exist in namespace {ns}",
                secret_ref.name
            ),
        )));
    };
    let key = |name: &str| secret_value(&secret, name);
    let (Some(id), Some(key_secret)) = (
        key(SECRET_KEY_S3_ACCESS_KEY_ID),
        key(SECRET_KEY_S3_SECRET_ACCESS_KEY),
    ) else {
        return Ok(Err((
            "S3KeysMissing",
            format!(
                "Secret {} lacks {SECRET_KEY_S3_ACCESS_KEY_ID} or {SECRET_KEY_S3_SECRET_ACCESS_KEY}",
                secret_ref.name
            ),
        )));
    };
    let cold = &customer.spec.cold_storage;
    let client = storage::client(cold, &id, &key_secret);
    let lock = cold.object_lock.as_ref().map_or(String::new(), |l| {
        format!(" and Object Lock ({:?}, {} days)", l.mode, l.days)
    });
    Ok(match storage::provision(&client, cold, bucket).await {
        Ok(StorageState::Created) => Ok((
            "BucketCreated",
            format!("bucket {bucket} created with versioning{lock}"),
        )),
        Ok(StorageState::Verified) => Ok((
            "BucketVerified",
            format!("bucket {bucket} exists with versioning{lock} as specified"),
        )),
        Err(e) => Err((e.reason(), e.to_string())),
    })
}

/// The secret source: a Secret is taken as configured (the job reads it); an Infisical machine
/// identity must log in (only its own client id and secret are read, no customer secret).
async fn secrets_state(customer: &BackupCustomer, ctx: &Context, ns: &str) -> Result<Check> {
    let source = &customer.spec.secrets;
    let infisical = match (&source.secret_ref, &source.infisical) {
        (Some(s), _) => {
            return Ok(Ok((
                "SecretSourceConfigured",
                format!("credentials from Secret {}", s.name),
            )))
        }
        (None, Some(i)) => i,
        (None, None) => {
            return Ok(Err((
                "NoSecretSource",
                "no secret source; set secrets.secretRef or secrets.infisical".into(),
            )))
        }
    };
    let name = &infisical.identity_secret_ref.name;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let Some(secret) = secrets.get_opt(name).await? else {
        return Ok(Err((
            "IdentitySecretNotFound",
            format!("Secret {name} does not exist in namespace {ns}"),
        )));
    };
    let (Some(id), Some(key)) = (
        secret_value(&secret, SECRET_KEY_CLIENT_ID),
        secret_value(&secret, SECRET_KEY_CLIENT_SECRET),
    ) else {
        return Ok(Err((
            "IdentityKeysMissing",
            format!("Secret {name} lacks {SECRET_KEY_CLIENT_ID} or {SECRET_KEY_CLIENT_SECRET}"),
        )));
    };
    Ok(match infisical::login(&infisical.site_url, &id, &key).await {
        Ok(()) => Ok((
            "LoginSucceeded",
            format!(
                "machine identity logged in to {}; credentials from project {} environment {} path {}",
                infisical.site_url, infisical.project_id, infisical.environment, infisical.path
            ),
        )),
        Err(e) => Err((e.reason(), e.to_string())),
    })
}

fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
}
