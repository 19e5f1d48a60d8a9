//! The shared harness of the tests against the real API server of `testenv/` (started by
//! `scripts/test.sh`): the admin client, applying manifests, the chart's RBAC, the operator binary
//! as its ServiceAccount, a tenant.
#![allow(dead_code)]

pub mod agent;
pub mod ftps;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};
use serde_json::json;
use unstoppable_operator::crd::BackupCustomer;

pub const RELEASE_NS: &str = "unstoppable-system";

pub fn var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests with scripts/test.sh"))
}

pub async fn admin() -> (Client, Kubeconfig) {
    unstoppable_operator::install_crypto_provider();
    let kubeconfig = Kubeconfig::read_from(var("UNSTOPPABLE_TEST_KUBECONFIG")).expect("kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig.clone(), &KubeConfigOptions::default())
        .await
        .expect("config");
    (Client::try_from(config).expect("client"), kubeconfig)
}

/// Server-side applies a manifest of any kind (cluster-scoped or namespaced).
pub async fn apply(client: &Client, obj: &serde_json::Value) {
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
pub fn chart_rbac() -> Vec<serde_json::Value> {
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
pub async fn operator_kubeconfig(
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

/// The operator binary, running as its ServiceAccount.
pub struct Operator {
    pub child: Child,
    pub port: u16,
    /// Its log goes to a file: a pipe nobody reads would fill up and stop the operator.
    pub log: tempfile::NamedTempFile,
}

/// A test that fails must not leave its operator running against the shared control plane.
impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Operator {
    /// The metrics exposition; empty while the operator is not listening yet.
    pub fn metrics(&self) -> String {
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return String::new();
        };
        let mut body = String::new();
        // HTTP/1.0: the streamed exposition arrives unframed, up to the close, not in chunks.
        let _ = stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            .and_then(|()| stream.read_to_string(&mut body));
        body
    }

    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

pub async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_within(what, Duration::from_secs(60), probe).await
}

/// Polls `probe` until it gives a value, failing the test after `limit`.
pub async fn eventually_within<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Installs what the chart installs for the operator (CRDs, release namespace, ServiceAccount and
/// RBAC as `helm template` renders them) and returns a kubeconfig of its ServiceAccount.
pub async fn install_chart(
    client: &Client,
    admin: &Kubeconfig,
    dir: &std::path::Path,
) -> std::path::PathBuf {
    for (_, yaml) in unstoppable_operator::crd::crd_files() {
        let crd: serde_json::Value = serde_saphyr::from_str(&yaml).expect("crd");
        apply(client, &crd).await;
    }
    apply(
        client,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RELEASE_NS}}),
    )
    .await;
    for obj in chart_rbac() {
        apply(client, &obj).await;
    }
    operator_kubeconfig(client, admin, dir).await
}

impl Operator {
    /// Starts the operator binary with `kubeconfig`, metrics on a free port.
    pub fn start(kubeconfig: &std::path::Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let log = tempfile::NamedTempFile::new().expect("log file");
        let out = log.reopen().expect("log file");
        let err = log.reopen().expect("log file");
        Operator {
            child: Command::new(env!("CARGO_BIN_EXE_unstoppable-operator"))
                .env_clear()
                .env("KUBECONFIG", kubeconfig)
                .env(
                    "UNSTOPPABLE_JOB_IMAGE",
                    "registry.example/unstoppable-job:test",
                )
                .env("UNSTOPPABLE_METRICS_ADDR", format!("127.0.0.1:{port}"))
                .env("UNSTOPPABLE_LOG_FORMAT", "text")
                .env("RUST_LOG", "info")
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err))
                .spawn()
                .expect("start the operator"),
            port,
            log,
        }
    }
}

/// A tenant namespace with the customer's Secret (`extra` keys added) and the customer `acme`,
/// whose bucket lives in the test S3 server.
pub async fn tenant(client: &Client, ns: &str, bucket: &str, extra: serde_json::Value) {
    apply(
        client,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )
    .await;
    let mut data = json!({
        "FTP_USERNAME": "ftp-user", "FTP_PASSWORD": "ftp-password",
        "REPOSITORY_PASSWORD": "repository-password",
        "S3_ACCESS_KEY_ID": var("UNSTOPPABLE_TEST_S3_ACCESS_KEY"),
        "S3_SECRET_ACCESS_KEY": var("UNSTOPPABLE_TEST_S3_SECRET_KEY"),
    });
    if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            d.insert(k.clone(), v.clone());
        }
    }
    apply(
        client,
        &json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "acme-credentials", "namespace": ns}, "stringData": data}),
    )
    .await;
    let mut customer = BackupCustomer::test();
    customer.metadata = Default::default();
    customer.metadata.name = Some("acme".into());
    customer.metadata.namespace = Some(ns.into());
    customer.spec.cold_storage.endpoint = var("UNSTOPPABLE_TEST_S3_ENDPOINT");
    customer.spec.cold_storage.region = "us-east-1".into();
    customer.spec.cold_storage.bucket = Some(bucket.into());
    let customers: Api<BackupCustomer> = Api::namespaced(client.clone(), ns);
    customers
        .create(&PostParams::default(), &customer)
        .await
        .expect("customer");
}

/// What `kubectl create job --from=cronjob/backup-www` does: a Job `name` from the CronJob's
/// template.
pub async fn run_now(client: &Client, ns: &str, name: &str) {
    use k8s_openapi::api::batch::v1::{CronJob, Job};
    let cron_jobs: Api<CronJob> = Api::namespaced(client.clone(), ns);
    let cron = cron_jobs.get("backup-www").await.expect("cronjob");
    let template = cron.spec.expect("spec").job_template;
    let meta = template.metadata.unwrap_or_default();
    let job = Job {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            labels: meta.labels,
            annotations: meta.annotations,
            ..Default::default()
        },
        spec: template.spec,
        ..Default::default()
    };
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("job");
}
