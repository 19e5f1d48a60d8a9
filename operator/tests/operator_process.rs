//! The operator as a process against a real API server (`testenv/`, started by
//! `scripts/test.sh`), authenticated as its ServiceAccount with exactly the RBAC the chart
//! renders: a customer and a resource become a bucket, a CronJob and a PVC by server-side apply;
//! schedule and suspend changes reach the CronJob; deleting the resource removes its children by
//! owner reference. Any request the chart's RBAC does not allow shows up as a reconcile or watch
//! error, and the test fails on it.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, ServiceAccount};
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};
use serde_json::json;
use unstoppable_operator::crd::{BackupCustomer, BackupResource};

const RELEASE_NS: &str = "unstoppable-system";

fn var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests with scripts/test.sh"))
}

async fn admin() -> (Client, Kubeconfig) {
    unstoppable_operator::install_crypto_provider();
    let kubeconfig = Kubeconfig::read_from(var("UNSTOPPABLE_TEST_KUBECONFIG")).expect("kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig.clone(), &KubeConfigOptions::default())
        .await
        .expect("config");
    (Client::try_from(config).expect("client"), kubeconfig)
}

/// Server-side applies a manifest of any kind (cluster-scoped or namespaced).
async fn apply(client: &Client, obj: &serde_json::Value) {
    let api_version = obj["apiVersion"].as_str().expect("apiVersion");
    let kind = obj["kind"].as_str().expect("kind");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let plural = match kind {
        "ClusterRole" => "clusterroles".to_string(),
        "ClusterRoleBinding" => "clusterrolebindings".to_string(),
        "ServiceAccount" => "serviceaccounts".to_string(),
        "Role" => "roles".to_string(),
        "RoleBinding" => "rolebindings".to_string(),
        "Namespace" => "namespaces".to_string(),
        "Secret" => "secrets".to_string(),
        other => format!("{}s", other.to_ascii_lowercase()),
    };
    let resource = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural,
    };
    let dynamic: DynamicObject = serde_json::from_value(obj.clone()).expect("object");
    let name = dynamic.name_any();
    let api: Api<DynamicObject> = match obj["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    api.patch(
        &name,
        &PatchParams::apply("unstoppable-test").force(),
        &Patch::Apply(&dynamic),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {kind} {name}: {e}"));
}

/// The chart's ServiceAccount and RBAC, rendered by helm as a user installs them.
fn chart_rbac() -> Vec<serde_json::Value> {
    let tools = std::env::var("UNSTOPPABLE_TOOLS")
        .unwrap_or_else(|_| format!("{}/.local/share/unstoppable/bin", var("HOME")));
    let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/unstoppable");
    let out = Command::new(format!("{tools}/helm"))
        .args(["template", "unstoppable"])
        .arg(&chart)
        .args(["-n", RELEASE_NS])
        .output()
        .expect("helm (run scripts/install-helm-tools.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let docs: Vec<serde_json::Value> = text
        .split("\n---")
        .filter_map(|d| serde_saphyr::from_str::<serde_json::Value>(d).ok())
        .filter(|d| d.is_object())
        .collect();
    let rbac: Vec<serde_json::Value> = docs
        .into_iter()
        .filter(|d| {
            matches!(
                d["kind"].as_str(),
                Some(
                    "ServiceAccount"
                        | "ClusterRole"
                        | "ClusterRoleBinding"
                        | "Role"
                        | "RoleBinding"
                )
            )
        })
        .collect();
    assert!(rbac.len() >= 3, "the chart renders no RBAC");
    rbac
}

/// A kubeconfig that authenticates as the operator's ServiceAccount.
async fn operator_kubeconfig(
    client: &Client,
    admin: &Kubeconfig,
    dir: &std::path::Path,
) -> std::path::PathBuf {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), RELEASE_NS);
    let token = sas
        .create_token_request(
            "unstoppable",
            &PostParams::default(),
            &TokenRequest {
                spec: TokenRequestSpec {
                    expiration_seconds: Some(3600),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("token")
        .status
        .expect("token status")
        .token;
    let cluster = admin.clusters[0].cluster.clone().expect("cluster");
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "operator",
        "clusters": [{"name": "testenv", "cluster": {
            "server": cluster.server, "certificate-authority-data": cluster.certificate_authority_data}}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "testenv", "user": "operator"}}],
    });
    let path = dir.join("operator.kubeconfig");
    std::fs::write(&path, serde_json::to_vec(&kubeconfig).expect("json")).expect("write");
    path
}

struct Operator {
    child: Child,
    port: u16,
}

impl Operator {
    fn metrics(&self) -> String {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("metrics");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("request");
        let mut body = String::new();
        stream.read_to_string(&mut body).expect("response");
        body
    }

    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let out = self.child.wait_with_output().expect("operator output");
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
    }
}

async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn the_operator_with_the_charts_rbac_schedules_changes_and_cleans_up() {
    let (client, admin_config) = admin().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // CRDs and the release namespace, as the chart installs them.
    for (_, yaml) in unstoppable_operator::crd::crd_files() {
        let crd: serde_json::Value = serde_saphyr::from_str(&yaml).expect("crd");
        apply(&client, &crd).await;
    }
    apply(
        &client,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RELEASE_NS}}),
    )
    .await;
    for obj in chart_rbac() {
        apply(&client, &obj).await;
    }
    let kubeconfig = operator_kubeconfig(&client, &admin_config, dir.path()).await;
    let old_ns = store_an_undecodable_customer(&client).await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let operator = Operator {
        child: Command::new(env!("CARGO_BIN_EXE_unstoppable-operator"))
            .env_clear()
            .env("KUBECONFIG", &kubeconfig)
            .env(
                "UNSTOPPABLE_JOB_IMAGE",
                "registry.example/unstoppable-job:test",
            )
            .env("UNSTOPPABLE_METRICS_ADDR", format!("127.0.0.1:{port}"))
            .env("UNSTOPPABLE_LOG_FORMAT", "text")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the operator"),
        port,
    };

    // A tenant: its Secret, customer (bucket in the test S3 server) and one resource.
    let ns = format!("tenant-{}", std::process::id());
    let bucket = format!("operator-process-{}", std::process::id());
    apply(
        &client,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )
    .await;
    apply(&client, &json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "acme-credentials", "namespace": ns},
        "stringData": {
            "FTP_USERNAME": "ftp-user", "FTP_PASSWORD": "ftp-password",
            "REPOSITORY_PASSWORD": "repository-password",
            "S3_ACCESS_KEY_ID": var("UNSTOPPABLE_TEST_S3_ACCESS_KEY"),
            "S3_SECRET_ACCESS_KEY": var("UNSTOPPABLE_TEST_S3_SECRET_KEY"),
        },
    }))
    .await;
    let mut customer = BackupCustomer::test();
    customer.metadata = Default::default();
    customer.metadata.name = Some("acme".into());
    customer.metadata.namespace = Some(ns.clone());
    customer.spec.cold_storage.endpoint = var("UNSTOPPABLE_TEST_S3_ENDPOINT");
    customer.spec.cold_storage.region = "us-east-1".into();
    customer.spec.cold_storage.bucket = Some(bucket);
    let customers: Api<BackupCustomer> = Api::namespaced(client.clone(), &ns);
    customers
        .create(&PostParams::default(), &customer)
        .await
        .expect("customer");
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
