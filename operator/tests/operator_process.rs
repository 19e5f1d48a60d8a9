//! The operator as a process against a real API server (`testenv/`, started by
//! `scripts/test.sh`), authenticated as its ServiceAccount with exactly the RBAC the chart
//! renders: a customer and a resource become a bucket, a CronJob and a PVC by server-side apply;
//! schedule and suspend changes reach the CronJob; deleting the resource removes its children by
//! owner reference. Any request the chart's RBAC does not allow shows up as a reconcile or watch
//! error, and the test fails on it.

mod cluster;

use std::time::{Duration, Instant};

use cluster::{admin, apply, eventually, install_chart, tenant, Operator};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use unstoppable_operator::crd::BackupResource;

#[tokio::test]
async fn the_operator_with_the_charts_rbac_schedules_changes_and_cleans_up() {
    let (client, admin_config) = admin().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = install_chart(&client, &admin_config, dir.path()).await;
    let old_ns = store_an_undecodable_customer(&client).await;
    let operator = Operator::start(&kubeconfig);

    // A tenant: its Secret, customer (bucket in the test S3 server) and one resource.
    let ns = format!("tenant-{}", std::process::id());
    let bucket = format!("operator-process-{}", std::process::id());
    tenant(&client, &ns, &bucket, json!({})).await;
    let mut resource = BackupResource::test();
    resource.metadata = Default::default();
    resource.metadata.name = Some("www".into());
    resource.metadata.namespace = Some(ns.clone());
    let resources: Api<BackupResource> = Api::namespaced(client.clone(), &ns);
    resources
        .create(&PostParams::default(), &resource)
        .await
        .expect("resource");

    let cron_jobs: Api<CronJob> = Api::namespaced(client.clone(), &ns);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let cron = eventually("the CronJob", || async {
        cron_jobs.get_opt("backup-www").await.ok().flatten()
    })
    .await;
    let spec = cron.spec.clone().expect("spec");
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    assert_eq!(spec.schedule, "0 3 * * *");
    assert!(
        cron.metadata
            .managed_fields
            .unwrap_or_default()
            .iter()
            .any(|m| {
                m.manager.as_deref() == Some("unstoppable")
                    && m.operation.as_deref() == Some("Apply")
            }),
        "applied server-side by the field manager `unstoppable`"
    );
    eventually("the hot PVC", || async {
        pvcs.get_opt("hot-www").await.ok().flatten()
    })
    .await;
    let ready = eventually("the resource to be Ready", || async {
        let r = resources.get("www").await.ok()?;
        let ready = r
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (ready.status == "True").then_some(ready)
    })
    .await;
    assert_eq!(ready.reason, "Reconciled");

    // The operator skips applies that would change nothing, but never ignores a child someone
    // else changed or deleted: both are put back.
    cron_jobs
        .patch(
            "backup-www",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"schedule": "59 23 * * *"}})),
        )
        .await
        .expect("edit the CronJob by hand");
    eventually("the edited CronJob to be put back", || async {
        let c = cron_jobs.get("backup-www").await.ok()?;
        (c.spec?.schedule == "0 3 * * *").then_some(())
    })
    .await;
    cron_jobs
        .delete("backup-www", &DeleteParams::default())
        .await
        .expect("delete the CronJob by hand");
    eventually("the deleted CronJob to be recreated", || async {
        let c = cron_jobs.get_opt("backup-www").await.ok()??;
        c.metadata
            .uid
            .is_some_and(|uid| Some(uid) != cron.metadata.uid)
            .then_some(())
    })
    .await;

    // An object stored before the schema had a maximum is skipped, not a stall of the others.
    eventually("the undecodable customer to be counted", || async {
        let metrics = operator.metrics();
        let line = metrics
            .lines()
            .find(|l| l.starts_with("unstoppable_undecodable_objects{kind=\"BackupCustomer\"}"))?;
        (!line.ends_with(" 0")).then_some(())
    })
    .await;

    // Pod resources the API server refuses: a condition naming the problem, not an endless retry.
    let banana = resources
        .patch(
            "www",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"resources": {"limits": {"memory": "banana"}}}})),
        )
        .await;
    if banana.is_ok() {
        let rejected = eventually("Ready=False CronJobRejected", || async {
            let r = resources.get("www").await.ok()?;
            let ready = r
                .status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Ready")?;
            (ready.reason == "CronJobRejected").then_some(ready)
        })
        .await;
        assert!(
            rejected.message.contains("refused CronJob backup-www")
                && rejected.message.contains("quantities"),
            "{}",
            rejected.message
        );
        resources
            .patch(
                "www",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"resources": null}})),
            )
            .await
            .expect("fix the resources");
    }

    // A hot volume that cannot shrink: a condition, and the CronJob still follows the spec.
    resources
        .patch(
            "www",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"hotStorage": {"size": "512Mi"}}})),
        )
        .await
        .expect("shrink the hot volume");
    let hot = eventually("HotVolumeUpToDate=False", || async {
        let r = resources.get("www").await.ok()?;
        let status = r.status?;
        let hot = status
            .conditions
            .iter()
            .find(|c| c.type_ == "HotVolumeUpToDate")?
            .clone();
        let ready = status.conditions.iter().find(|c| c.type_ == "Ready")?;
        (hot.status == "False" && ready.status == "True").then_some(hot)
    })
    .await;
    assert_eq!(hot.reason, "HotVolumeUnchangeable");

    // Schedule and suspend changes reach the CronJob.
    resources
        .patch(
            "www",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"schedule": "30 4 * * 1-5"}})),
        )
        .await
        .expect("change the schedule");
    eventually("the new schedule", || async {
        let c = cron_jobs.get("backup-www").await.ok()?;
        (c.spec?.schedule == "30 4 * * 1-5").then_some(())
    })
    .await;
    resources
        .patch(
            "www",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": true}})),
        )
        .await
        .expect("suspend");
    eventually("the CronJob to be suspended", || async {
        let c = cron_jobs.get("backup-www").await.ok()?;
        (c.spec?.suspend == Some(true)).then_some(())
    })
    .await;

    // Deleting the resource removes its children (owner references; the garbage collector).
    resources
        .delete("www", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the CronJob and PVC to go", || async {
        let cron_gone = cron_jobs.get_opt("backup-www").await.ok()?.is_none();
        let pvc = pvcs.get_opt("hot-www").await.ok()?;
        // A PVC may keep a protection finalizer while terminating.
        let pvc_gone = pvc.is_none_or(|p| p.metadata.deletion_timestamp.is_some());
        (cron_gone && pvc_gone).then_some(())
    })
    .await;

    // Least privilege proven: nothing the operator did was refused.
    let metrics = operator.metrics();
    let log = operator.stop();
    for line in metrics.lines().filter(|l| {
        l.starts_with("unstoppable_reconcile_errors_total")
            || l.starts_with("unstoppable_watch_errors_total")
    }) {
        assert!(
            line.ends_with(" 0"),
            "errors with the chart's RBAC: {line}\n{log}"
        );
    }
    assert!(
        !log.to_ascii_lowercase().contains("forbidden"),
        "a request was refused:\n{log}"
    );
    assert!(
        metrics.contains("unstoppable_reconciles_total{controller=\"backupresource\"}"),
        "{metrics}"
    );
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(&old_ns, &DeleteParams::default()).await;
}

/// Stores a customer with `keepLast: 4294967296` (beyond the operator's `u32`) the way it could
/// have been stored before the CRD had a maximum: through a CRD without it. Then the real CRD
/// is restored; the stored object stays as it was.
async fn store_an_undecodable_customer(client: &Client) -> String {
    let (_, yaml) = unstoppable_operator::crd::crd_files()
        .into_iter()
        .find(|(file, _)| file.contains("backupcustomers"))
        .expect("customer CRD");
    let mut crd: serde_json::Value = serde_saphyr::from_str(&yaml).expect("crd");
    let keep_last = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
        ["spec"]["properties"]["retention"]["properties"]["keepLast"];
    keep_last
        .as_object_mut()
        .expect("keepLast")
        .remove("maximum");
    apply(client, &crd).await;
    let ns = format!("old-{}", std::process::id());
    apply(
        client,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )
    .await;
    let old = json!({
        "apiVersion": "unstoppable.dev/v1alpha1", "kind": "BackupCustomer",
        "metadata": {"name": "legacy", "namespace": ns},
        "spec": {"coldStorage": {"endpoint": "https://s3.example.org"},
                 "secrets": {"secretRef": {"name": "x"}},
                 "retention": {"keepLast": 4294967296u64}},
    });
    let resource = ApiResource {
        group: "unstoppable.dev".into(),
        version: "v1alpha1".into(),
        api_version: "unstoppable.dev/v1alpha1".into(),
        kind: "BackupCustomer".into(),
        plural: "backupcustomers".into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource);
    let obj: DynamicObject = serde_json::from_value(old).expect("object");
    // The API server may use the previous schema for a moment after the CRD changes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = api.create(&PostParams::default(), &obj).await {
        assert!(
            Instant::now() < deadline,
            "cannot store the legacy customer: {e}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let real: serde_json::Value = serde_saphyr::from_str(&yaml).expect("crd");
    apply(client, &real).await;
    ns
}
