//! Against a real Kubernetes API server: the control plane of `testenv/` (kube-apiserver,
//! kube-controller-manager and etcd of Kubernetes v1.37 in one process on 127.0.0.1), started by
//! `scripts/test.sh`, which exports its admin kubeconfig as `UNSTOPPABLE_TEST_KUBECONFIG`.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::json;
use unstoppable_operator::leadership::{self, LeaseSettings};

async fn client() -> Client {
    unstoppable_operator::install_crypto_provider();
    let path = std::env::var("UNSTOPPABLE_TEST_KUBECONFIG").unwrap_or_else(|_| {
        panic!("UNSTOPPABLE_TEST_KUBECONFIG is not set: run the tests with scripts/test.sh, which starts testenv")
    });
    let kubeconfig = Kubeconfig::read_from(&path).expect("kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    Client::try_from(config).expect("client")
}

fn settings(lease: &str, identity: &str) -> LeaseSettings {
    LeaseSettings {
        name: lease.into(),
        namespace: "default".into(),
        identity: identity.into(),
    }
}

async fn holder(client: &Client, lease: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    leases
        .get(lease)
        .await
        .ok()
        .and_then(|l| l.spec?.holder_identity)
}

#[tokio::test]
async fn two_replicas_hand_over_the_lease_and_a_leader_notices_when_it_loses_it() {
    let client = client().await;
    let lease = format!("handover-{}", std::process::id());

    // Replica A leads.
    let leading_a = tokio::time::timeout(
        Duration::from_secs(60),
        leadership::lead(client.clone(), &settings(&lease, "replica-a")),
    )
    .await
    .expect("A leads within a minute")
    .expect("lease manager");
    assert_eq!(holder(&client, &lease).await.as_deref(), Some("replica-a"));

    // Replica B stands by while A leads.
    let b_client = client.clone();
    let b_lease = lease.clone();
    let b =
        tokio::spawn(
            async move { leadership::lead(b_client, &settings(&b_lease, "replica-b")).await },
        );
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(!b.is_finished(), "B must not lead while A holds the lease");

    // A goes away (a replica shutting down releases its lease): B takes over.
    drop(leading_a);
    let leading_b = tokio::time::timeout(Duration::from_secs(60), b)
        .await
        .expect("B takes over within a minute")
        .expect("task")
        .expect("lease manager");
    assert_eq!(holder(&client, &lease).await.as_deref(), Some("replica-b"));

    // Someone else takes the lease over (e.g. B was cut off from the API for longer than the
    // lease): B notices, and the operator would exit instead of writing beside the new leader.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    leases
        .patch(
            &lease,
            &PatchParams::apply("intruder").force(),
            &Patch::Apply(json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "spec": {"holderIdentity": "intruder", "leaseDurationSeconds": 600,
                         "renewTime": MicroTime(k8s_openapi::jiff::Timestamp::now())},
            })),
        )
        .await
        .expect("take the lease over");
    tokio::time::timeout(Duration::from_secs(60), leadership::lost(leading_b))
        .await
        .expect("B notices within a minute that it no longer leads");
}

/// Installs our CRDs (server-side apply) and waits until the API server serves them.
async fn install_crds(client: &Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (file, yaml) in unstoppable_operator::crd::crd_files() {
        let crd: CustomResourceDefinition = serde_saphyr::from_str(&yaml).expect(file);
        let name = crd.metadata.name.clone().expect("name");
        crds.patch(
            &name,
            &PatchParams::apply("unstoppable-test").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("the API server refuses {file}: {e}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let established = crds
                .get(&name)
                .await
                .ok()
                .and_then(|c| c.status)
                .is_some_and(|s| {
                    s.conditions
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                });
            if established {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} never became Established"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Creates the object of a YAML manifest in `ns`; the API server's answer.
async fn create(client: &Client, ns: &str, yaml: &str) -> Result<(), kube::Error> {
    use kube::api::{ApiResource, DynamicObject, PostParams};
    let mut obj: DynamicObject = serde_saphyr::from_str(yaml).expect("manifest");
    obj.metadata.namespace = Some(ns.into());
    let types = obj.types.clone().expect("apiVersion and kind");
    let (group, version) = types.api_version.split_once('/').expect("group/version");
    let resource = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: types.api_version.clone(),
        kind: types.kind.clone(),
        plural: format!("{}s", types.kind.to_ascii_lowercase()),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    api.create(&PostParams::default(), &obj).await.map(|_| ())
}

#[tokio::test]
async fn our_crds_install_and_admission_refuses_what_kubernetes_would_refuse() {
    use k8s_openapi::api::core::v1::Namespace;
    let client = client().await;
    install_crds(&client).await;
    let ns = format!("admission-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &Default::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace"),
        )
        .await
        .expect("namespace");

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/examples");
    for dir in [root.clone(), root.join("invalid")] {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("examples")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no examples in {}", dir.display());
        for file in files {
            let yaml = std::fs::read_to_string(&file).expect("read");
            let result = create(&client, &ns, &yaml).await;
            if dir == root {
                result.unwrap_or_else(|e| panic!("{} refused: {e}", file.display()));
            } else {
                let err = result.expect_err(&format!("{} accepted", file.display()));
                assert!(
                    matches!(&err, kube::Error::Api(s) if s.code == 422),
                    "{}: {err}",
                    file.display()
                );
            }
        }
    }

    let bad_release =
        std::fs::read_to_string(root.join("invalid/resource-release-hold-not-an-id.yaml"))
            .expect("example");
    let err = create(
        &client,
        &ns,
        &bad_release.replace("bad-release", "bad-release-2"),
    )
    .await
    .expect_err("releaseHold: latest");
    assert!(
        err.to_string().contains("spec.anomaly.releaseHold")
            && err.to_string().contains("[0-9a-f]{8,64}"),
        "{err}"
    );

    // Schedules: Kubernetes' own dialect decides, at admission.
    let resource = |name: &str, schedule: &str| {
        format!(
            "apiVersion: unstoppable.dev/v1alpha1\nkind: BackupResource\nmetadata:\n  name: {name}\nspec:\n  customerRef:\n    name: acme\n  schedule: \"{schedule}\"\n  source:\n    ftps:\n      host: ftp.example.org\n"
        )
    };
    for (i, ok) in [
        "@every 1h30m",
        "@midnight",
        "0 3 * * MON-FRI",
        "*/15 * * * *",
    ]
    .iter()
    .enumerate()
    {
        create(&client, &ns, &resource(&format!("ok-{i}"), ok))
            .await
            .unwrap_or_else(|e| panic!("`{ok}` refused: {e}"));
    }
    for (i, bad) in [
        "0 3 * * 7",
        "0 3 L * *",
        "0 3 * * 5#2",
        "0 3 15W * *",
        "0 0 3 * * *",
    ]
    .iter()
    .enumerate()
    {
        let err = create(&client, &ns, &resource(&format!("bad-{i}"), bad))
            .await
            .expect_err(bad);
        assert!(
            err.to_string().contains("schedule must be"),
            "`{bad}`: {err}"
        );
    }
    // Object Lock must outlast the prune interval with its margin (CEL across two fields).
    let customer = |name: &str, days: u32, prune: Option<u32>| {
        let maintenance = prune
            .map(|p| format!("  maintenance:\n    pruneIntervalDays: {p}\n"))
            .unwrap_or_default();
        format!(
            "apiVersion: unstoppable.dev/v1alpha1\nkind: BackupCustomer\nmetadata:\n  name: {name}\nspec:\n  coldStorage:\n    endpoint: https://s3.example.org\n    objectLock:\n      mode: Compliance\n      days: {days}\n  secrets:\n    secretRef:\n      name: x\n{maintenance}"
        )
    };
    let err = create(&client, &ns, &customer("lock-10", 10, None))
        .await
        .expect_err("10 lock days with the default weekly prune");
    assert!(
        err.to_string().contains("objectLock.days must exceed"),
        "{err}"
    );
    create(&client, &ns, &customer("lock-10-daily", 10, Some(1)))
        .await
        .unwrap_or_else(|e| panic!("10 lock days with a daily prune refused: {e}"));
    create(&client, &ns, &customer("lock-15", 15, None))
        .await
        .unwrap_or_else(|e| panic!("15 lock days with the default prune refused: {e}"));

    // keepWithin is a duration, checked at admission (the job would refuse it at every run).
    let keep_within = |name: &str, within: &str| {
        format!(
            "apiVersion: unstoppable.dev/v1alpha1\nkind: BackupCustomer\nmetadata:\n  name: {name}\nspec:\n  coldStorage:\n    endpoint: https://s3.example.org\n  secrets:\n    secretRef:\n      name: x\n  retention:\n    keepWithin: \"{within}\"\n"
        )
    };
    for (i, ok) in ["30d", "1y 2mo", "2w", "P30D"].iter().enumerate() {
        create(&client, &ns, &keep_within(&format!("within-ok-{i}"), ok))
            .await
            .unwrap_or_else(|e| panic!("keepWithin `{ok}` refused: {e}"));
    }
    let err = create(&client, &ns, &keep_within("within-bad", "a fortnight"))
        .await
        .expect_err("keepWithin `a fortnight`");
    assert!(err.to_string().contains("keepWithin must be"), "{err}");

    // BackupRestore: one target, delete only with a path, an id or a time, and it runs once.
    let restore = |name: &str, spec: &str| {
        format!(
            "apiVersion: unstoppable.dev/v1alpha1\nkind: BackupRestore\nmetadata:\n  name: {name}\nspec:\n  resourceRef:\n    name: www\n{spec}"
        )
    };
    for (name, spec, message) in [
        (
            "two-targets",
            "  target:\n    ftps: {}\n    s3:\n      prefix: restores/\n",
            "exactly one of ftps, pvc, s3",
        ),
        ("no-target", "  target: {}\n", "exactly one of ftps, pvc, s3"),
        (
            "delete-anywhere",
            "  target:\n    ftps:\n      delete: true\n",
            "delete needs an explicit path",
        ),
        (
            "id-and-time",
            "  snapshot:\n    id: 1a2b3c4d\n    asOf: \"2026-12-01T00:00:00Z\"\n  target:\n    ftps: {}\n",
            "an id or asOf, not both",
        ),
        (
            "bucket-and-endpoint",
            "  target:\n    s3:\n      prefix: x/\n      bucket: b\n      endpoint:\n        url: https://s3.example.org\n        bucket: other\n        credentialsSecretRef:\n          name: s\n",
            "bucket or endpoint, not both",
        ),
        (
            "claim-and-template",
            "  target:\n    pvc:\n      claimName: x\n      template: {}\n",
            "exactly one of claimName and template",
        ),
    ] {
        let err = create(&client, &ns, &restore(name, spec))
            .await
            .expect_err(name);
        assert!(err.to_string().contains(message), "{name}: {err}");
    }
    create(
        &client,
        &ns,
        &restore("once", "  target:\n    ftps:\n      dryRun: true\n"),
    )
    .await
    .unwrap_or_else(|e| panic!("a dry run refused: {e}"));
    {
        use kube::api::{ApiResource, DynamicObject};
        let ar = ApiResource {
            group: "unstoppable.dev".into(),
            version: "v1alpha1".into(),
            api_version: "unstoppable.dev/v1alpha1".into(),
            kind: "BackupRestore".into(),
            plural: "backuprestores".into(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
        let err = api
            .patch(
                "once",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"target": {"ftps": {"dryRun": false}}}})),
            )
            .await
            .expect_err("a changed restore");
        assert!(err.to_string().contains("runs once"), "{err}");
    }

    // Gone before the next test starts an operator that watches every namespace.
    let _ = namespaces.delete(&ns, &Default::default()).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while namespaces.get_opt(&ns).await.ok().flatten().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "namespace {ns} was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
