//! A backup end to end on a real control plane (`testenv/`): the operator (as its
//! ServiceAccount, with the chart's RBAC) renders the CronJob; a Job made from it is run by the
//! real Job controller; its Pod is run by the test agent that stands in for the kubelet (the job
//! binary against a pyftpdlib FTPS server and SeaweedFS); the operator reads the result back into
//! the resource's status, Events and metrics — for a success, a failure and an incomplete run.

mod cluster;

use cluster::ftps::{certificates, create_site_resource, ftps_server, PASSWORD, USER};
use cluster::{admin, agent, eventually, install_chart, run_now, tenant, Operator};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::Api;
use serde_json::json;
use unstoppable_operator::crd::BackupResource;

/// Waits until the resource's `LastBackupSucceeded` condition has `reason`.
async fn last_result(resources: &Api<BackupResource>, reason: &str) -> String {
    eventually(&format!("LastBackupSucceeded {reason}"), || async {
        let r = resources.get("www").await.ok()?;
        let c = r
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "LastBackupSucceeded")?;
        (c.reason == reason).then_some(c.message)
    })
    .await
}

#[tokio::test]
async fn a_backup_runs_through_the_real_cronjob_and_job_controllers_and_its_result_comes_back() {
    let (client, admin_config) = admin().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = install_chart(&client, &admin_config, dir.path()).await;
    let operator = Operator::start(&kubeconfig);

    let (ca, cert, key) = certificates(dir.path());
    let served = dir.path().join("served");
    std::fs::create_dir_all(served.join("site")).expect("served");
    std::fs::write(served.join("site/index.html"), b"<h1>hello</h1>\n").expect("write");
    std::fs::write(served.join("site/data.bin"), vec![7u8; 300_000]).expect("write");
    let (_ftps, port) = ftps_server(&served, &cert, &key);

    let ns = format!("e2e-{}", std::process::id());
    let bucket = format!("e2e-{}", std::process::id());
    tenant(
        &client,
        &ns,
        &bucket,
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

    // A success.
    run_now(&client, &ns, "backup-www-1").await;
    let message = last_result(&resources, "BackupSucceeded").await;
    assert!(message.contains("2 new"), "{message}");
    let status = resources
        .get("www")
        .await
        .expect("resource")
        .status
        .expect("status");
    assert!(status.last_successful_time.is_some());
    assert!(status.last_snapshot.is_some_and(|s| s.files_new == 2));

    // A failure: the server refuses the login.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    secrets
        .patch(
            "acme-credentials",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"FTP_PASSWORD": "wrong"}})),
        )
        .await
        .expect("break the password");
    run_now(&client, &ns, "backup-www-2").await;
    let message = last_result(&resources, "BackupFailed").await;
    assert!(message.contains("login"), "{message}");
    assert!(
        !message.contains("wrong"),
        "no secret in the status: {message}"
    );

    // An incomplete run: a file that keeps growing while it is read (exit 3).
    secrets
        .patch(
            "acme-credentials",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"FTP_PASSWORD": PASSWORD}})),
        )
        .await
        .expect("fix the password");
    std::fs::write(served.join("site/app.log"), b"first line\n").expect("write");
    run_now(&client, &ns, "backup-www-3").await;
    let message = last_result(&resources, "BackupIncomplete").await;
    assert!(message.contains("/site/app.log"), "{message}");

    let metrics = operator.metrics();
    let labels = format!(r#"namespace="{ns}",customer="acme",resource="www""#);
    for needle in [
        format!("unstoppable_backup_runs_total{{{labels},result=\"success\"}} 1"),
        format!("unstoppable_backup_runs_total{{{labels},result=\"failure\"}} 1"),
        format!("unstoppable_backup_runs_total{{{labels},result=\"incomplete\"}} 1"),
        format!("unstoppable_backup_last_failed_paths{{{labels}}} 1"),
        format!("unstoppable_backup_last_run_success{{{labels}}} 0"),
    ] {
        assert!(metrics.contains(&needle), "missing {needle}\n{metrics}");
    }
    let log = operator.stop();
    assert!(!log.contains(PASSWORD), "the operator logged a secret");

    // A restart re-reads the three Jobs in no particular order: no gauge moves backwards.
    let last_success = resources
        .get("www")
        .await
        .expect("resource")
        .status
        .and_then(|s| s.last_successful_time)
        .expect("last success")
        .0
        .as_second();
    let operator = Operator::start(&kubeconfig);
    let after = eventually("the Jobs to be read again", || async {
        let m = operator.metrics();
        m.contains(&format!(
            "unstoppable_backup_last_failed_paths{{{labels}}} 1"
        ))
        .then_some(m)
    })
    .await;
    for needle in [
        format!("unstoppable_backup_last_run_success{{{labels}}} 0"),
        format!("unstoppable_backup_last_success_timestamp_seconds{{{labels}}} {last_success}.0"),
    ] {
        assert!(after.contains(&needle), "missing {needle}\n{after}");
    }
    assert!(
        !after.contains(&format!("{labels},result=\"success\"}} 1")),
        "a run seen before the restart was counted again:\n{after}"
    );
    operator.stop();
    // Leave nothing running for the tests that follow (a CronJob on a one-minute schedule).
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(&ns, &Default::default()).await;
}
