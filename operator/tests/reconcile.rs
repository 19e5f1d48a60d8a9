//! Reconcilers against kube-rs's mocked API server: each test scripts the exact conversation
//! (requests the operator must send, answers the API server gives).

use std::sync::Arc;

use http::{Request, Response, StatusCode};
use k8s_openapi::api::batch::v1::Job;
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::Client;
use serde_json::{json, Value};
use tower_test::mock::{self, Handle};
use unstoppable_contract::{FailedPath, RunResult, RunSummary};
use unstoppable_operator::context::Context;
use unstoppable_operator::crd::{BackupCustomer, BackupCustomerStatus, BackupResource};
use unstoppable_operator::metrics::Metrics;
use unstoppable_operator::restore_crd::{BackupRestore, BackupRestoreStatus, RestorePhase};
use unstoppable_operator::settings::Settings;
use unstoppable_operator::{
    conditions, customer_controller, job_controller, resource_controller, restore_controller,
};

struct ApiServer(Handle<Request<Body>, Response<Body>>);

struct Seen {
    method: String,
    path: String,
    query: String,
    content_type: String,
    body: Value,
}

impl ApiServer {
    /// Waits for the next request, checks method and path, answers with `status` and `answer`.
    async fn expect(
        &mut self,
        method: &str,
        path: &str,
        status: StatusCode,
        answer: Value,
    ) -> Seen {
        let (request, send) = self
            .0
            .next_request()
            .await
            .expect("the operator sent no request");
        let content_type = request
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let seen_method = request.method().to_string();
        let seen_path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or_default().to_string();
        let bytes = request.into_body().collect_bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        assert_eq!(
            (seen_method.as_str(), seen_path.as_str()),
            (method, path),
            "unexpected request (query {query})"
        );
        send.send_response(
            Response::builder()
                .status(status)
                .body(Body::from(serde_json::to_vec(&answer).expect("json")))
                .expect("response"),
        );
        Seen {
            method: seen_method,
            path: seen_path,
            query,
            content_type,
            body,
        }
    }

    /// An Event is published (events.k8s.io), with this reason.
    async fn expect_event(&mut self, reason: &str) -> Seen {
        let seen = self
            .expect(
                "POST",
                "/apis/events.k8s.io/v1/namespaces/backups/events",
                StatusCode::CREATED,
                json!({}),
            )
            .await;
        assert_eq!(seen.body["reason"], reason, "{}", seen.body);
        seen
    }
}

/// The conversation is over: the client sent nothing else (it may be gone already).
async fn assert_no_more_requests(api: &mut ApiServer) {
    let next =
        tokio::time::timeout(std::time::Duration::from_millis(100), api.0.next_request()).await;
    if let Ok(Some((request, _))) = next {
        panic!("unexpected request {} {}", request.method(), request.uri());
    }
}

fn setup() -> (Arc<Context>, ApiServer) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let ctx = Arc::new(Context::new(
        client,
        Settings::default(),
        Arc::new(Metrics::default()),
    ));
    (ctx, ApiServer(handle))
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})
}

fn ready_customer() -> BackupCustomer {
    let mut c = BackupCustomer::test();
    let mut status = BackupCustomerStatus::default();
    conditions::set(
        &mut status.conditions,
        "Ready",
        true,
        "Ready",
        "",
        Some(1),
        unstoppable_operator::status::time_now(),
    );
    c.status = Some(status);
    c
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

const RESOURCES: &str = "/apis/unstoppable.dev/v1alpha1/namespaces/backups/backupresources";
const CUSTOMERS: &str = "/apis/unstoppable.dev/v1alpha1/namespaces/backups/backupcustomers";

#[tokio::test]
async fn a_resource_without_its_customer_is_not_ready_and_gets_no_cronjob() {
    let (ctx, mut api) = setup();
    let res = BackupResource::test();
    let server = tokio::spawn(async move {
        api.expect(
            "GET",
            &format!("{CUSTOMERS}/acme"),
            StatusCode::NOT_FOUND,
            not_found(),
        )
        .await;
        let patch = api
            .expect(
                "PATCH",
                &format!("{RESOURCES}/www/status"),
                StatusCode::OK,
                serde_json::to_value(BackupResource::test()).expect("json"),
            )
            .await;
        let ready = condition(&patch.body["status"], "Ready");
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("False"), Some("CustomerNotFound"))
        );
        assert_eq!(patch.content_type, "application/merge-patch+json");
        api.expect_event("CustomerNotFound").await;
        api
    });
    resource_controller::reconcile(Arc::new(res), ctx)
        .await
        .expect("reconciles");
    let mut api = server.await.expect("script");
    // Nothing else was sent: no CronJob, no PVC.
    assert_no_more_requests(&mut api).await;
}

#[tokio::test]
async fn an_invalid_schedule_is_reported_and_no_cronjob_is_changed() {
    let (ctx, mut api) = setup();
    let mut res = BackupResource::test();
    res.spec.schedule = "0 25 * * *".into();
    let server = tokio::spawn(async move {
        api.expect(
            "GET",
            &format!("{CUSTOMERS}/acme"),
            StatusCode::OK,
            serde_json::to_value(ready_customer()).expect("json"),
        )
        .await;
        let patch = api
            .expect(
                "PATCH",
                &format!("{RESOURCES}/www/status"),
                StatusCode::OK,
                serde_json::to_value(BackupResource::test()).expect("json"),
            )
            .await;
        let ready = condition(&patch.body["status"], "Ready");
        assert_eq!(ready["reason"], "InvalidSchedule");
        assert!(ready["message"]
            .as_str()
            .unwrap_or_default()
            .contains("0 25 * * *"));
        api.expect_event("InvalidSchedule").await;
        api
    });
    resource_controller::reconcile(Arc::new(res), ctx)
        .await
        .expect("reconciles");
    let mut api = server.await.expect("script");
    assert_no_more_requests(&mut api).await;
}

#[tokio::test]
async fn a_valid_resource_is_applied_server_side_and_marked_ready() {
    let (ctx, mut api) = setup();
    let server = tokio::spawn(async move {
        api.expect(
            "GET",
            &format!("{CUSTOMERS}/acme"),
            StatusCode::OK,
            serde_json::to_value(ready_customer()).expect("json"),
        )
        .await;
        api.expect(
            "GET",
            "/api/v1/namespaces/backups/secrets/acme-credentials",
            StatusCode::OK,
            credentials_secret(&[]),
        )
        .await;
        // The CronJob goes first: schedule and suspend changes must reach it even when the
        // hot volume cannot change.
        let cron = api
            .expect("PATCH", "/apis/batch/v1/namespaces/backups/cronjobs/backup-www", StatusCode::OK, json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "backup-www"}, "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {}}}}}))
            .await;
        assert_eq!(cron.method, "PATCH");
        assert_eq!(cron.content_type, "application/apply-patch+yaml");
        assert!(
            cron.query.contains("fieldManager=unstoppable") && cron.query.contains("force=true")
        );
        assert_eq!(cron.body["spec"]["concurrencyPolicy"], "Forbid");
        assert_eq!(cron.body["metadata"]["ownerReferences"][0]["name"], "www");
        let pvc = api
            .expect("PATCH", "/api/v1/namespaces/backups/persistentvolumeclaims/hot-www", StatusCode::OK, json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "hot-www"}}))
            .await;
        assert_eq!(pvc.content_type, "application/apply-patch+yaml");
        assert!(
            pvc.query.contains("fieldManager=unstoppable") && pvc.query.contains("force=true"),
            "{}",
            pvc.query
        );
        assert_eq!(
            pvc.body["metadata"]["ownerReferences"][0]["kind"],
            "BackupResource"
        );
        let status = api
            .expect(
                "PATCH",
                &format!("{RESOURCES}/www/status"),
                StatusCode::OK,
                serde_json::to_value(BackupResource::test()).expect("json"),
            )
            .await;
        let s = &status.body["status"];
        assert_eq!(condition(s, "Ready")["status"], "True");
        assert_eq!(condition(s, "Scheduled")["status"], "True");
        assert_eq!(s["cronJobName"], "backup-www");
        assert!(
            s["nextScheduleTime"]
                .as_str()
                .is_some_and(|t| t.ends_with("T03:00:00Z")),
            "{s}"
        );
        assert_eq!(s["observedGeneration"], 1);
        assert!(status.path.ends_with("/status"));
        api
    });
    let ctx2 = ctx.clone();
    resource_controller::reconcile(Arc::new(BackupResource::test()), ctx)
        .await
        .expect("reconciles");
    server.await.expect("script");
    let text = ctx2.metrics.encode();
    assert!(
        text.contains(r#"unstoppable_backup_expected_interval_seconds{namespace="backups",customer="acme",resource="www"} 86400"#),
        "{text}"
    );
}

/// At thousands of resources a list per customer reconcile was most of the API server's work
/// for the customer controller: with the watch's store, the count is read from it.
#[tokio::test]
async fn a_customer_counts_its_resources_from_the_watch_store_without_listing() {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let (store, mut writer) = kube::runtime::reflector::store::<BackupResource>();
    let mut other = BackupResource::test();
    other.metadata.name = Some("other".into());
    other.spec.customer_ref.name = "someone-else".into();
    let mut elsewhere = BackupResource::test();
    elsewhere.metadata.namespace = Some("another-tenant".into());
    for r in [BackupResource::test(), other, elsewhere] {
        writer.apply_watcher_event(&kube::runtime::watcher::Event::InitApply(r));
    }
    writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
    let ctx = Arc::new(
        Context::new(
            Client::new(service, "default"),
            Settings::default(),
            Arc::new(Metrics::default()),
        )
        .with_resource_store(store),
    );
    let mut api = ApiServer(handle);
    let mut customer = BackupCustomer::test();
    customer.spec.cold_storage.bucket = Some("Not_A_Bucket".into());
    let server = tokio::spawn(async move {
        // No list of BackupResources: the first request is the Event.
        api.expect_event("NotReady").await;
        let patch = api
            .expect(
                "PATCH",
                &format!("{CUSTOMERS}/acme/status"),
                StatusCode::OK,
                serde_json::to_value(BackupCustomer::test()).expect("json"),
            )
            .await;
        assert_eq!(patch.body["status"]["resourceCount"], 1);
    });
    customer_controller::reconcile(Arc::new(customer), ctx)
        .await
        .expect("reconciles");
    server.await.expect("script");
}

#[tokio::test]
async fn a_customer_with_an_invalid_bucket_name_is_not_ready() {
    let (ctx, mut api) = setup();
    let mut customer = BackupCustomer::test();
    customer.spec.cold_storage.bucket = Some("Not_A_Bucket".into());
    let server = tokio::spawn(async move {
        let mut other = BackupResource::test();
        other.spec.customer_ref.name = "someone-else".into();
        api.expect("GET", RESOURCES, StatusCode::OK, json!({"apiVersion": "unstoppable.dev/v1alpha1", "kind": "BackupResourceList", "metadata": {}, "items": [BackupResource::test(), other]}))
            .await;
        api.expect_event("NotReady").await;
        let patch = api
            .expect(
                "PATCH",
                &format!("{CUSTOMERS}/acme/status"),
                StatusCode::OK,
                serde_json::to_value(BackupCustomer::test()).expect("json"),
            )
            .await;
        let s = &patch.body["status"];
        assert_eq!(condition(s, "StorageReady")["reason"], "InvalidBucketName");
        assert!(condition(s, "StorageReady")["message"]
            .as_str()
            .unwrap_or_default()
            .contains("lowercase"));
        assert_eq!(condition(s, "Ready")["status"], "False");
        assert_eq!(condition(s, "SecretsReady")["status"], "True");
        assert_eq!(s["resourceCount"], 1);
    });
    customer_controller::reconcile(Arc::new(customer), ctx)
        .await
        .expect("reconciles");
    server.await.expect("script");
}

#[tokio::test]
async fn a_customer_bucket_is_created_with_the_keys_from_its_secret() {
    use base64::Engine as _;
    let endpoint = std::env::var("UNSTOPPABLE_TEST_S3_ENDPOINT")
        .expect("UNSTOPPABLE_TEST_S3_ENDPOINT: run the tests with scripts/test.sh");
    let key = std::env::var("UNSTOPPABLE_TEST_S3_ACCESS_KEY").expect("S3 key");
    let secret = std::env::var("UNSTOPPABLE_TEST_S3_SECRET_KEY").expect("S3 secret");
    let (ctx, mut api) = setup();
    let mut customer = BackupCustomer::test();
    customer.spec.cold_storage.endpoint = endpoint;
    customer.spec.cold_storage.region = "us-east-1".into();
    customer.spec.cold_storage.bucket = Some(format!("reconciled-{}", std::process::id()));
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let server = tokio::spawn(async move {
        api.expect("GET", RESOURCES, StatusCode::OK, json!({"apiVersion": "unstoppable.dev/v1alpha1", "kind": "BackupResourceList", "metadata": {}, "items": []}))
            .await;
        api.expect(
            "GET",
            "/api/v1/namespaces/backups/secrets/acme-credentials",
            StatusCode::OK,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "acme-credentials"},
                   "data": {"S3_ACCESS_KEY_ID": b64(&key), "S3_SECRET_ACCESS_KEY": b64(&secret)}}),
        )
        .await;
        api.expect_event("BucketCreated").await;
        let patch = api
            .expect(
                "PATCH",
                &format!("{CUSTOMERS}/acme/status"),
                StatusCode::OK,
                serde_json::to_value(BackupCustomer::test()).expect("json"),
            )
            .await;
        let s = &patch.body["status"];
        assert_eq!(condition(s, "StorageReady")["reason"], "BucketCreated");
        assert_eq!(condition(s, "Ready")["status"], "True");
    });
    customer_controller::reconcile(Arc::new(customer), ctx)
        .await
        .expect("reconciles");
    server.await.expect("script");
}

fn s3_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name}: run the tests with scripts/test.sh"))
}

/// The Infisical stand-in of the job's tests (it implements the documented endpoints).
struct InfisicalStandIn(std::process::Child, String, std::path::PathBuf);

impl InfisicalStandIn {
    /// Knows one identity, whose project holds the S3 keys of the test S3 server.
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        let state = dir.join("state.json");
        let body = json!({
            "clients": {"identity-id": "identity-secret"},
            "projects": {"proj-1": {"prod": {"/acme": {
                "S3_ACCESS_KEY_ID": s3_var("UNSTOPPABLE_TEST_S3_ACCESS_KEY"),
                "S3_SECRET_ACCESS_KEY": s3_var("UNSTOPPABLE_TEST_S3_SECRET_KEY"),
            }}}},
        });
        std::fs::write(&state, body.to_string()).expect("state");
        let port_file = dir.join("port");
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../job/tests/fixtures/infisical_standin.py");
        let child = std::process::Command::new("python3")
            .arg(script)
            .arg(&state)
            .arg(&port_file)
            .spawn()
            .expect("python3");
        for _ in 0..500 {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|p| p.trim().parse::<u16>().ok())
            {
                return Self(child, format!("http://127.0.0.1:{port}"), state);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        panic!("the Infisical stand-in did not start");
    }
}

impl Drop for InfisicalStandIn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn infisical_customer_reconcile(
    site: String,
    client_secret: &'static str,
) -> (Value, Vec<String>) {
    let (ctx, api) = setup();
    let (patch, events, _) = infisical_customer_reconcile_in(ctx, api, site, client_secret).await;
    (patch, events)
}

/// One reconcile of an Infisical customer with `ctx`, whose API is scripted by `api`.
async fn infisical_customer_reconcile_in(
    ctx: Arc<Context>,
    mut api: ApiServer,
    site: String,
    client_secret: &'static str,
) -> (Value, Vec<String>, ApiServer) {
    use base64::Engine as _;
    let mut customer = BackupCustomer::test();
    customer.spec.secrets.secret_ref = None;
    customer.spec.cold_storage.endpoint = s3_var("UNSTOPPABLE_TEST_S3_ENDPOINT");
    customer.spec.cold_storage.region = "us-east-1".into();
    // One bucket per stand-in (its port): tests run side by side.
    let port = site.rsplit(':').next().unwrap_or_default().to_string();
    customer.spec.cold_storage.bucket = Some(format!(
        "via-infisical-{}-{}-{port}",
        std::process::id(),
        client_secret.len()
    ));
    customer.spec.secrets.infisical = Some(unstoppable_operator::crd::InfisicalSource {
        site_url: site,
        project_id: "proj-1".into(),
        environment: "prod".into(),
        path: "/acme".into(),
        identity_secret_ref: unstoppable_operator::crd::SecretRef {
            name: "acme-identity".into(),
        },
    });
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let server = tokio::spawn(async move {
        api.expect("GET", RESOURCES, StatusCode::OK, json!({"apiVersion": "unstoppable.dev/v1alpha1", "kind": "BackupResourceList", "metadata": {}, "items": []}))
            .await;
        api.expect(
            "GET",
            "/api/v1/namespaces/backups/secrets/acme-identity",
            StatusCode::OK,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "acme-identity"},
                   "data": {"clientId": b64("identity-id"), "clientSecret": b64(client_secret)}}),
        )
        .await;
        let mut patch = None;
        let mut events = Vec::new();
        for _ in 0..3 {
            let (request, _) = api
                .0
                .next_request()
                .await
                .map(|(r, s)| (r, Some(s)))
                .unwrap_or_else(|| panic!("no request"));
            let path = request.uri().path().to_string();
            let bytes = request.into_body().collect_bytes().await.expect("body");
            let body: Value = serde_json::from_slice(&bytes).expect("json");
            assert!(
                !String::from_utf8_lossy(&bytes).contains("identity-secret"),
                "the client secret leaked into {path}"
            );
            if path.ends_with("/status") {
                patch = Some(body);
                break;
            }
            events.push(body["reason"].as_str().unwrap_or_default().to_string());
        }
        (patch.expect("status patch"), events, api)
    });
    // Everything the operator logs meanwhile is captured: no secret may appear in it.
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::info!("capturing the operator's log");
    // The answers to the event and status requests are not needed: the test ends with the patch.
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        customer_controller::reconcile(Arc::new(customer), ctx),
    )
    .await;
    let result = server.await.expect("script");
    let text = logs.text();
    assert!(
        text.contains("capturing the operator's log"),
        "the log capture does not work"
    );
    for secret in [
        "identity-secret",
        "wrong-secret",
        &s3_var("UNSTOPPABLE_TEST_S3_SECRET_KEY"),
    ] {
        assert!(
            !text.contains(secret),
            "a secret appears in the operator's log"
        );
    }
    result
}

/// A shared in-memory log sink.
#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuffer {
    fn text(&self) -> String {
        self.0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn an_infisical_identity_that_logs_in_makes_secrets_ready_and_its_s3_keys_create_the_bucket()
{
    let standin = InfisicalStandIn::start();
    let (patch, events) = infisical_customer_reconcile(standin.1.clone(), "identity-secret").await;
    let s = &patch["status"];
    assert_eq!(
        condition(s, "SecretsReady")["reason"],
        "LoginSucceeded",
        "{s}"
    );
    assert_eq!(condition(s, "SecretsReady")["status"], "True");
    assert_eq!(
        condition(s, "StorageReady")["reason"],
        "BucketCreated",
        "{s}"
    );
    assert_eq!(condition(s, "Ready")["status"], "True");
    assert_eq!(events, vec!["BucketCreated".to_string()]);
}

#[tokio::test]
async fn an_infisical_identity_logs_in_once_across_reconciles() {
    let standin = InfisicalStandIn::start();
    let (ctx, api) = setup();
    let (patch, _, api) =
        infisical_customer_reconcile_in(ctx.clone(), api, standin.1.clone(), "identity-secret")
            .await;
    assert_eq!(condition(&patch["status"], "Ready")["status"], "True");
    let (patch, _, _) =
        infisical_customer_reconcile_in(ctx, api, standin.1.clone(), "identity-secret").await;
    assert_eq!(condition(&patch["status"], "Ready")["status"], "True");
    let log = std::fs::read_to_string(format!("{}.log", standin.2.display())).unwrap_or_default();
    let logins = log
        .lines()
        .filter(|l| l.starts_with("POST /api/v1/auth/universal-auth/login"))
        .count();
    assert_eq!(logins, 1, "{log}");
    assert_eq!(
        log.lines()
            .filter(|l| l.starts_with("GET /api/v4/secrets 200"))
            .count(),
        2,
        "{log}"
    );
}

#[tokio::test]
async fn an_infisical_identity_that_is_refused_keeps_the_customer_not_ready() {
    let standin = InfisicalStandIn::start();
    let (patch, events) = infisical_customer_reconcile(standin.1.clone(), "wrong-secret").await;
    let s = &patch["status"];
    assert_eq!(
        condition(s, "SecretsReady")["reason"],
        "InfisicalLoginFailed",
        "{s}"
    );
    // The hint names what a BackupCustomer's author can change, not the job's configuration keys.
    let message = condition(s, "SecretsReady")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("Invalid credentials")
            && message.contains("Secret acme-identity")
            && !message.contains("infisical.client_id"),
        "{message}"
    );
    assert_eq!(
        condition(s, "StorageReady")["reason"],
        "InfisicalLoginFailed",
        "{s}"
    );
    assert_eq!(condition(s, "Ready")["status"], "False");
    assert_eq!(events, vec!["NotReady".to_string()]);
}

#[tokio::test]
async fn resources_of_a_customer_that_is_not_ready_are_suspended() {
    let (ctx, mut api) = setup();
    let mut customer = BackupCustomer::test();
    let mut status = BackupCustomerStatus::default();
    conditions::set(
        &mut status.conditions,
        "Ready",
        false,
        "NotReady",
        "bucket denied",
        Some(1),
        unstoppable_operator::status::time_now(),
    );
    customer.status = Some(status);
    let server = tokio::spawn(async move {
        api.expect(
            "GET",
            &format!("{CUSTOMERS}/acme"),
            StatusCode::OK,
            serde_json::to_value(customer).expect("json"),
        )
        .await;
        let cron = api
            .expect("PATCH", "/apis/batch/v1/namespaces/backups/cronjobs/backup-www", StatusCode::OK, json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "backup-www"}, "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {}}}}}))
            .await;
        assert_eq!(cron.body["spec"]["suspend"], true);
        let patch = api
            .expect(
                "PATCH",
                &format!("{RESOURCES}/www/status"),
                StatusCode::OK,
                serde_json::to_value(BackupResource::test()).expect("json"),
            )
            .await;
        assert_eq!(
            condition(&patch.body["status"], "Scheduled")["reason"],
            "CustomerNotReady"
        );
        api.expect_event("CustomerNotReady").await;
    });
    resource_controller::reconcile(Arc::new(BackupResource::test()), ctx)
        .await
        .expect("reconciles");
    server.await.expect("script");
}

/// The customer's Secret with every key the pod reads, except `without`.
fn credentials_secret(without: &[&str]) -> Value {
    let data: serde_json::Map<String, Value> = [
        "FTP_USERNAME",
        "FTP_PASSWORD",
        "REPOSITORY_PASSWORD",
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
    ]
    .into_iter()
    .filter(|k| !without.contains(k))
    .map(|k| (k.to_string(), json!("c2VjcmV0")))
    .collect();
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "acme-credentials"}, "data": data})
}

/// The API server's answer to a request it refuses (422 Invalid).
fn invalid(message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": "Invalid", "code": 422})
}

#[tokio::test]
async fn a_missing_secret_key_makes_the_resource_not_ready_naming_the_key() {
    let (ctx, mut api) = setup();
    let server = tokio::spawn(async move {
        api.expect(
            "GET",
            &format!("{CUSTOMERS}/acme"),
            StatusCode::OK,
            serde_json::to_value(ready_customer()).expect("json"),
        )
        .await;
        api.expect(
            "GET",
            "/api/v1/namespaces/backups/secrets/acme-credentials",
            StatusCode::OK,
            credentials_secret(&["FTP_PASSWORD"]),
        )
        .await;
        let patch = api
            .expect(
                "PATCH",
                &format!("{RESOURCES}/www/status"),
                StatusCode::OK,
                serde_json::to_value(BackupResource::test()).expect("json"),
            )
            .await;
        let ready = condition(&patch.body["status"], "Ready");
        assert_eq!(ready["reason"], "SecretKeyMissing");
        assert!(ready["message"]
            .as_str()
            .unwrap_or_default()
            .contains("`FTP_PASSWORD`"));
        api.expect_event("SecretKeyMissing").await;
    });
    let metrics = ctx.metrics.clone();
    resource_controller::reconcile(Arc::new(BackupResource::test()), ctx)
        .await
        .expect("reconciles");
    server.await.expect("script");
    let text = metrics.encode();
    let labels = r#"namespace="backups",customer="acme",resource="www""#;
    for needle in [
        format!("unstoppable_backup_resource_ready{{{labels}}} 0"),
        format!("unstoppable_backup_expected_interval_seconds{{{labels}}} 86400"),
    ] {
        assert!(text.contains(&needle), "missing {needle}\n{text}");
    }
}

#[tokio::test]
async fn a_cronjob_the_api_server_refuses_is_a_condition_not_an_endless_retry() {
    let (ctx, mut api) = setup();
    let server = tokio::spawn(async move {
        api.expect(
            "GET",
            &format!("{CUSTOMERS}/acme"),
            StatusCode::OK,
            serde_json::to_value(ready_customer()).expect("json"),
        )
        .await;
        api.expect(
            "GET",
            "/api/v1/namespaces/backups/secrets/acme-credentials",
            StatusCode::OK,
            credentials_secret(&[]),
        )
        .await;
        api.expect(
            "PATCH",
            "/apis/batch/v1/namespaces/backups/cronjobs/backup-www",
            StatusCode::UNPROCESSABLE_ENTITY,
            invalid("CronJob.batch \"backup-www\" is invalid: spec.jobTemplate.spec.template.spec.containers[0].resources.limits[memory]: Invalid value: \"banana\""),
        )
        .await;
        let patch = api
            .expect(
                "PATCH",
                &format!("{RESOURCES}/www/status"),
                StatusCode::OK,
                serde_json::to_value(BackupResource::test()).expect("json"),
            )
            .await;
        let ready = condition(&patch.body["status"], "Ready");
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "CronJobRejected");
        assert!(ready["message"]
            .as_str()
            .unwrap_or_default()
            .contains("banana"));
        api.expect_event("CronJobRejected").await;
    });
    resource_controller::reconcile(Arc::new(BackupResource::test()), ctx)
        .await
        .expect("a refused apply is reported, not retried as an error");
    server.await.expect("script");
}

#[tokio::test]
async fn a_hot_volume_that_cannot_change_is_a_condition_and_the_cronjob_still_changes() {
    let (ctx, mut api) = setup();
    let server = tokio::spawn(async move {
        api.expect(
            "GET",
            &format!("{CUSTOMERS}/acme"),
            StatusCode::OK,
            serde_json::to_value(ready_customer()).expect("json"),
        )
        .await;
        api.expect(
            "GET",
            "/api/v1/namespaces/backups/secrets/acme-credentials",
            StatusCode::OK,
            credentials_secret(&[]),
        )
        .await;
        api.expect("PATCH", "/apis/batch/v1/namespaces/backups/cronjobs/backup-www", StatusCode::OK, json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "backup-www"}, "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {}}}}}))
            .await;
        api.expect(
            "PATCH",
            "/api/v1/namespaces/backups/persistentvolumeclaims/hot-www",
            StatusCode::UNPROCESSABLE_ENTITY,
            invalid("PersistentVolumeClaim \"hot-www\" is invalid: spec.resources.requests.storage: Forbidden: field can not be less than previous value"),
        )
        .await;
        let patch = api
            .expect(
                "PATCH",
                &format!("{RESOURCES}/www/status"),
                StatusCode::OK,
                serde_json::to_value(BackupResource::test()).expect("json"),
            )
            .await;
        let s = &patch.body["status"];
        assert_eq!(condition(s, "Ready")["status"], "True");
        let hot = condition(s, "HotVolumeUpToDate");
        assert_eq!(hot["status"], "False");
        assert_eq!(hot["reason"], "HotVolumeUnchangeable");
        assert!(hot["message"]
            .as_str()
            .unwrap_or_default()
            .contains("less than previous value"));
        api.expect_event("HotVolumeUnchangeable").await;
    });
    resource_controller::reconcile(Arc::new(BackupResource::test()), ctx)
        .await
        .expect("reconciles");
    server.await.expect("script");
}

fn finished_job(condition: &str) -> Job {
    serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "backup-www-29000000",
            "namespace": "backups",
            "annotations": {"unstoppable.dev/resource-name": "www", "unstoppable.dev/customer-name": "acme"},
        },
        "status": {
            "startTime": "2026-01-10T03:00:00Z",
            "completionTime": "2026-01-10T03:05:00Z",
            "conditions": [{"type": condition, "status": "True", "reason": if condition == "Failed" { "BackoffLimitExceeded" } else { "Completed" }, "lastTransitionTime": "2026-01-10T03:05:00Z"}],
        },
    }))
    .expect("job")
}

fn pod_list(summary: &RunSummary, exit_code: i32) -> Value {
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [{
        "metadata": {"name": "backup-www-29000000-abcde", "namespace": "backups", "creationTimestamp": "2026-01-10T03:00:01Z"},
        "status": {"containerStatuses": [{
            "name": "backup", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": exit_code, "reason": if exit_code == 0 { "Completed" } else { "Error" }, "message": summary.to_json_line()}},
        }]},
    }]})
}

#[tokio::test]
async fn a_succeeded_job_updates_status_events_and_metrics() {
    let (ctx, mut api) = setup();
    let summary = RunSummary {
        command: "backup".into(),
        success: true,
        snapshot_id: Some("0123abcd".into()),
        files_new: 5,
        files_changed: 1,
        files_unmodified: 100,
        bytes_listed: 1000,
        bytes_added: 300,
        duration_seconds: 42.0,
        retention: Some(unstoppable_contract::RetentionOutcome {
            kept: 12,
            removed: 1,
            error: None,
        }),
        check: Some(unstoppable_contract::CheckOutcome {
            slice: "4/30".into(),
            error: None,
        }),
        repository: Some(unstoppable_contract::RepositorySize {
            hot_bytes: 2048,
            cold_bytes: 1_000_000,
        }),
        ..Default::default()
    };
    let pods = pod_list(&summary, 0);
    let server = tokio::spawn(async move {
        api.expect(
            "GET",
            &format!("{RESOURCES}/www"),
            StatusCode::OK,
            serde_json::to_value(BackupResource::test()).expect("json"),
        )
        .await;
        let list = api
            .expect(
                "GET",
                "/api/v1/namespaces/backups/pods",
                StatusCode::OK,
                pods,
            )
            .await;
        assert!(
            list.query
                .contains("labelSelector=job-name%3Dbackup-www-29000000"),
            "{}",
            list.query
        );
        let patch = api
            .expect(
                "PATCH",
                &format!("{RESOURCES}/www/status"),
                StatusCode::OK,
                serde_json::to_value(BackupResource::test()).expect("json"),
            )
            .await;
        let s = &patch.body["status"];
        assert_eq!(s["lastSuccessfulTime"], "2026-01-10T03:05:00Z");
        assert_eq!(s["lastScheduleTime"], "2026-01-10T03:00:00Z");
        assert_eq!(s["lastSnapshot"]["id"], "0123abcd");
        assert_eq!(s["lastSnapshot"]["filesNew"], 5);
        assert_eq!(s["lastSnapshot"]["bytesAdded"], 300);
        // What ran after the backup; no prune ran, so none is recorded.
        let m = &s["maintenance"];
        assert_eq!(m["snapshotsKept"], 12);
        assert_eq!(m["lastCheckTime"], "2026-01-10T03:05:00Z");
        assert_eq!(m["lastCheckSlice"], "4/30");
        assert_eq!(
            (m["hotBytes"].as_u64(), m["coldBytes"].as_u64()),
            (Some(2048), Some(1_000_000))
        );
        assert!(m.get("lastPruneTime").is_none_or(Value::is_null), "{m}");
        let c = condition(s, "LastBackupSucceeded");
        assert_eq!(
            (c["status"].as_str(), c["reason"].as_str()),
            (Some("True"), Some("BackupSucceeded"))
        );
        api.expect_event("BackupSucceeded").await;
    });
    let metrics = ctx.metrics.clone();
    job_controller::reconcile(Arc::new(finished_job("Complete")), ctx)
        .await
        .expect("reconciles");
    server.await.expect("script");
    let text = metrics.encode();
    let labels = r#"namespace="backups",customer="acme",resource="www""#;
    for needle in [
        format!("unstoppable_backup_last_success_timestamp_seconds{{{labels}}} 1768014300.0"),
        format!("unstoppable_backup_runs_total{{{labels},result=\"success\"}} 1"),
        format!("unstoppable_backup_last_run_success{{{labels}}} 1"),
        format!("unstoppable_backup_last_added_bytes{{{labels}}} 300"),
        format!("unstoppable_backup_last_duration_seconds{{{labels}}} 42.0"),
    ] {
        assert!(text.contains(&needle), "missing {needle}\n{text}");
    }
}

#[tokio::test]
async fn an_anomalous_backup_sets_source_anomaly_with_an_event_and_exports_its_profile() {
    let (ctx, mut api) = setup();
    let held = "ab".repeat(32);
    let summary = RunSummary {
        command: "backup".into(),
        success: true,
        snapshot_id: Some("0123abcd".into()),
        changes: Some(unstoppable_contract::ChangeProfile {
            files_before: 1000,
            files_deleted: 612,
            ..Default::default()
        }),
        anomaly: Some(unstoppable_contract::Anomaly {
            reasons: vec![unstoppable_contract::AnomalyReason {
                code: "MassDeletion".into(),
                message: "612 of 1000 files deleted (61 %)".into(),
            }],
            held_snapshot: Some(held.clone()),
            hold_error: None,
        }),
        held_snapshots: Some(vec![held.clone()]),
        ..Default::default()
    };
    let pods = pod_list(&summary, 0);
    let expected_held = held.clone();
    let server = tokio::spawn(async move {
        api.expect(
            "GET",
            &format!("{RESOURCES}/www"),
            StatusCode::OK,
            serde_json::to_value(BackupResource::test()).expect("json"),
        )
        .await;
        api.expect(
            "GET",
            "/api/v1/namespaces/backups/pods",
            StatusCode::OK,
            pods,
        )
        .await;
        let patch = api
            .expect(
                "PATCH",
                &format!("{RESOURCES}/www/status"),
                StatusCode::OK,
                serde_json::to_value(BackupResource::test()).expect("json"),
            )
            .await;
        let s = &patch.body["status"];
        assert_eq!(s["anomaly"]["heldSnapshot"], expected_held.as_str());
        assert_eq!(s["anomaly"]["snapshot"], "0123abcd");
        assert_eq!(s["anomaly"]["reasons"][0]["code"], "MassDeletion");
        assert_eq!(s["lastChanges"]["filesDeleted"], 612);
        let c = condition(s, "SourceAnomaly");
        assert_eq!(
            (c["status"].as_str(), c["reason"].as_str()),
            (Some("True"), Some("MassDeletion"))
        );
        assert!(
            c["message"]
                .as_str()
                .is_some_and(|m| m.contains("releaseHold")),
            "{c}"
        );
        api.expect_event("BackupSucceeded").await;
        api.expect_event("SourceAnomaly").await;
    });
    let metrics = ctx.metrics.clone();
    job_controller::reconcile(Arc::new(finished_job("Complete")), ctx)
        .await
        .expect("reconciles");
    server.await.expect("script");
    let text = metrics.encode();
    let labels = r#"namespace="backups",customer="acme",resource="www""#;
    for needle in [
        format!("unstoppable_source_anomaly{{{labels}}} 1"),
        format!("unstoppable_backup_last_changes{{{labels},change=\"deleted\"}} 612"),
        format!("unstoppable_backup_last_changes{{{labels},change=\"before\"}} 1000"),
    ] {
        assert!(text.contains(&needle), "missing {needle}\n{text}");
    }
}

#[tokio::test]
async fn a_failed_job_records_the_reason_and_counts_a_failure() {
    let (ctx, mut api) = setup();
    let summary = RunSummary {
        command: "backup".into(),
        success: false,
        error: Some("listing `/data/private` failed: 550 Permission denied".into()),
        ..Default::default()
    };
    let pods = pod_list(&summary, 1);
    let server = tokio::spawn(async move {
        api.expect(
            "GET",
            &format!("{RESOURCES}/www"),
            StatusCode::OK,
            serde_json::to_value(BackupResource::test()).expect("json"),
        )
        .await;
        api.expect(
            "GET",
            "/api/v1/namespaces/backups/pods",
            StatusCode::OK,
            pods,
        )
        .await;
        let patch = api
            .expect(
                "PATCH",
                &format!("{RESOURCES}/www/status"),
                StatusCode::OK,
                serde_json::to_value(BackupResource::test()).expect("json"),
            )
            .await;
        let s = &patch.body["status"];
        assert_eq!(s["lastFailure"]["time"], "2026-01-10T03:05:00Z");
        assert!(s["lastFailure"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("550 Permission denied"));
        assert!(s.get("lastSuccessfulTime").is_none_or(Value::is_null));
        let c = condition(s, "LastBackupSucceeded");
        assert_eq!(
            (c["status"].as_str(), c["reason"].as_str()),
            (Some("False"), Some("BackupFailed"))
        );
        let event = api.expect_event("BackupFailed").await;
        assert_eq!(event.body["type"], "Warning");
    });
    let metrics = ctx.metrics.clone();
    job_controller::reconcile(Arc::new(finished_job("Failed")), ctx)
        .await
        .expect("reconciles");
    server.await.expect("script");
    let text = metrics.encode();
    assert!(text.contains(r#"unstoppable_backup_runs_total{namespace="backups",customer="acme",resource="www",result="failure"} 1"#), "{text}");
    assert!(
        !text.contains("unstoppable_backup_last_success_timestamp_seconds{"),
        "{text}"
    );
}

#[tokio::test]
async fn damage_found_by_the_check_is_reported_as_repository_damaged_and_exported() {
    let (ctx, mut api) = setup();
    let summary = RunSummary {
        command: "backup".into(),
        success: false,
        result: Some(RunResult::Failed),
        reason: Some("RepositoryDamaged".into()),
        snapshot_id: Some("feedc0de".into()),
        error: Some("the check found damage: pack 1234abcd: hash mismatch".into()),
        check: Some(unstoppable_contract::CheckOutcome {
            slice: "7/30".into(),
            error: Some("the check found damage: pack 1234abcd: hash mismatch".into()),
        }),
        ..Default::default()
    };
    let pods = pod_list(&summary, 4);
    let server = tokio::spawn(async move {
        api.expect(
            "GET",
            &format!("{RESOURCES}/www"),
            StatusCode::OK,
            serde_json::to_value(BackupResource::test()).expect("json"),
        )
        .await;
        api.expect(
            "GET",
            "/api/v1/namespaces/backups/pods",
            StatusCode::OK,
            pods,
        )
        .await;
        let patch = api
            .expect(
                "PATCH",
                &format!("{RESOURCES}/www/status"),
                StatusCode::OK,
                serde_json::to_value(BackupResource::test()).expect("json"),
            )
            .await;
        let c = condition(&patch.body["status"], "LastBackupSucceeded");
        assert_eq!(
            (c["status"].as_str(), c["reason"].as_str()),
            (Some("False"), Some("RepositoryDamaged"))
        );
        let message = c["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("feedc0de") && message.contains("hash mismatch"),
            "{message}"
        );
        let event = api.expect_event("RepositoryDamaged").await;
        assert_eq!(event.body["type"], "Warning");
    });
    let metrics = ctx.metrics.clone();
    job_controller::reconcile(Arc::new(finished_job("Failed")), ctx)
        .await
        .expect("reconciles");
    server.await.expect("script");
    let text = metrics.encode();
    let needle = r#"unstoppable_backup_repository_damaged{namespace="backups",customer="acme",resource="www"} 1"#;
    assert!(text.contains(needle), "{text}");
}

#[tokio::test]
async fn an_incomplete_job_is_reported_with_its_paths_and_counted_as_incomplete() {
    let (ctx, mut api) = setup();
    let summary = RunSummary {
        command: "backup".into(),
        success: false,
        result: Some(RunResult::Incomplete),
        reason: Some("PathsUnreadable".into()),
        snapshot_id: Some("feedc0de".into()),
        failed_paths: 4102,
        failures: vec![FailedPath {
            path: "/www/a\\b.html".into(),
            reason: "RETR refused: 553 Prohibited file name".into(),
        }],
        error: Some("4102 paths could not be read".into()),
        ..Default::default()
    };
    let pods = pod_list(&summary, 3);
    let server = tokio::spawn(async move {
        api.expect(
            "GET",
            &format!("{RESOURCES}/www"),
            StatusCode::OK,
            serde_json::to_value(BackupResource::test()).expect("json"),
        )
        .await;
        api.expect(
            "GET",
            "/api/v1/namespaces/backups/pods",
            StatusCode::OK,
            pods,
        )
        .await;
        let patch = api
            .expect(
                "PATCH",
                &format!("{RESOURCES}/www/status"),
                StatusCode::OK,
                serde_json::to_value(BackupResource::test()).expect("json"),
            )
            .await;
        let s = &patch.body["status"];
        assert!(s.get("lastSuccessfulTime").is_none_or(Value::is_null));
        let c = condition(s, "LastBackupSucceeded");
        assert_eq!(
            (c["status"].as_str(), c["reason"].as_str()),
            (Some("False"), Some("BackupIncomplete"))
        );
        let message = c["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("feedc0de")
                && message.contains("4102 paths")
                && message.contains("/www/a\\b.html"),
            "{message}"
        );
        let event = api.expect_event("BackupIncomplete").await;
        assert_eq!(event.body["type"], "Warning");
        let note = event.body["note"].as_str().unwrap_or_default();
        assert!(
            note.contains("4102 paths") && note.contains("553"),
            "{note}"
        );
    });
    let metrics = ctx.metrics.clone();
    job_controller::reconcile(Arc::new(finished_job("Failed")), ctx)
        .await
        .expect("reconciles");
    server.await.expect("script");
    let text = metrics.encode();
    let labels = r#"namespace="backups",customer="acme",resource="www""#;
    for needle in [
        format!("unstoppable_backup_runs_total{{{labels},result=\"incomplete\"}} 1"),
        format!("unstoppable_backup_last_failed_paths{{{labels}}} 4102"),
        format!("unstoppable_backup_last_run_success{{{labels}}} 0"),
    ] {
        assert!(text.contains(&needle), "missing {needle}\n{text}");
    }
    assert!(
        !text.contains("unstoppable_backup_last_success_timestamp_seconds{"),
        "{text}"
    );
}

// --- BackupRestore: from creation to a finished restore ---

const RESTORES: &str = "/apis/unstoppable.dev/v1alpha1/namespaces/backups/backuprestores";
const JOBS: &str = "/apis/batch/v1/namespaces/backups/jobs";

fn restore_job(condition: Option<&str>) -> Value {
    let mut job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "restore-put-back",
            "namespace": "backups",
            "annotations": {"unstoppable.dev/restore-name": "put-back", "unstoppable.dev/customer-name": "acme"},
        },
        "status": {"startTime": "2026-01-10T10:00:00Z"},
    });
    if let Some(condition) = condition {
        job["status"]["completionTime"] = json!("2026-01-10T10:02:00Z");
        job["status"]["conditions"] = json!([{"type": condition, "status": "True", "lastTransitionTime": "2026-01-10T10:02:00Z"}]);
    }
    job
}

fn running_restore() -> BackupRestore {
    let mut r = BackupRestore::test();
    r.status = Some(BackupRestoreStatus {
        phase: RestorePhase::Running,
        job_name: Some("restore-put-back".into()),
        ..Default::default()
    });
    r
}

#[tokio::test]
async fn a_new_restore_creates_its_job_once_no_backup_runs() {
    let (ctx, mut api) = setup();
    let server = tokio::spawn(async move {
        api.expect(
            "GET",
            &format!("{JOBS}/restore-put-back"),
            StatusCode::NOT_FOUND,
            not_found(),
        )
        .await;
        api.expect(
            "GET",
            &format!("{RESOURCES}/www"),
            StatusCode::OK,
            serde_json::to_value(BackupResource::test()).expect("json"),
        )
        .await;
        api.expect(
            "GET",
            &format!("{CUSTOMERS}/acme"),
            StatusCode::OK,
            serde_json::to_value(ready_customer()).expect("json"),
        )
        .await;
        // A backup of the resource is running: the restore waits for it.
        api.expect(
            "GET",
            "/apis/batch/v1/namespaces/backups/cronjobs/backup-www",
            StatusCode::OK,
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "backup-www"},
                   "spec": {"schedule": "0 3 * * *", "jobTemplate": {}},
                   "status": {"active": [{"name": "backup-www-1", "namespace": "backups"}]}}),
        )
        .await;
        let patch = api
            .expect(
                "PATCH",
                &format!("{RESTORES}/put-back/status"),
                StatusCode::OK,
                serde_json::to_value(BackupRestore::test()).expect("json"),
            )
            .await;
        assert_eq!(patch.body["status"]["phase"], "Pending");
        assert_eq!(
            condition(&patch.body["status"], "Complete")["reason"],
            "WaitingForBackup"
        );
        api.expect_event("WaitingForBackup").await;
    });
    let action = restore_controller::reconcile(Arc::new(BackupRestore::test()), ctx.clone())
        .await
        .expect("reconciles");
    server.await.expect("script");
    assert_eq!(action, Action::requeue(std::time::Duration::from_secs(30)));

    // The backup has ended: the Job is created, the restore runs.
    let (ctx, mut api) = setup();
    let server = tokio::spawn(async move {
        api.expect(
            "GET",
            &format!("{JOBS}/restore-put-back"),
            StatusCode::NOT_FOUND,
            not_found(),
        )
        .await;
        api.expect(
            "GET",
            &format!("{RESOURCES}/www"),
            StatusCode::OK,
            serde_json::to_value(BackupResource::test()).expect("json"),
        )
        .await;
        api.expect(
            "GET",
            &format!("{CUSTOMERS}/acme"),
            StatusCode::OK,
            serde_json::to_value(ready_customer()).expect("json"),
        )
        .await;
        api.expect(
            "GET",
            "/apis/batch/v1/namespaces/backups/cronjobs/backup-www",
            StatusCode::NOT_FOUND,
            not_found(),
        )
        .await;
        let created = api
            .expect("POST", JOBS, StatusCode::CREATED, restore_job(None))
            .await;
        let job: Job = serde_json::from_value(created.body.clone()).expect("a Job");
        let args = job
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(|p| p.containers[0].args.clone().unwrap_or_default())
            .expect("pod");
        assert_eq!(args, vec!["restore", "--to-ftps", "--overwrite", "changed"]);
        assert_eq!(
            job.metadata.owner_references.as_ref().expect("owner")[0].kind,
            "BackupRestore"
        );
        let patch = api
            .expect(
                "PATCH",
                &format!("{RESTORES}/put-back/status"),
                StatusCode::OK,
                serde_json::to_value(BackupRestore::test()).expect("json"),
            )
            .await;
        let s = &patch.body["status"];
        assert_eq!(
            (s["phase"].as_str(), s["jobName"].as_str()),
            (Some("Running"), Some("restore-put-back"))
        );
        api.expect_event("RestoreStarted").await;
    });
    restore_controller::reconcile(Arc::new(BackupRestore::test()), ctx)
        .await
        .expect("reconciles");
    server.await.expect("script");
}

#[tokio::test]
async fn a_finished_restore_records_what_it_did_and_a_failed_one_alerts() {
    let summary = RunSummary {
        command: "restore".into(),
        success: true,
        result: Some(RunResult::Success),
        snapshot_id: Some("0123abcd".into()),
        restore: Some(unstoppable_contract::RestoreOutcome {
            target: "ftps".into(),
            location: "ftps://ftp.acme.example:21/htdocs".into(),
            snapshot_time: Some("2026-01-10T03:00:00Z".into()),
            files_restored: 2,
            bytes_restored: 300,
            files_unchanged: 40,
            files_deleted: 1,
            paths: vec![
                "index.html".into(),
                "about.html".into(),
                "-shell.php".into(),
            ],
            ..Default::default()
        }),
        ..Default::default()
    };
    let (ctx, mut api) = setup();
    let pods = pod_list(&summary, 0);
    let server = tokio::spawn(async move {
        api.expect(
            "GET",
            &format!("{JOBS}/restore-put-back"),
            StatusCode::OK,
            restore_job(Some("Complete")),
        )
        .await;
        api.expect(
            "GET",
            "/api/v1/namespaces/backups/pods",
            StatusCode::OK,
            pods,
        )
        .await;
        let patch = api
            .expect(
                "PATCH",
                &format!("{RESTORES}/put-back/status"),
                StatusCode::OK,
                serde_json::to_value(BackupRestore::test()).expect("json"),
            )
            .await;
        let s = &patch.body["status"];
        assert_eq!(s["phase"], "Succeeded");
        assert_eq!(s["snapshotId"], "0123abcd");
        assert_eq!(s["snapshotTime"], "2026-01-10T03:00:00Z");
        assert_eq!(
            (s["filesRestored"].as_u64(), s["filesDeleted"].as_u64()),
            (Some(2), Some(1))
        );
        assert_eq!(s["completionTime"], "2026-01-10T10:02:00Z");
        assert_eq!(s["paths"][2], "-shell.php");
        assert_eq!(condition(s, "Complete")["status"], "True");
        api.expect_event("RestoreSucceeded").await;
    });
    let metrics = ctx.metrics.clone();
    restore_controller::reconcile(Arc::new(running_restore()), ctx)
        .await
        .expect("reconciles");
    server.await.expect("script");
    let labels = r#"namespace="backups",customer="acme",resource="www""#;
    let text = metrics.encode();
    assert!(
        text.contains(&format!("unstoppable_restore_last_failed{{{labels}}} 0")),
        "{text}"
    );

    // A restore that could not reach the server fails, and the alert's gauge says so.
    let failed = RunSummary {
        command: "restore".into(),
        result: Some(RunResult::Failed),
        reason: Some("SourceFailed".into()),
        error: Some("cannot connect to ftp.acme.example:21".into()),
        ..Default::default()
    };
    let (ctx, mut api) = setup();
    let ctx = Arc::new(Context::new(
        ctx.client.clone(),
        Settings::default(),
        metrics.clone(),
    ));
    let pods = pod_list(&failed, 1);
    let server = tokio::spawn(async move {
        api.expect(
            "GET",
            &format!("{JOBS}/restore-put-back"),
            StatusCode::OK,
            restore_job(Some("Failed")),
        )
        .await;
        api.expect(
            "GET",
            "/api/v1/namespaces/backups/pods",
            StatusCode::OK,
            pods,
        )
        .await;
        let patch = api
            .expect(
                "PATCH",
                &format!("{RESTORES}/put-back/status"),
                StatusCode::OK,
                serde_json::to_value(BackupRestore::test()).expect("json"),
            )
            .await;
        let s = &patch.body["status"];
        assert_eq!(s["phase"], "Failed");
        let c = condition(s, "Complete");
        assert_eq!(
            (c["status"].as_str(), c["reason"].as_str()),
            (Some("False"), Some("RestoreFailed"))
        );
        assert!(
            s["message"]
                .as_str()
                .is_some_and(|m| m.contains("cannot connect")),
            "{s}"
        );
        api.expect_event("RestoreFailed").await;
    });
    restore_controller::reconcile(Arc::new(running_restore()), ctx)
        .await
        .expect("reconciles");
    server.await.expect("script");
    let text = metrics.encode();
    assert!(
        text.contains(&format!("unstoppable_restore_last_failed{{{labels}}} 1")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "unstoppable_restore_runs_total{{{labels},result=\"failure\"}} 1"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn a_restore_whose_job_vanished_fails_instead_of_running_again() {
    let (ctx, mut api) = setup();
    let server = tokio::spawn(async move {
        api.expect(
            "GET",
            &format!("{JOBS}/restore-put-back"),
            StatusCode::NOT_FOUND,
            not_found(),
        )
        .await;
        let patch = api
            .expect(
                "PATCH",
                &format!("{RESTORES}/put-back/status"),
                StatusCode::OK,
                serde_json::to_value(BackupRestore::test()).expect("json"),
            )
            .await;
        let s = &patch.body["status"];
        assert_eq!(s["phase"], "Failed");
        assert_eq!(condition(s, "Complete")["reason"], "JobLost");
        api.expect_event("JobLost").await;
        assert_no_more_requests(&mut api).await;
    });
    restore_controller::reconcile(Arc::new(running_restore()), ctx)
        .await
        .expect("reconciles");
    server.await.expect("script");
}
