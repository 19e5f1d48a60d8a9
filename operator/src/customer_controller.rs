//! Reconciles a BackupCustomer: checks what can be checked without touching its data, and tells
//! its resources whether they may be scheduled (`Ready`).

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::ResourceExt;
use serde_json::json;

use crate::conditions;
use crate::context::Context;
use crate::crd::{BackupCustomer, InfisicalSource};
use crate::error::{Error, Result};
use crate::keys::{
    SECRET_KEY_CLIENT_ID, SECRET_KEY_CLIENT_SECRET, SECRET_KEY_S3_ACCESS_KEY_ID,
    SECRET_KEY_S3_SECRET_ACCESS_KEY,
};
use crate::names::{bucket_name_problem, bucket_of};
use crate::status::time_now;
use crate::storage::{self, StorageState};
use k8s_openapi::api::core::v1::Secret;
use unstoppable_contract::Secret as UnstoppableSecret;
use unstoppable_infisical::{Folder, Infisical};

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
    let count = ctx.resource_count(&ns, &customer.name_any()).await?;

    let mut status = customer.status.clone().unwrap_or_default();
    let generation = customer.metadata.generation;
    let bucket = bucket_of(&customer).ok_or_else(|| Error::NoNamespace(customer.name_any()))?;
    let identity = infisical_identity(&customer, &ctx, &ns).await?;
    let storage = storage_state(&customer, &ctx, &ns, &bucket, &identity).await?;
    let secrets = secrets_state(&customer, &identity);
    let t = time_now();
    for (type_, check) in [("StorageReady", &storage), ("SecretsReady", &secrets)] {
        let (ok, reason, message) = match check {
            Ok(passed) => (true, passed.reason(), passed.message()),
            Err(problem) => (false, problem.reason, problem.message.as_str()),
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
    if let Ok(Passed::BucketCreated(message)) = &storage {
        ctx.event(customer.as_ref(), false, "BucketCreated", message.clone())
            .await;
    }
    let problems: Vec<&str> = [&storage, &secrets]
        .into_iter()
        .filter_map(|c| c.as_ref().err().map(|p| p.message.as_str()))
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
    status.resource_count = count;
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

/// Why a check failed, as a condition: its reason and the message for the user.
#[derive(Debug, Clone)]
struct Problem {
    reason: &'static str,
    message: String,
}

impl Problem {
    fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// How a check passed, with the message for the user.
#[derive(Debug, Clone)]
enum Passed {
    SecretSourceConfigured(String),
    LoginSucceeded(String),
    BucketCreated(String),
    BucketVerified(String),
}

impl Passed {
    fn reason(&self) -> &'static str {
        match self {
            Passed::SecretSourceConfigured(_) => "SecretSourceConfigured",
            Passed::LoginSucceeded(_) => "LoginSucceeded",
            Passed::BucketCreated(_) => "BucketCreated",
            Passed::BucketVerified(_) => "BucketVerified",
        }
    }

    fn message(&self) -> &str {
        match self {
            Passed::SecretSourceConfigured(m)
            | Passed::LoginSucceeded(m)
            | Passed::BucketCreated(m)
            | Passed::BucketVerified(m) => m,
        }
    }
}

/// A condition's outcome.
type Check = std::result::Result<Passed, Problem>;

/// Checks the bucket name, then creates or verifies the bucket with the customer's S3 keys (from
/// its Secret, or read from Infisical with its machine identity).
async fn storage_state(
    customer: &BackupCustomer,
    ctx: &Context,
    ns: &str,
    bucket: &str,
    identity: &Identity,
) -> Result<Check> {
    if let Some(rule) = bucket_name_problem(bucket) {
        return Ok(Err(Problem::new(
            "InvalidBucketName",
            format!("bucket name `{bucket}` {rule}; set coldStorage.bucket"),
        )));
    }
    let keys = match (&customer.spec.secrets.secret_ref, identity) {
        (Some(secret_ref), _) => {
            let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
            match secrets.get_opt(&secret_ref.name).await? {
                None => Err(Problem::new(
                    "SecretNotFound",
                    format!("Secret {} does not exist in namespace {ns}", secret_ref.name),
                )),
                Some(secret) => match (
                    secret_value(&secret, SECRET_KEY_S3_ACCESS_KEY_ID),
                    secret_value(&secret, SECRET_KEY_S3_SECRET_ACCESS_KEY),
                ) {
                    (Some(id), Some(key)) => Ok((id, key)),
                    _ => Err(Problem::new(
                        "S3KeysMissing",
                        format!(
                            "Secret {} lacks {SECRET_KEY_S3_ACCESS_KEY_ID} or {SECRET_KEY_S3_SECRET_ACCESS_KEY}",
                            secret_ref.name
                        ),
                    )),
                },
            }
        }
        (None, Some(Ok((client, source)))) => {
            let folder = Folder {
                project: &source.project_id,
                environment: &source.environment,
                path: &source.path,
            };
            let wanted = [SECRET_KEY_S3_ACCESS_KEY_ID, SECRET_KEY_S3_SECRET_ACCESS_KEY];
            match client.secrets(folder, &wanted).await {
                Err(e) => Err(infisical_problem(&e, source)),
                Ok(found) => match (
                    found.get(SECRET_KEY_S3_ACCESS_KEY_ID),
                    found.get(SECRET_KEY_S3_SECRET_ACCESS_KEY),
                ) {
                    (Some(id), Some(key)) => Ok((id.clone(), key.clone())),
                    _ => Err(Problem::new(
                        "S3KeysMissing",
                        format!(
                            "Infisical project {} environment {} path {} lacks {SECRET_KEY_S3_ACCESS_KEY_ID} or {SECRET_KEY_S3_SECRET_ACCESS_KEY}",
                            source.project_id, source.environment, source.path
                        ),
                    )),
                },
            }
        }
        (None, Some(Err(problem))) => Err(problem.clone()),
        (None, None) => Err(Problem::new(
            "NoSecretSource",
            "no S3 keys: the customer has no secret source",
        )),
    };
    let (id, key) = match keys {
        Ok(keys) => keys,
        Err(problem) => return Ok(Err(problem)),
    };
    let cold = &customer.spec.cold_storage;
    let client = storage::client(cold, &id, &key);
    let lock = cold.object_lock.as_ref().map_or(String::new(), |l| {
        format!(" and Object Lock ({:?}, {} days)", l.mode, l.days)
    });
    Ok(match storage::provision(&client, cold, bucket).await {
        Ok(StorageState::Created) => Ok(Passed::BucketCreated(format!(
            "bucket {bucket} created with versioning{lock}"
        ))),
        Ok(StorageState::Verified) => Ok(Passed::BucketVerified(format!(
            "bucket {bucket} exists with versioning{lock} as specified"
        ))),
        Err(e) => Err(Problem::new(e.reason(), e.to_string())),
    })
}

/// An Infisical customer's client, logged in with its machine identity, or why there is none.
type Identity = Option<std::result::Result<(Arc<Infisical>, InfisicalSource), Problem>>;

/// Reads the machine identity (only its client id and secret) and logs in.
async fn infisical_identity(
    customer: &BackupCustomer,
    ctx: &Context,
    ns: &str,
) -> Result<Identity> {
    let source = &customer.spec.secrets;
    let Some(infisical) = source
        .infisical
        .as_ref()
        .filter(|_| source.secret_ref.is_none())
    else {
        return Ok(None);
    };
    let name = &infisical.identity_secret_ref.name;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let Some(secret) = secrets.get_opt(name).await? else {
        return Ok(Some(Err(Problem::new(
            "IdentitySecretNotFound",
            format!("Secret {name} does not exist in namespace {ns}"),
        ))));
    };
    let (Some(id), Some(key)) = (
        secret_value(&secret, SECRET_KEY_CLIENT_ID),
        secret_value(&secret, SECRET_KEY_CLIENT_SECRET),
    ) else {
        return Ok(Some(Err(Problem::new(
            "IdentityKeysMissing",
            format!("Secret {name} lacks {SECRET_KEY_CLIENT_ID} or {SECRET_KEY_CLIENT_SECRET}"),
        ))));
    };
    // The same client as in the last reconcile: its token is reused, a refused login not repeated.
    let client = match ctx.infisical.get(
        &infisical.site_url,
        UnstoppableSecret::new(id),
        UnstoppableSecret::new(key),
    ) {
        Ok(client) => client,
        Err(e) => return Ok(Some(Err(infisical_problem(&e, infisical)))),
    };
    Ok(Some(match client.login().await {
        Ok(_) => Ok((client, infisical.clone())),
        Err(e) => Err(infisical_problem(&e, infisical)),
    }))
}

/// An Infisical error as a condition: what happened, then which field of the BackupCustomer (or
/// of its identity Secret) to check.
fn infisical_problem(e: &unstoppable_infisical::SecretsError, source: &InfisicalSource) -> Problem {
    use unstoppable_infisical::SecretsError as E;
    let hint = match e {
        E::Unreachable { .. } | E::Protocol(_) => {
            "check secrets.infisical.siteUrl and the network".to_string()
        }
        E::Login(_) => format!(
            "check {SECRET_KEY_CLIENT_ID}/{SECRET_KEY_CLIENT_SECRET} in Secret {}",
            source.identity_secret_ref.name
        ),
        E::Denied { .. } => "give the machine identity read access".to_string(),
        E::NotFound { .. } | E::Missing { .. } => {
            "check secrets.infisical.projectId, environment and path".to_string()
        }
        E::RateLimited { .. } => "checked again at the next reconcile".to_string(),
    };
    Problem::new(e.reason(), format!("{e}; {hint}"))
}

/// A Secret source is taken as configured (the job reads it); an Infisical identity must log in.
fn secrets_state(customer: &BackupCustomer, identity: &Identity) -> Check {
    match (&customer.spec.secrets.secret_ref, identity) {
        (Some(s), _) => Ok(Passed::SecretSourceConfigured(format!(
            "credentials from Secret {}",
            s.name
        ))),
        (None, Some(Ok((_, i)))) => Ok(Passed::LoginSucceeded(format!(
            "machine identity logged in to {}; credentials from project {} environment {} path {}",
            i.site_url, i.project_id, i.environment, i.path
        ))),
        (None, Some(Err(problem))) => Err(problem.clone()),
        (None, None) => Err(Problem::new(
            "NoSecretSource",
            "no secret source; set secrets.secretRef or secrets.infisical",
        )),
    }
}

fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
}
