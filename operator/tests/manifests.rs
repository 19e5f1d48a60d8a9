//! The CRDs and rendered objects against real schemas: the committed CRD files must be what the
//! types generate; rendered objects must pass `kubernetes-validate --strict`; examples must
//! match the CRD schemas (and invalid ones must not).

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use unstoppable_operator::crd::{crd_files, BackupCustomer, BackupResource, FtpsTls, SecretKeyRef};
use unstoppable_operator::render::render;
use unstoppable_operator::restore_crd::{BackupRestore, PvcTarget, RestoreTarget};
use unstoppable_operator::restore_render::render_restore;
use unstoppable_operator::settings::Settings;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn committed_crds_are_what_the_types_generate() {
    for (file, yaml) in crd_files() {
        let path = repo_root().join("crds").join(file);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == yaml,
            "{} is stale: run `cargo run -p unstoppable-operator --bin crdgen`",
            path.display()
        );
    }
}

fn kubernetes_validate(files: &[PathBuf]) {
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "-k", "1.30.0"])
        .args(files)
        .output()
        .expect("kubernetes-validate (run scripts/install-test-deps.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "kubernetes-validate failed:\n{text}");
    assert!(!text.contains("ERROR"), "{text}");
}

#[test]
fn rendered_objects_and_crds_pass_strict_schema_validation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    let mut with_ca = BackupResource::test();
    with_ca.spec.source.ftps.tls = FtpsTls {
        ca_secret_ref: Some(SecretKeyRef {
            name: "ca".into(),
            key: "ca.crt".into(),
        }),
        server_name: None,
        insecure_skip_verify: false,
    };
    with_ca.spec.time_zone = Some("Europe/Berlin".into());
    let mut long = BackupResource::test();
    long.metadata.name = Some("r".repeat(253));
    for (i, res) in [BackupResource::test(), with_ca, long].iter().enumerate() {
        let desired = render(&BackupCustomer::test(), res, &Settings::default()).expect("renders");
        for (kind, yaml) in [
            (
                "cronjob",
                serde_saphyr::to_string(&desired.cron_job).expect("yaml"),
            ),
            (
                "pvc",
                serde_saphyr::to_string(&desired.hot_pvc).expect("yaml"),
            ),
        ] {
            // kubernetes-validate needs apiVersion and kind in the document.
            assert!(
                yaml.contains("apiVersion:") && yaml.contains("kind:"),
                "{yaml}"
            );
            let path = dir.path().join(format!("{kind}-{i}.yaml"));
            std::fs::write(&path, yaml).expect("write");
            files.push(path);
        }
    }
    // The Job of a BackupRestore, one per kind of target (the new claim of a template too).
    let mut targets = Vec::new();
    let mut to_ftps = BackupRestore::test();
    to_ftps.spec.repository_as_of = Some(Time("2026-12-01T00:00:00Z".parse().expect("time")));
    targets.push(to_ftps);
    let mut to_pvc = BackupRestore::test();
    to_pvc.spec.target = RestoreTarget {
        ftps: None,
        pvc: Some(PvcTarget {
            claim_name: None,
            template: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                ..Default::default()
            }),
            sub_path: Some("www".into()),
        }),
        s3: None,
    };
    targets.push(to_pvc);
    for (i, restore) in targets.iter().enumerate() {
        let desired = render_restore(
            &BackupCustomer::test(),
            &BackupResource::test(),
            restore,
            &Settings::default(),
        )
        .expect("renders");
        let mut docs = vec![serde_saphyr::to_string(&desired.job).expect("yaml")];
        docs.extend(
            desired
                .pvc
                .iter()
                .map(|p| serde_saphyr::to_string(p).expect("yaml")),
        );
        for (j, yaml) in docs.into_iter().enumerate() {
            let path = dir.path().join(format!("restore-{i}-{j}.yaml"));
            std::fs::write(&path, yaml).expect("write");
            files.push(path);
        }
    }
    for (file, _) in crd_files() {
        files.push(repo_root().join("crds").join(file));
    }
    kubernetes_validate(&files);
}

#[test]
fn examples_validate_against_the_crd_schemas_and_invalid_ones_do_not() {
    let root = repo_root();
    let out = Command::new("python3")
        .arg(root.join("operator/tests/validate_examples.py"))
        .arg(root.join("crds"))
        .arg(root.join("crds/examples"))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
