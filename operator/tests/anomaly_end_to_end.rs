//! An attack on the source, end to end on a real control plane (`testenv/`): the operator (as
//! its ServiceAccount, with the chart's RBAC) renders the CronJob; Jobs made from it are run by
//! the real Job controller and the test agent (the job binary against a pyftpdlib FTPS server and
//! SeaweedFS). A mass deletion makes the status say `SourceAnomaly` with the held snapshot, an
//! Event and the alert's metric; `spec.anomaly.releaseHold` reaches the next run, which releases
//! the hold and clears them. The API server keeps every status field (the CRD's schema has them).

mod cluster;

use cluster::ftps::{certificates, create_site_resource, ftps_server, PASSWORD, USER};
use cluster::{admin, agent, eventually, install_chart, run_now, tenant, Operator};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Event;
use kube::api::{ListParams, Patch, PatchParams};
use kube::Api;
use serde_json::json;
use unstoppable_operator::crd::{BackupResource, BackupResourceStatus};

/// Waits until the resource's last snapshot is not `previous`; returns the new status.
async fn next_backup(
    resources: &Api<BackupResource>,
    previous: Option<String>,
) -> BackupResourceStatus {
    eventually("the next backup", || async {
        let status = resources.get("www").await.ok()?.status?;
        let id = status.last_snapshot.as_ref().map(|s| s.id.clone());
        (id.is_some() && id != previous).then_some(status)
    })
    .await
}

fn condition(status: &BackupResourceStatus) -> Option<(String, String, String)> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == "SourceAnomaly")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test]
async fn a_mass_deletion_holds_the_last_good_snapshot_until_kubernetes_releases_it() {
    let (client, admin_config) = admin().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = install_chart(&client, &admin_config, dir.path()).await;
    let operator = Operator::start(&kubeconfig);
    let (ca, cert, key) = certificates(dir.path());
    let served = dir.path().join("served");
    for i in 0..40 {
        let page = format!("<p>page {i}</p>\n").repeat(100);
        std::fs::create_dir_all(served.join("site/pages")).expect("dirs");
        std::fs::write(served.join(format!("site/pages/p{i}.html")), page).expect("write");
    }
    let (_ftps, port) = ftps_server(&served, &cert, &key);
    let ns = format!("anomaly-{}", std::process::id());
    tenant(
        &client,
        &ns,
        &format!("anomaly-{}", std::process::id()),
        json!({"FTP_USERNAME": USER, "FTP_PASSWORD": PASSWORD, "ca.pem": ca}),
    )
    .await;
    create_site_resource(&client, &ns, port, "0 3 * * *").await;
    let resources: Api<BackupResource> = Api::namespaced(client.clone(), &ns);
    let cron_jobs: Api<CronJob> = Api::namespaced(client.clone(), &ns);
    eventually("the CronJob", || async {
        cron_jobs.get_opt("backup-www").await.ok().flatten()
    })
    .await;
    let _agent = agent::start(client.clone(), &ns, dir.path().join("node"));

    run_now(&client, &ns, "backup-www-1").await;
    let first = next_backup(&resources, None).await;
    run_now(&client, &ns, "backup-www-2").await;
    let second = next_backup(&resources, first.last_snapshot.map(|s| s.id)).await;
    let (on, reason, _) = condition(&second).expect("a SourceAnomaly condition");
    assert_eq!((on.as_str(), reason.as_str()), ("False", "NoAnomaly"));
    assert_eq!(
        second.last_changes.as_ref().map(|c| c.files_before),
        Some(40)
    );

    // The attack: 30 of the 40 pages deleted.
    for i in 0..30 {
        std::fs::remove_file(served.join(format!("site/pages/p{i}.html"))).expect("delete");
    }
    run_now(&client, &ns, "backup-www-3").await;
    let third = next_backup(&resources, second.last_snapshot.map(|s| s.id)).await;
    let (on, reason, message) = condition(&third).expect("condition");
    assert_eq!(
        (on.as_str(), reason.as_str()),
        ("True", "MassDeletion"),
        "{message}"
    );
    let anomaly = third.anomaly.clone().expect("status.anomaly");
    let held = anomaly.held_snapshot.clone().expect("a held snapshot");
    assert!(message.contains(&held), "{message}");
    assert_eq!(
        third.last_changes.as_ref().map(|c| c.files_deleted),
        Some(30)
    );
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let warned = events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .iter()
        .any(|e| {
            e.reason.as_deref() == Some("SourceAnomaly") && e.type_.as_deref() == Some("Warning")
        });
    assert!(warned, "a Warning Event SourceAnomaly");
    let labels = format!(r#"namespace="{ns}",customer="acme",resource="www""#);
    let metrics = operator.metrics();
    for needle in [
        format!("unstoppable_source_anomaly{{{labels}}} 1"),
        format!("unstoppable_backup_last_changes{{{labels},change=\"deleted\"}} 30"),
    ] {
        assert!(metrics.contains(&needle), "missing {needle}\n{metrics}");
    }

    // A person looked: release the hold through the resource; the CronJob carries it.
    resources
        .patch(
            "www",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"anomaly": {"releaseHold": held}}})),
        )
        .await
        .expect("releaseHold");
    eventually("the CronJob to carry the release", || async {
        let cron = cron_jobs.get("backup-www").await.ok()?;
        let text = serde_json::to_string(&cron.spec?).ok()?;
        (text.contains("UNSTOPPABLE_ANOMALY_RELEASE_HOLD") && text.contains(&held)).then_some(())
    })
    .await;
    run_now(&client, &ns, "backup-www-4").await;
    let fourth = next_backup(&resources, third.last_snapshot.map(|s| s.id)).await;
    let (on, reason, message) = condition(&fourth).expect("condition");
    assert_eq!(
        (on.as_str(), reason.as_str()),
        ("False", "HoldReleased"),
        "{message}"
    );
    assert!(fourth.anomaly.is_none());
    eventually("the alert's metric to clear", || async {
        operator
            .metrics()
            .contains(&format!("unstoppable_source_anomaly{{{labels}}} 0"))
            .then_some(())
    })
    .await;
    operator.stop();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(&ns, &Default::default()).await;
}
