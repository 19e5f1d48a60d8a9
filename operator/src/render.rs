//! Pure rendering of the Kubernetes objects of one resource: `(customer, resource, settings) ->
//! desired CronJob and hot PVC`, as typed k8s-openapi objects (a misspelt field does not
//! compile). What the job is told is `job_config`'s business. No API calls here.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{
    CronJob, CronJobSpec, JobSpec, JobTemplateSpec, PodFailurePolicy,
    PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, KeyToPath, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec,
    PodTemplateSpec, ResourceRequirements, SeccompProfile, SecretVolumeSource, SecurityContext,
    Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};
use unstoppable_contract::exit_code;

use crate::crd::{BackupCustomer, BackupResource, HotStorage};
use crate::job_config::{job_env, CA_MOUNT, HOT_MOUNT};
use crate::keys::*;
use crate::names;
use crate::settings::Settings;

/// The job pod's container; the pod failure policy names it.
pub const CONTAINER: &str = "backup";
/// The user and group the job runs as (distroless `nonroot`).
const NONROOT: i64 = 65532;

/// Requests and limits of a backup pod whose resource sets none: a BestEffort pod is the first
/// to be evicted and cannot start in a namespace with a ResourceQuota. A full backup measured
/// ~150-220 MiB peak (see the README's benchmark); the limit leaves room for large files.
pub fn default_job_resources() -> ResourceRequirements {
    let quantities = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect::<BTreeMap<_, _>>()
    };
    ResourceRequirements {
        requests: Some(quantities(&[("cpu", "250m"), ("memory", "256Mi")])),
        limits: Some(quantities(&[("memory", "1Gi")])),
        ..Default::default()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RenderError {
    #[error("{0} has no namespace")]
    NoNamespace(String),
    #[error("the customer has no secret source; set secrets.secretRef or secrets.infisical")]
    NoSecretSource,
    #[error("rendering {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
}

/// The objects that should exist for one resource.
#[derive(Debug, Clone)]
pub struct Desired {
    pub cron_job: CronJob,
    pub hot_pvc: PersistentVolumeClaim,
}

/// The standard labels plus customer and resource, on every object we create.
pub fn labels(customer: &str, resource: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "unstoppable".into()),
        ("app.kubernetes.io/component".into(), "backup".into()),
        (
            "app.kubernetes.io/instance".into(),
            names::label_value(resource),
        ),
        ("app.kubernetes.io/part-of".into(), "unstoppable".into()),
        (LABEL_MANAGED_BY.into(), MANAGED_BY.into()),
        (LABEL_CUSTOMER.into(), names::label_value(customer)),
        (LABEL_RESOURCE.into(), names::label_value(resource)),
    ])
}

pub fn render(
    customer: &BackupCustomer,
    resource: &BackupResource,
    settings: &Settings,
) -> Result<Desired, RenderError> {
    let ns = resource
        .namespace()
        .ok_or_else(|| RenderError::NoNamespace(resource.name_any()))?;
    let name = resource.name_any();
    let labels = labels(&customer.name_any(), &name);
    let owner = resource
        .controller_owner_ref(&())
        .ok_or_else(|| RenderError::Invalid {
            what: "owner reference",
            detail: "the BackupResource has no uid yet".into(),
        })?;
    let meta = |name: String| ObjectMeta {
        name: Some(name),
        namespace: Some(ns.clone()),
        labels: Some(labels.clone()),
        owner_references: Some(vec![owner.clone()]),
        ..Default::default()
    };
    let pvc_name = names::hot_pvc_name(&name);
    let hot = merged_hot_storage(
        &customer.spec.hot_storage,
        resource.spec.hot_storage.as_deref(),
    );
    let size = hot
        .size
        .unwrap_or_else(|| settings.default_hot_size.clone());
    let hot_pvc = PersistentVolumeClaim {
        metadata: meta(pvc_name.clone()),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: hot
                .storage_class_name
                .or_else(|| settings.default_storage_class.clone()),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".into(), Quantity(size))])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    };

    let job_template = JobTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels.clone()),
            // Exact names for reading the results back (label values may be shortened).
            annotations: Some(BTreeMap::from([
                (ANNOTATION_RESOURCE.into(), name.clone()),
                (ANNOTATION_CUSTOMER.into(), customer.name_any()),
            ])),
            ..Default::default()
        }),
        spec: Some(JobSpec {
            backoff_limit: Some(settings.backoff_limit),
            active_deadline_seconds: Some(
                resource
                    .spec
                    .deadline_seconds
                    .unwrap_or(settings.default_deadline_seconds),
            ),
            // A bad configuration fails the same way again; an incomplete run already wrote
            // its snapshot, and a retry would only write another one lacking the same paths;
            // damage found by the check after a written backup does not go away by retrying.
            pod_failure_policy: Some(PodFailurePolicy {
                rules: vec![PodFailurePolicyRule {
                    action: "FailJob".into(),
                    on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                        container_name: Some(CONTAINER.into()),
                        operator: "In".into(),
                        values: vec![
                            exit_code::BAD_CONFIG,
                            exit_code::INCOMPLETE,
                            exit_code::REPOSITORY_DAMAGED,
                        ],
                    }),
                    on_pod_conditions: None,
                }],
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels.clone()),
                    ..Default::default()
                }),
                spec: Some(pod_spec(
                    customer,
                    resource,
                    settings,
                    &pvc_name,
                    PodRun {
                        args: vec!["backup".into()],
                        env: Vec::new(),
                        volumes: Vec::new(),
                        resources: resource.spec.resources.as_deref().cloned(),
                    },
                )?),
            },
            ..Default::default()
        }),
    };
    let cron_job = CronJob {
        metadata: meta(names::cronjob_name(&name)),
        spec: Some(CronJobSpec {
            schedule: resource.spec.schedule.clone(),
            time_zone: resource.spec.time_zone.clone(),
            // Runs of one resource never overlap: a new run is skipped while one is active.
            concurrency_policy: Some("Forbid".into()),
            starting_deadline_seconds: Some(settings.starting_deadline_seconds),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(3),
            suspend: Some(customer.spec.suspend || resource.spec.suspend),
            job_template,
        }),
        status: None,
    };
    Ok(Desired { cron_job, hot_pvc })
}

/// What one kind of run adds to the pod: the job's command line, extra volumes with where they
/// are mounted, and its resources (default: [`default_job_resources`]).
pub struct PodRun {
    pub args: Vec<String>,
    /// Variables added to the job's configuration.
    pub env: Vec<k8s_openapi::api::core::v1::EnvVar>,
    pub volumes: Vec<(Volume, VolumeMount)>,
    pub resources: Option<ResourceRequirements>,
}

/// The hardened pod of one run of the job image (a backup, a restore): non-root, read-only
/// root, no privileges, no API token, the resource's hot volume mounted.
pub fn pod_spec(
    customer: &BackupCustomer,
    resource: &BackupResource,
    settings: &Settings,
    pvc_name: &str,
    run: PodRun,
) -> Result<PodSpec, RenderError> {
    let mut volumes = vec![
        Volume {
            name: "hot".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: pvc_name.into(),
                read_only: None,
            }),
            ..Default::default()
        },
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(Quantity("64Mi".into())),
                medium: None,
            }),
            ..Default::default()
        },
    ];
    let mount = |name: &str, path: &str, read_only: Option<bool>| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only,
        ..Default::default()
    };
    let mut mounts = vec![mount("hot", HOT_MOUNT, None), mount("tmp", "/tmp", None)];
    if let Some(ca) = &resource.spec.source.ftps.tls.ca_secret_ref {
        let (volume, ca_mount) = ca_volume("ftps-ca", ca, CA_MOUNT);
        volumes.push(volume);
        mounts.push(ca_mount);
    }
    for (volume, mount) in run.volumes {
        volumes.push(volume);
        mounts.push(mount);
    }
    let runtime_default = || SeccompProfile {
        type_: "RuntimeDefault".into(),
        localhost_profile: None,
    };
    Ok(PodSpec {
        restart_policy: Some("Never".into()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(NONROOT),
            run_as_group: Some(NONROOT),
            fs_group: Some(NONROOT),
            seccomp_profile: Some(runtime_default()),
            ..Default::default()
        }),
        containers: vec![Container {
            name: CONTAINER.into(),
            image: Some(settings.job_image.clone()),
            image_pull_policy: Some(settings.image_pull_policy.clone()),
            args: Some(run.args),
            env: Some({
                let mut env = job_env(customer, resource)?;
                env.extend(run.env);
                env
            }),
            resources: Some(run.resources.unwrap_or_else(default_job_resources)),
            volume_mounts: Some(mounts),
            termination_message_path: Some("/dev/termination-log".into()),
            termination_message_policy: Some("FallbackToLogsOnError".into()),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                run_as_non_root: Some(true),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    add: None,
                }),
                seccomp_profile: Some(runtime_default()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        volumes: Some(volumes),
        ..Default::default()
    })
}

/// A CA certificate from a Secret key, mounted read-only as `<mount>/ca.pem`.
pub fn ca_volume(name: &str, ca: &crate::crd::SecretKeyRef, mount: &str) -> (Volume, VolumeMount) {
    (
        Volume {
            name: name.into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(ca.name.clone()),
                items: Some(vec![KeyToPath {
                    key: ca.key.clone(),
                    path: "ca.pem".into(),
                    mode: None,
                }]),
                ..Default::default()
            }),
            ..Default::default()
        },
        VolumeMount {
            name: name.into(),
            mount_path: mount.into(),
            read_only: Some(true),
            ..Default::default()
        },
    )
}

fn merged_hot_storage(customer: &HotStorage, resource: Option<&HotStorage>) -> HotStorage {
    let resource = resource.cloned().unwrap_or_default();
    HotStorage {
        storage_class_name: resource
            .storage_class_name
            .or_else(|| customer.storage_class_name.clone()),
        size: resource.size.or_else(|| customer.size.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{FtpsTls, SecretKeyRef};
    use k8s_openapi::api::batch::v1::CronJobSpec;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn rendered(c: &BackupCustomer, r: &BackupResource) -> Desired {
        render(c, r, &Settings::default()).expect("renders")
    }

    fn cron_spec(d: &Desired) -> &CronJobSpec {
        d.cron_job.spec.as_ref().expect("spec")
    }

    fn pod(d: &Desired) -> &PodSpec {
        cron_spec(d)
            .job_template
            .spec
            .as_ref()
            .and_then(|j| j.template.spec.as_ref())
            .expect("pod spec")
    }

    fn container(d: &Desired) -> &Container {
        &pod(d).containers[0]
    }

    fn env_value(d: &Desired, name: &str) -> Option<String> {
        container(d)
            .env
            .as_ref()?
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    }

    fn env_secret(d: &Desired, name: &str) -> Option<(String, String)> {
        let e = container(d).env.as_ref()?.iter().find(|e| e.name == name)?;
        let r = e.value_from.as_ref()?.secret_key_ref.as_ref()?;
        Some((r.name.clone(), r.key.clone()))
    }

    #[test]
    fn cron_job_never_overlaps_and_follows_the_schedule() {
        let mut r = BackupResource::test();
        r.spec.time_zone = Some("Europe/Berlin".into());
        r.spec.deadline_seconds = Some(900);
        let d = rendered(&BackupCustomer::test(), &r);
        let spec = cron_spec(&d);
        assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
        assert_eq!(spec.schedule, "0 3 * * *");
        assert_eq!(spec.time_zone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(spec.starting_deadline_seconds, Some(3600));
        assert_eq!(spec.successful_jobs_history_limit, Some(3));
        assert_eq!(spec.failed_jobs_history_limit, Some(3));
        assert_eq!(spec.suspend, Some(false));
        let job = spec.job_template.spec.as_ref().expect("job spec");
        assert_eq!(job.backoff_limit, Some(1));
        assert_eq!(job.active_deadline_seconds, Some(900));
        let rule = &job.pod_failure_policy.as_ref().expect("policy").rules[0];
        assert_eq!(rule.action, "FailJob");
        assert_eq!(
            rule.on_exit_codes.as_ref().expect("codes").values,
            vec![2, 3, 4]
        );
        assert_eq!(d.cron_job.metadata.name.as_deref(), Some("backup-www"));
        assert_eq!(d.cron_job.metadata.namespace.as_deref(), Some("backups"));
    }

    #[test]
    fn suspend_comes_from_either_resource() {
        let mut c = BackupCustomer::test();
        c.spec.suspend = true;
        assert_eq!(
            cron_spec(&rendered(&c, &BackupResource::test())).suspend,
            Some(true)
        );
        let mut r = BackupResource::test();
        r.spec.suspend = true;
        assert_eq!(
            cron_spec(&rendered(&BackupCustomer::test(), &r)).suspend,
            Some(true)
        );
    }

    #[test]
    fn a_pod_without_resources_gets_requests_and_a_memory_limit() {
        let d = rendered(&BackupCustomer::test(), &BackupResource::test());
        let r = container(&d).resources.as_ref().expect("resources");
        let requests = r.requests.as_ref().expect("requests");
        assert_eq!(requests.get("memory").map(|q| q.0.as_str()), Some("256Mi"));
        assert_eq!(requests.get("cpu").map(|q| q.0.as_str()), Some("250m"));
        let limits = r.limits.as_ref().expect("limits");
        assert_eq!(limits.get("memory").map(|q| q.0.as_str()), Some("1Gi"));
    }

    #[test]
    fn pod_is_locked_down() {
        let d = rendered(&BackupCustomer::test(), &BackupResource::test());
        let p = pod(&d);
        assert_eq!(p.restart_policy.as_deref(), Some("Never"));
        assert_eq!(p.automount_service_account_token, Some(false));
        let psc = p.security_context.as_ref().expect("pod security");
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(
            psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
            Some("RuntimeDefault")
        );
        let c = container(&d);
        let sc = c.security_context.as_ref().expect("container security");
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(
            sc.capabilities.as_ref().and_then(|c| c.drop.clone()),
            Some(vec!["ALL".to_string()])
        );
        assert_eq!(
            c.termination_message_policy.as_deref(),
            Some("FallbackToLogsOnError")
        );
        assert_eq!(c.args, Some(vec!["backup".to_string()]));
        assert_eq!(
            c.image.as_deref(),
            Some(Settings::default().job_image.as_str())
        );
    }

    #[test]
    fn job_gets_its_configuration_and_secrets_only_by_reference() {
        let mut r = BackupResource::test();
        r.spec.source.ftps.include = vec!["{a,b}/**".into()];
        r.spec.source.ftps.tls = FtpsTls {
            ca_secret_ref: Some(SecretKeyRef {
                name: "acme-ca".into(),
                key: "ca.crt".into(),
            }),
            server_name: Some("ftp.internal".into()),
            insecure_skip_verify: false,
        };
        let d = rendered(&BackupCustomer::test(), &r);
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_CUSTOMER").as_deref(),
            Some("acme")
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_RESOURCE").as_deref(),
            Some("www")
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_FTPS_HOST").as_deref(),
            Some("ftp.acme.example")
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_FTPS_PORT").as_deref(),
            Some("21")
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_FTPS_PATH").as_deref(),
            Some("/htdocs")
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_FTPS_INCLUDE").as_deref(),
            Some(r#"["{a,b}/**"]"#)
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_FTPS_EXCLUDE").as_deref(),
            Some(r#"["cache/**"]"#)
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_FTPS_SERVER_NAME").as_deref(),
            Some("ftp.internal")
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_FTPS_CA_FILE").as_deref(),
            Some("/etc/unstoppable/ftps-ca/ca.pem")
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_S3_ENDPOINT").as_deref(),
            Some("https://s3.example.org")
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_S3_REGION").as_deref(),
            Some("eu-central-1")
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_S3_BUCKET").as_deref(),
            Some("unstoppable-backups-acme")
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_S3_PATH_STYLE").as_deref(),
            Some("true")
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_REPOSITORY_HOT_DIR").as_deref(),
            Some(HOT_MOUNT)
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_SUMMARY_PATH").as_deref(),
            Some("/dev/termination-log")
        );
        let secret = |k: &str| Some(("acme-credentials".to_string(), k.to_string()));
        assert_eq!(
            env_secret(&d, "UNSTOPPABLE_FTPS_USERNAME"),
            secret("FTP_USERNAME")
        );
        assert_eq!(
            env_secret(&d, "UNSTOPPABLE_FTPS_PASSWORD"),
            secret("FTP_PASSWORD")
        );
        assert_eq!(
            env_secret(&d, "UNSTOPPABLE_REPOSITORY_PASSWORD"),
            secret("REPOSITORY_PASSWORD")
        );
        assert_eq!(
            env_secret(&d, "UNSTOPPABLE_S3_ACCESS_KEY_ID"),
            secret("S3_ACCESS_KEY_ID")
        );
        assert_eq!(
            env_secret(&d, "UNSTOPPABLE_S3_SECRET_ACCESS_KEY"),
            secret("S3_SECRET_ACCESS_KEY")
        );
        // No secret is ever a literal value; no key is set twice.
        let env = container(&d).env.clone().expect("env");
        for e in &env {
            assert!(
                !(e.name.contains("PASSWORD") || e.name.contains("SECRET")) || e.value.is_none(),
                "{}",
                e.name
            );
        }
        let mut names: Vec<_> = env.iter().map(|e| e.name.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), env.len());
        let mounts = container(&d).volume_mounts.clone().expect("mounts");
        assert!(mounts
            .iter()
            .any(|m| m.mount_path == CA_MOUNT && m.read_only == Some(true)));
    }

    #[test]
    fn hot_pvc_takes_class_and_size_from_customer_resource_or_settings() {
        let settings = Settings {
            default_storage_class: Some("openebs-hostpath".into()),
            ..Settings::default()
        };
        let storage = |d: &Desired| {
            let spec = d.hot_pvc.spec.as_ref().expect("spec");
            (
                spec.storage_class_name.clone(),
                spec.resources
                    .as_ref()
                    .and_then(|r| r.requests.as_ref())
                    .and_then(|r| r.get("storage"))
                    .map(|q| q.0.clone()),
            )
        };
        let mut c = BackupCustomer::test();
        let mut r = BackupResource::test();
        let d = render(&c, &r, &settings).expect("renders");
        assert_eq!(
            storage(&d),
            (Some("openebs-hostpath".into()), Some("1Gi".into()))
        );
        c.spec.hot_storage = HotStorage {
            storage_class_name: Some("mayastor".into()),
            size: Some("5Gi".into()),
        };
        let d = render(&c, &r, &settings).expect("renders");
        assert_eq!(storage(&d), (Some("mayastor".into()), Some("5Gi".into())));
        r.spec.hot_storage = Some(Box::new(HotStorage {
            storage_class_name: None,
            size: Some("20Gi".into()),
        }));
        let d = render(&c, &r, &settings).expect("renders");
        assert_eq!(storage(&d), (Some("mayastor".into()), Some("20Gi".into())));
        assert_eq!(d.hot_pvc.metadata.name.as_deref(), Some("hot-www"));
        let vols = pod(&d).volumes.clone().expect("volumes");
        assert!(vols.iter().any(|v| v
            .persistent_volume_claim
            .as_ref()
            .map(|p| p.claim_name.as_str())
            == Some("hot-www")));
    }

    #[test]
    fn children_carry_labels_and_a_controller_owner_reference() {
        let d = rendered(&BackupCustomer::test(), &BackupResource::test());
        for meta in [&d.cron_job.metadata, &d.hot_pvc.metadata] {
            let labels = meta.labels.clone().expect("labels");
            assert_eq!(
                labels.get("app.kubernetes.io/name").map(String::as_str),
                Some("unstoppable")
            );
            assert_eq!(
                labels.get(LABEL_MANAGED_BY).map(String::as_str),
                Some(MANAGED_BY)
            );
            assert_eq!(labels.get(LABEL_CUSTOMER).map(String::as_str), Some("acme"));
            assert_eq!(labels.get(LABEL_RESOURCE).map(String::as_str), Some("www"));
            let owners = meta.owner_references.clone().expect("owners");
            assert_eq!(owners.len(), 1);
            assert_eq!(owners[0].kind, "BackupResource");
            assert_eq!(owners[0].name, "www");
            assert_eq!(owners[0].controller, Some(true));
        }
        let pod_labels = cron_spec(&d)
            .job_template
            .spec
            .as_ref()
            .and_then(|j| j.template.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .expect("pod labels");
        assert_eq!(
            pod_labels.get(LABEL_RESOURCE).map(String::as_str),
            Some("www")
        );
    }

    #[test]
    fn names_and_labels_fit_for_the_longest_cr_names() {
        let mut r = BackupResource::test();
        let long = "r".repeat(253);
        r.metadata.name = Some(long.clone());
        let mut c = BackupCustomer::test();
        c.metadata.name = Some("c".repeat(253));
        let d = rendered(&c, &r);
        assert!(d.cron_job.metadata.name.clone().expect("name").len() <= 52);
        assert!(d.hot_pvc.metadata.name.clone().expect("name").len() <= 63);
        for v in d.cron_job.metadata.labels.clone().expect("labels").values() {
            assert!(v.len() <= 63, "{v}");
        }
        assert_eq!(env_value(&d, "UNSTOPPABLE_RESOURCE"), Some(long));
    }

    #[test]
    fn an_infisical_customer_passes_only_where_to_look_and_the_identity_by_reference() {
        let mut c = BackupCustomer::test();
        c.spec.secrets.secret_ref = None;
        c.spec.secrets.infisical = Some(crate::crd::InfisicalSource {
            site_url: "https://infisical.example".into(),
            project_id: "proj-1".into(),
            environment: "prod".into(),
            path: "/acme".into(),
            identity_secret_ref: crate::crd::SecretRef {
                name: "acme-identity".into(),
            },
        });
        let d = rendered(&c, &BackupResource::test());
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_INFISICAL_SITE_URL").as_deref(),
            Some("https://infisical.example")
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_INFISICAL_PROJECT_ID").as_deref(),
            Some("proj-1")
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_INFISICAL_ENVIRONMENT").as_deref(),
            Some("prod")
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_INFISICAL_SECRET_PATH").as_deref(),
            Some("/acme")
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_INFISICAL_FTPS_PASSWORD_KEY").as_deref(),
            Some("FTP_PASSWORD")
        );
        let identity = |k: &str| Some(("acme-identity".to_string(), k.to_string()));
        assert_eq!(
            env_secret(&d, "UNSTOPPABLE_INFISICAL_CLIENT_ID"),
            identity("clientId")
        );
        assert_eq!(
            env_secret(&d, "UNSTOPPABLE_INFISICAL_CLIENT_SECRET"),
            identity("clientSecret")
        );
        assert!(env_secret(&d, "UNSTOPPABLE_FTPS_PASSWORD").is_none());
        assert!(env_value(&d, "UNSTOPPABLE_FTPS_PASSWORD").is_none());
    }

    #[test]
    fn retention_rules_of_the_resource_override_the_customers_one_by_one() {
        let mut c = BackupCustomer::test();
        c.spec.retention = Some(crate::crd::Retention {
            keep_daily: Some(7),
            keep_weekly: Some(4),
            ..Default::default()
        });
        let mut r = BackupResource::test();
        r.spec.retention = Some(Box::new(crate::crd::Retention {
            keep_daily: Some(30),
            keep_within: Some("2d".into()),
            ..Default::default()
        }));
        let d = rendered(&c, &r);
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_RETENTION_KEEP_DAILY").as_deref(),
            Some("30")
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_RETENTION_KEEP_WEEKLY").as_deref(),
            Some("4")
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_RETENTION_KEEP_WITHIN").as_deref(),
            Some("2d")
        );
        assert_eq!(env_value(&d, "UNSTOPPABLE_RETENTION_KEEP_LAST"), None);
        // Neither sets a rule: nothing is rendered and the job applies its documented default.
        let d = rendered(&BackupCustomer::test(), &BackupResource::test());
        assert!(container(&d)
            .env
            .as_ref()
            .expect("env")
            .iter()
            .all(|e| !e.name.starts_with("UNSTOPPABLE_RETENTION_")));
    }

    #[test]
    fn maintenance_settings_override_rule_by_rule_and_the_check_period_becomes_slices() {
        // Daily schedule (0 3 * * *): the default 30-day period is 30 slices, one a backup.
        let d = rendered(&BackupCustomer::test(), &BackupResource::test());
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_MAINTENANCE_CHECK_SLICES").as_deref(),
            Some("30")
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_MAINTENANCE_PRUNE_INTERVAL_DAYS").as_deref(),
            Some("7")
        );
        let mut c = BackupCustomer::test();
        c.spec.maintenance = Some(crate::crd::Maintenance {
            prune_interval_days: Some(14),
            check_period_days: Some(7),
        });
        let mut r = BackupResource::test();
        r.spec.schedule = "0 * * * *".into();
        r.spec.maintenance = Some(crate::crd::Maintenance {
            prune_interval_days: Some(1),
            check_period_days: None,
        });
        let d = rendered(&c, &r);
        // Hourly: a week is 168 backups, each reading one slice.
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_MAINTENANCE_CHECK_SLICES").as_deref(),
            Some("168")
        );
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_MAINTENANCE_PRUNE_INTERVAL_DAYS").as_deref(),
            Some("1")
        );
        // A period shorter than the interval still reads everything at every backup.
        r.spec.schedule = "0 3 1 * *".into();
        let d = rendered(&c, &r);
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_MAINTENANCE_CHECK_SLICES").as_deref(),
            Some("1")
        );
    }

    #[test]
    fn anomaly_settings_and_a_hold_to_release_reach_the_job() {
        let d = rendered(&BackupCustomer::test(), &BackupResource::test());
        assert_eq!(
            env_value(&d, "UNSTOPPABLE_ANOMALY_DELETED_PERCENT").as_deref(),
            Some("20")
        );
        assert_eq!(env_value(&d, "UNSTOPPABLE_ANOMALY_RELEASE_HOLD"), None);
        let mut r = BackupResource::test();
        r.spec.anomaly = Some(Box::new(crate::crd::AnomalyDetection {
            deleted_percent: Some(35),
            enabled: Some(false),
            release_hold: Some("0123abcd".into()),
            ..Default::default()
        }));
        let d = rendered(&BackupCustomer::test(), &r);
        for (name, value) in [
            ("UNSTOPPABLE_ANOMALY_DELETED_PERCENT", "35"),
            ("UNSTOPPABLE_ANOMALY_CHANGED_PERCENT", "30"),
            ("UNSTOPPABLE_ANOMALY_ENABLED", "false"),
            ("UNSTOPPABLE_ANOMALY_RELEASE_HOLD", "0123abcd"),
        ] {
            assert_eq!(env_value(&d, name).as_deref(), Some(value), "{name}");
        }
    }

    #[test]
    fn unsupported_or_missing_secret_sources_are_errors() {
        let mut c = BackupCustomer::test();
        c.spec.secrets.secret_ref = None;
        assert_eq!(
            render(&c, &BackupResource::test(), &Settings::default()).err(),
            Some(RenderError::NoSecretSource)
        );
    }
}
