//! Writing the status of our custom resources, and the times it carries. Shared by the
//! controllers that write a BackupResource's status (its own conditions; the job results).

use chrono::Utc;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;

use crate::context::Context;
use crate::error::{Error, Result};

/// Replaces the status of `obj` (a BackupResource, a BackupRestore) with `status`, unless the
/// object changed since it was read.
pub async fn patch_status<K, S>(ctx: &Context, obj: &K, status: &S) -> Result<()>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    S: serde::Serialize,
{
    let ns = obj
        .namespace()
        .ok_or_else(|| Error::NoNamespace(obj.name_any()))?;
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    // Two controllers write a BackupResource's status (the resource's conditions; the job
    // results), each from the copy it read. A merge patch replaces the whole conditions list, so
    // a write from a stale copy would erase the other's latest result: the resourceVersion makes
    // it fail instead.
    let mut patch = json!({"status": status});
    if let Some(rv) = &obj.meta().resource_version {
        patch["metadata"] = json!({"resourceVersion": rv});
    }
    match api
        .patch_status(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Err(Error::Conflict(obj.name_any())),
        Err(e) => Err(e.into()),
    }
}

pub fn time_now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

pub fn to_time(t: chrono::DateTime<Utc>) -> Time {
    Time(
        k8s_openapi::jiff::Timestamp::from_second(t.timestamp())
            .unwrap_or_else(|_| k8s_openapi::jiff::Timestamp::now()),
    )
}
