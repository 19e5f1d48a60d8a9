//! The CronJob controller of the real control plane (`testenv/`) starts a backup on its own, on
//! a one-minute schedule; the test agent runs the Pod; the operator records the success.

mod cluster;

use cluster::ftps::{certificates, create_site_resource, ftps_server, PASSWORD, USER};
use cluster::{admin, agent, install_chart, tenant, Operator};
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use serde_json::json;
use unstoppable_operator::crd::BackupResource;

#[tokio::test]
async fn the_cronjob_controller_starts_the_backup_on_schedule() {
    let (client, admin_config) = admin().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = install_chart(&client, &admin_config, dir.path()).await;
    let operator = Operator::start(&kubeconfig);
    let (ca, cert, key) = certificates(dir.path());
    let served = dir.path().join("served");
    std::fs::create_dir_all(served.join("site")).expect("served");
    std::fs::write(served.join("site/index.html"), b"<h1>on time</h1>\n").expect("write");
    let (_ftps, port) = ftps_server(&served, &cert, &key);
    let ns = format!("scheduled-{}", std::process::id());
    tenant(
        &client,
        &ns,
        &format!("scheduled-{}", std::process::id()),
        json!({"FTP_USERNAME": USER, "FTP_PASSWORD": PASSWORD, "ca.pem": ca}),
    )
    .await;
    create_site_resource(&client, &ns, port, "*/1 * * * *").await;
    let resources: Api<BackupResource> = Api::namespaced(client.clone(), &ns);
    let _agent = agent::start(client.clone(), &ns, dir.path().join("node"));
    // The next minute boundary, then the CronJob controller's Job, the agent's run, the result.
    let message = cluster::eventually_within(
        "a scheduled backup to succeed",
        std::time::Duration::from_secs(150),
        || async {
            let r = resources.get("www").await.ok()?;
            let c = r
                .status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "LastBackupSucceeded")?;
            (c.reason == "BackupSucceeded").then_some(c.message)
        },
    )
    .await;
    assert!(message.contains("1 new"), "{message}");
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let by_controller = jobs
        .list(&Default::default())
        .await
        .expect("jobs")
        .items
        .into_iter()
        .any(|j| {
            j.metadata
                .owner_references
                .unwrap_or_default()
                .iter()
                .any(|o| o.kind == "CronJob" && o.name == "backup-www")
        });
    assert!(
        by_controller,
        "the Job was created by the CronJob controller"
    );
    operator.stop();
    // Leave nothing running for the tests that follow (a CronJob on a one-minute schedule).
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(&ns, &Default::default()).await;
}
