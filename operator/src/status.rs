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
        + serde::Serialize
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
    let mut patch = json!({"status": replacing(obj, status)?});
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

/// `status` as a merge patch that replaces the object's: a field the new status leaves out
/// (an anomaly released, maintenance no longer reported) is sent as `null`, which removes it —
/// left out of a merge patch, it would stay.
fn replacing<K: serde::Serialize, S: serde::Serialize>(
    obj: &K,
    status: &S,
) -> Result<serde_json::Value> {
    let mut new = serde_json::to_value(status).map_err(Error::Serialize)?;
    let old = serde_json::to_value(obj).map_err(Error::Serialize)?;
    if let (Some(new), Some(old)) = (new.as_object_mut(), old["status"].as_object()) {
        for key in old.keys() {
            new.entry(key.clone()).or_insert(serde_json::Value::Null);
        }
    }
    Ok(new)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{BackupResource, BackupResourceStatus};

    #[test]
    fn fields_the_new_status_leaves_out_are_removed() {
        let mut res = BackupResource::test();
        res.status = Some(BackupResourceStatus {
            cron_job_name: Some("backup-www".into()),
            last_changes: Some(Box::default()),
            ..Default::default()
        });
        let new = BackupResourceStatus {
            cron_job_name: Some("backup-www".into()),
            ..Default::default()
        };
        let patch = replacing(&res, &new).expect("patch");
        assert_eq!(patch["cronJobName"], "backup-www");
        assert!(
            patch["lastChanges"].is_null() && patch.get("lastChanges").is_some(),
            "{patch}"
        );
        assert!(
            patch.get("anomaly").is_none(),
            "absent before and after: not sent"
        );
    }
}
