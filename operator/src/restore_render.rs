//! Pure rendering of a BackupRestore's Job (and the claim it restores into, when it creates
//! one): the backup pod of its resource, hardened the same way, running `restore`.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    EnvVar, PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, PodTemplateSpec, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};
use unstoppable_contract::exit_code;

use crate::crd::{BackupCustomer, BackupResource};
use crate::job_config::{secret_env, value_env};
use crate::keys::{ANNOTATION_CUSTOMER, ANNOTATION_RESTORE, LABEL_RESTORE};
use crate::names;
use crate::render::{ca_volume, labels, pod_spec, PodRun, RenderError, CONTAINER};
use crate::restore_crd::{BackupRestore, FtpsServer, RestoreTarget};
use crate::settings::Settings;

/// Where the target claim is mounted in the restore pod.
pub const TARGET_MOUNT: &str = "/var/lib/unstoppable/restore";
/// A finished restore Job is kept this long for its logs; the status keeps the outcome.
pub const TTL_SECONDS_AFTER_FINISHED: i32 = 7 * 24 * 3600;

#[derive(Debug, Clone)]
pub struct RestoreDesired {
    pub job: Job,
    /// The claim to create first, for a `pvc.template` target.
    pub pvc: Option<PersistentVolumeClaim>,
}

/// `target` in a few words, for the status and the printer column.
pub fn describe_target(target: &RestoreTarget) -> String {
    match (&target.ftps, &target.pvc, &target.s3) {
        (Some(f), _, _) => format!("ftps:{}", f.path.as_deref().unwrap_or("(backed-up path)")),
        (_, Some(p), _) => format!("pvc:{}", p.claim_name.as_deref().unwrap_or("(new claim)")),
        (_, _, Some(s)) => format!(
            "s3:{}/{}",
            s.bucket.as_deref().unwrap_or("(customer bucket)"),
            s.prefix
        ),
        _ => "none".into(),
    }
}

pub fn render_restore(
    customer: &BackupCustomer,
    resource: &BackupResource,
    restore: &BackupRestore,
    settings: &Settings,
) -> Result<RestoreDesired, RenderError> {
    let ns = restore
        .namespace()
        .ok_or_else(|| RenderError::NoNamespace(restore.name_any()))?;
    let name = restore.name_any();
    let owner = restore
        .controller_owner_ref(&())
        .ok_or_else(|| RenderError::Invalid {
            what: "owner reference",
            detail: "the BackupRestore has no uid yet".into(),
        })?;
    let mut labels = labels(&customer.name_any(), &resource.name_any());
    labels.insert("app.kubernetes.io/component".into(), "restore".into());
    labels.insert(LABEL_RESTORE.into(), names::label_value(&name));
    let spec = &restore.spec;
    let Args {
        args,
        env,
        volumes,
        pvc,
    } = job_args(restore, &ns, &labels)?;
    let job = Job {
        metadata: ObjectMeta {
            name: Some(names::restore_job_name(&name)),
            namespace: Some(ns.clone()),
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([
                (ANNOTATION_RESTORE.into(), name.clone()),
                (ANNOTATION_CUSTOMER.into(), customer.name_any()),
            ])),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(settings.backoff_limit),
            active_deadline_seconds: Some(
                spec.deadline_seconds
                    .unwrap_or(settings.default_deadline_seconds),
            ),
            ttl_seconds_after_finished: Some(TTL_SECONDS_AFTER_FINISHED),
            // A bad request fails the same way again; a restore that wrote all it could and
            // reported the rest would only write the same again.
            pod_failure_policy: Some(PodFailurePolicy {
                rules: vec![PodFailurePolicyRule {
                    action: "FailJob".into(),
                    on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                        container_name: Some(CONTAINER.into()),
                        operator: "In".into(),
                        values: vec![exit_code::BAD_CONFIG, exit_code::INCOMPLETE],
                    }),
                    on_pod_conditions: None,
                }],
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(pod_spec(
                    customer,
                    resource,
                    settings,
                    &names::hot_pvc_name(&resource.name_any()),
                    PodRun {
                        args,
                        env,
                        volumes,
                        resources: spec
                            .resources
                            .clone()
                            .or_else(|| resource.spec.resources.as_deref().cloned()),
                    },
                )?),
            },
            ..Default::default()
        }),
        status: None,
    };
    Ok(RestoreDesired { job, pvc })
}

/// The job's arguments and added configuration, volumes to mount, a claim to create.
struct Args {
    args: Vec<String>,
    env: Vec<EnvVar>,
    volumes: Vec<(Volume, VolumeMount)>,
    pvc: Option<PersistentVolumeClaim>,
}

/// The job's command line for this restore, the target volume it needs, the claim to create.
fn job_args(
    restore: &BackupRestore,
    ns: &str,
    labels: &BTreeMap<String, String>,
) -> Result<Args, RenderError> {
    let spec = &restore.spec;
    let mut args = vec!["restore".to_string()];
    let mut push = |flag: &str, value: String| {
        args.push(flag.into());
        args.push(value);
    };
    match (&spec.snapshot.id, &spec.snapshot.as_of) {
        (Some(id), _) => push("--snapshot", id.clone()),
        (None, Some(at)) => push("--snapshot-as-of", at.0.to_string()),
        (None, None) => {}
    }
    if let Some(path) = &spec.path {
        push("--path", path.clone());
    }
    for g in &spec.include {
        push("--include", g.clone());
    }
    for g in &spec.exclude {
        push("--exclude", g.clone());
    }
    if let Some(at) = &spec.repository_as_of {
        push("--as-of", at.0.to_string());
    }
    let mut volumes = Vec::new();
    let mut env = Vec::new();
    let mut pvc = None;
    match (&spec.target.ftps, &spec.target.pvc, &spec.target.s3) {
        (Some(ftps), None, None) => {
            if let Some(server) = &ftps.server {
                other_server(server, &mut env, &mut volumes)?;
            }
            args.push("--to-ftps".into());
            if let Some(path) = &ftps.path {
                args.extend(["--target-path".into(), path.clone()]);
            }
            args.extend(["--overwrite".into(), ftps.overwrite.as_arg().into()]);
            if ftps.delete {
                args.push("--delete".into());
            }
            if ftps.dry_run {
                args.push("--dry-run".into());
            }
        }
        (None, Some(target), None) => {
            let claim = match (&target.claim_name, &target.template) {
                (Some(claim), None) => claim.clone(),
                (None, Some(template)) => {
                    let claim = names::restore_pvc_name(&restore.name_any());
                    // No owner: the restored data outlives the BackupRestore.
                    pvc = Some(PersistentVolumeClaim {
                        metadata: ObjectMeta {
                            name: Some(claim.clone()),
                            namespace: Some(ns.to_string()),
                            labels: Some(labels.clone()),
                            ..Default::default()
                        },
                        spec: Some(template.clone()),
                        status: None,
                    });
                    claim
                }
                _ => {
                    return Err(RenderError::Invalid {
                        what: "target.pvc",
                        detail: "takes exactly one of claimName and template".into(),
                    })
                }
            };
            volumes.push((
                Volume {
                    name: "target".into(),
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: claim,
                        read_only: None,
                    }),
                    ..Default::default()
                },
                VolumeMount {
                    name: "target".into(),
                    mount_path: TARGET_MOUNT.into(),
                    ..Default::default()
                },
            ));
            let dir = match target.sub_path.as_deref().map(|p| p.trim_matches('/')) {
                Some(sub) if !sub.is_empty() => format!("{TARGET_MOUNT}/{sub}"),
                _ => TARGET_MOUNT.to_string(),
            };
            args.extend(["--target".into(), dir]);
        }
        (None, None, Some(s3)) => {
            if let Some(endpoint) = &s3.endpoint {
                let creds = &endpoint.credentials_secret_ref;
                env.extend([
                    value_env("restore.s3.endpoint", endpoint.url.clone())?,
                    value_env("restore.s3.region", endpoint.region.clone())?,
                    value_env("restore.s3.bucket", endpoint.bucket.clone())?,
                    value_env("restore.s3.path_style", endpoint.path_style.to_string())?,
                    secret_env(
                        "restore.s3.access_key_id",
                        &creds.name,
                        &creds.access_key_id_key,
                    )?,
                    secret_env(
                        "restore.s3.secret_access_key",
                        &creds.name,
                        &creds.secret_access_key_key,
                    )?,
                ]);
            }
            args.extend(["--to-s3".into(), s3.prefix.clone()]);
            if let Some(bucket) = &s3.bucket {
                args.extend(["--s3-bucket".into(), bucket.clone()]);
            }
        }
        _ => {
            return Err(RenderError::Invalid {
                what: "target",
                detail: "takes exactly one of ftps, pvc, s3".into(),
            })
        }
    }
    Ok(Args {
        args,
        env,
        volumes,
        pvc,
    })
}

/// Where the CA of another FTPS server is mounted.
pub const RESTORE_CA_MOUNT: &str = "/etc/unstoppable/restore-ftps-ca";

/// The configuration of another FTPS server: its address and TLS as values, its credentials
/// from its Secret, its CA (when given) as a mounted file.
fn other_server(
    server: &FtpsServer,
    env: &mut Vec<EnvVar>,
    volumes: &mut Vec<(Volume, VolumeMount)>,
) -> Result<(), RenderError> {
    let creds = &server.credentials_secret_ref;
    env.extend([
        value_env("restore.ftps.host", server.host.clone())?,
        value_env("restore.ftps.port", server.port.to_string())?,
        secret_env("restore.ftps.username", &creds.name, &creds.username_key)?,
        secret_env("restore.ftps.password", &creds.name, &creds.password_key)?,
    ]);
    if let Some(name) = &server.tls.server_name {
        env.push(value_env("restore.ftps.server_name", name.clone())?);
    }
    if server.tls.insecure_skip_verify {
        env.push(value_env("restore.ftps.insecure_skip_verify", "true")?);
    }
    if let Some(ca) = &server.tls.ca_secret_ref {
        env.push(value_env(
            "restore.ftps.ca_file",
            format!("{RESTORE_CA_MOUNT}/ca.pem"),
        )?);
        volumes.push(ca_volume("restore-ftps-ca", ca, RESTORE_CA_MOUNT));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restore_crd::{FtpsTarget, Overwrite, PvcTarget, S3Target};
    use k8s_openapi::api::core::v1::{Container, PersistentVolumeClaimSpec, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn rendered(r: &BackupRestore) -> RestoreDesired {
        render_restore(
            &BackupCustomer::test(),
            &BackupResource::test(),
            r,
            &Settings::default(),
        )
        .expect("renders")
    }
    fn pod(d: &RestoreDesired) -> &PodSpec {
        d.job
            .spec
            .as_ref()
            .and_then(|j| j.template.spec.as_ref())
            .expect("pod")
    }
    fn container(d: &RestoreDesired) -> &Container {
        &pod(d).containers[0]
    }
    fn args(d: &RestoreDesired) -> Vec<String> {
        container(d).args.clone().unwrap_or_default()
    }

    #[test]
    fn the_job_is_the_backup_pod_running_restore_owned_by_the_restore() {
        let d = rendered(&BackupRestore::test());
        assert_eq!(d.job.metadata.name.as_deref(), Some("restore-put-back"));
        let owner = &d.job.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("BackupRestore", Some(true))
        );
        let annotations = d.job.metadata.annotations.as_ref().expect("annotations");
        assert_eq!(
            annotations.get(ANNOTATION_RESTORE).map(String::as_str),
            Some("put-back")
        );
        assert!(
            !annotations.contains_key(crate::keys::ANNOTATION_RESOURCE),
            "a restore's outcome must never be read as a backup's"
        );
        let spec = d.job.spec.as_ref().expect("spec");
        assert_eq!(
            spec.ttl_seconds_after_finished,
            Some(TTL_SECONDS_AFTER_FINISHED)
        );
        assert_eq!(spec.active_deadline_seconds, Some(6 * 3600));
        // The same hot volume as the backups (the job's lock keeps them apart), hardened alike.
        let pod = pod(&d);
        let claims: Vec<&str> = pod
            .volumes
            .iter()
            .flatten()
            .filter_map(|v| Some(v.persistent_volume_claim.as_ref()?.claim_name.as_str()))
            .collect();
        assert_eq!(claims, vec!["hot-www"]);
        assert_eq!(pod.automount_service_account_token, Some(false));
        let sc = container(&d)
            .security_context
            .as_ref()
            .expect("security context");
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(
            args(&d),
            vec!["restore", "--to-ftps", "--overwrite", "changed"]
        );
        assert!(d.pvc.is_none());
    }

    #[test]
    fn snapshot_paths_and_the_ftps_options_become_arguments() {
        let mut r = BackupRestore::test();
        r.spec.snapshot.as_of = Some(Time("2026-12-01T03:00:00Z".parse().expect("time")));
        r.spec.path = Some("site".into());
        r.spec.include = vec!["*.html".into()];
        r.spec.repository_as_of = Some(Time("2026-12-02T00:00:00Z".parse().expect("time")));
        r.spec.target.ftps = Some(FtpsTarget {
            path: Some("/htdocs/site".into()),
            overwrite: Overwrite::Never,
            delete: true,
            dry_run: true,
            server: None,
        });
        assert_eq!(
            args(&rendered(&r)),
            vec![
                "restore",
                "--snapshot-as-of",
                "2026-12-01T03:00:00Z",
                "--path",
                "site",
                "--include",
                "*.html",
                "--as-of",
                "2026-12-02T00:00:00Z",
                "--to-ftps",
                "--target-path",
                "/htdocs/site",
                "--overwrite",
                "never",
                "--delete",
                "--dry-run"
            ]
        );
    }

    #[test]
    fn a_pvc_target_is_mounted_and_a_template_becomes_a_claim_that_outlives_the_restore() {
        let mut r = BackupRestore::test();
        r.spec.target = RestoreTarget {
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
        let d = rendered(&r);
        let pvc = d.pvc.as_ref().expect("claim to create");
        assert_eq!(pvc.metadata.name.as_deref(), Some("restored-put-back"));
        assert!(pvc.metadata.owner_references.is_none());
        assert_eq!(
            args(&d),
            vec!["restore", "--target", &format!("{TARGET_MOUNT}/www")]
        );
        let mounts = container(&d).volume_mounts.clone().unwrap_or_default();
        assert!(mounts.iter().any(|m| m.mount_path == TARGET_MOUNT));
        assert_eq!(describe_target(&r.spec.target), "pvc:(new claim)");
    }

    #[test]
    fn an_s3_target_names_its_prefix_and_bucket() {
        let mut r = BackupRestore::test();
        r.spec.snapshot.id = Some("1a2b3c4d".into());
        r.spec.target = RestoreTarget {
            ftps: None,
            pvc: None,
            s3: Some(S3Target {
                prefix: "restores/www/".into(),
                bucket: Some("elsewhere".into()),
                endpoint: None,
            }),
        };
        assert_eq!(
            args(&rendered(&r)),
            vec![
                "restore",
                "--snapshot",
                "1a2b3c4d",
                "--to-s3",
                "restores/www/",
                "--s3-bucket",
                "elsewhere"
            ]
        );
    }
}

#[cfg(test)]
mod other_targets {
    use super::*;
    use crate::crd::{FtpsTls, SecretKeyRef};
    use crate::restore_crd::{
        FtpsCredentialsRef, FtpsTarget, S3CredentialsRef, S3Endpoint, S3Target,
    };

    fn env_of(d: &RestoreDesired) -> Vec<EnvVar> {
        d.job
            .spec
            .as_ref()
            .and_then(|j| j.template.spec.as_ref())
            .map(|p| p.containers[0].env.clone().unwrap_or_default())
            .expect("env")
    }
    fn value(env: &[EnvVar], name: &str) -> Option<String> {
        env.iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    }
    fn secret(env: &[EnvVar], name: &str) -> Option<(String, String)> {
        let e = env.iter().find(|e| e.name == name)?;
        let r = e.value_from.as_ref()?.secret_key_ref.as_ref()?;
        Some((r.name.clone(), r.key.clone()))
    }
    fn rendered(r: &BackupRestore) -> RestoreDesired {
        render_restore(
            &BackupCustomer::test(),
            &BackupResource::test(),
            r,
            &Settings::default(),
        )
        .expect("renders")
    }

    #[test]
    fn another_ftps_server_comes_with_its_secret_and_ca_never_a_plain_password() {
        let mut r = BackupRestore::test();
        r.spec.target.ftps = Some(FtpsTarget {
            server: Some(FtpsServer {
                host: "staging.acme.example".into(),
                port: 2121,
                tls: FtpsTls {
                    ca_secret_ref: Some(SecretKeyRef {
                        name: "staging-ca".into(),
                        key: "ca.crt".into(),
                    }),
                    server_name: None,
                    insecure_skip_verify: false,
                },
                credentials_secret_ref: FtpsCredentialsRef {
                    name: "staging-ftp".into(),
                    username_key: "username".into(),
                    password_key: "password".into(),
                },
            }),
            ..Default::default()
        });
        let d = rendered(&r);
        let env = env_of(&d);
        assert_eq!(
            value(&env, "UNSTOPPABLE_RESTORE_FTPS_HOST").as_deref(),
            Some("staging.acme.example")
        );
        assert_eq!(
            value(&env, "UNSTOPPABLE_RESTORE_FTPS_PORT").as_deref(),
            Some("2121")
        );
        assert_eq!(
            secret(&env, "UNSTOPPABLE_RESTORE_FTPS_PASSWORD"),
            Some(("staging-ftp".into(), "password".into()))
        );
        assert_eq!(
            value(&env, "UNSTOPPABLE_RESTORE_FTPS_CA_FILE").as_deref(),
            Some("/etc/unstoppable/restore-ftps-ca/ca.pem")
        );
        // The resource's own server stays configured (the restore reads nothing from it).
        assert_eq!(
            value(&env, "UNSTOPPABLE_FTPS_HOST").as_deref(),
            Some("ftp.acme.example")
        );
        assert!(env
            .iter()
            .all(|e| !e.name.ends_with("PASSWORD") || e.value.is_none()));
    }

    #[test]
    fn another_s3_endpoint_comes_with_its_secret() {
        let mut r = BackupRestore::test();
        r.spec.target = RestoreTarget {
            ftps: None,
            pvc: None,
            s3: Some(S3Target {
                prefix: "www/".into(),
                bucket: None,
                endpoint: Some(S3Endpoint {
                    url: "https://s3.other.example".into(),
                    region: "eu-west-1".into(),
                    bucket: "acme-restores".into(),
                    path_style: false,
                    credentials_secret_ref: S3CredentialsRef {
                        name: "other-s3".into(),
                        access_key_id_key: "accessKeyId".into(),
                        secret_access_key_key: "secretAccessKey".into(),
                    },
                }),
            }),
        };
        let env = env_of(&rendered(&r));
        assert_eq!(
            value(&env, "UNSTOPPABLE_RESTORE_S3_BUCKET").as_deref(),
            Some("acme-restores")
        );
        assert_eq!(
            value(&env, "UNSTOPPABLE_RESTORE_S3_PATH_STYLE").as_deref(),
            Some("false")
        );
        assert_eq!(
            secret(&env, "UNSTOPPABLE_RESTORE_S3_SECRET_ACCESS_KEY"),
            Some(("other-s3".into(), "secretAccessKey".into()))
        );
    }
}
