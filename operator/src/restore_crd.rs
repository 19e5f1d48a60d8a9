//! `BackupRestore`: one restore of one resource's backup — back onto its FTPS server, into a
//! volume, or into a bucket — also from the repository as it was before an attack.

// Several `printcolumn(...)` attributes repeat the same keys by design.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::crd::FtpsTls;

/// One restore of a BackupResource's backup. It runs once: the spec cannot change afterwards;
/// create a new BackupRestore to restore again.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "unstoppable.dev",
    version = "v1alpha1",
    kind = "BackupRestore",
    doc = "One restore of a resource's backup: onto its FTPS server, into a volume or into a bucket.",
    namespaced,
    status = "BackupRestoreStatus",
    shortname = "brs",
    category = "unstoppable",
    printcolumn(
        name = "Resource",
        type_ = "string",
        json_path = ".spec.resourceRef.name"
    ),
    printcolumn(name = "Snapshot", type_ = "string", json_path = ".status.snapshotId"),
    printcolumn(name = "Target", type_ = "string", json_path = ".status.target"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("a BackupRestore runs once and cannot be changed; create a new one"))]
#[serde(rename_all = "camelCase")]
pub struct BackupRestoreSpec {
    /// The BackupResource (same namespace) whose backup is restored.
    pub resource_ref: ResourceRef,
    /// Which snapshot. Default: the newest.
    #[serde(default)]
    pub snapshot: SnapshotSelector,
    /// A path inside the snapshot (relative to the backed-up directory). Default: all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub path: Option<String>,
    /// Glob patterns (relative to `path`); when set, only matching files are restored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Glob patterns (relative to `path`) of files and directories to leave out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Where the files go: exactly one of `ftps`, `pvc`, `s3`.
    pub target: RestoreTarget,
    /// Read the cold repository as it was at this time, from the bucket's object versions:
    /// after an attacker deleted snapshots, indexes or packs (the bucket must keep versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_as_of: Option<Time>,
    /// CPU and memory of the restore pod. Default: those of the resource's backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// A restore running longer than this many seconds is stopped and failed. Default: 6 hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0").message("deadlineSeconds must be positive"))]
    pub deadline_seconds: Option<i64>,
}

/// Reference to a BackupResource.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    /// Name of the BackupResource.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A snapshot: by id, or the newest one at or before a time; neither means the newest.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.id) && has(self.asOf))").message("snapshot takes an id or asOf, not both"))]
pub struct SnapshotSelector {
    /// A snapshot id, or a unique prefix of one (`status.lastSnapshot.id` of the resource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[0-9a-f]{4,64}$')").message("snapshot.id must be 4-64 lowercase hex characters"))]
    pub id: Option<String>,
    /// The newest snapshot taken at or before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<Time>,
}

/// Where a restore writes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.ftps) ? 1 : 0) + (has(self.pvc) ? 1 : 0) + (has(self.s3) ? 1 : 0) == 1").message("target takes exactly one of ftps, pvc, s3"))]
pub struct RestoreTarget {
    /// Back onto the resource's own FTPS server: only missing and changed files are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ftps: Option<FtpsTarget>,
    /// Into a PersistentVolumeClaim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc: Option<PvcTarget>,
    /// As plain files into the customer's bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Target>,
}

/// Restore onto the resource's FTPS server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!self.delete || has(self.path)").message("delete needs an explicit path: it removes what the snapshot lacks there"))]
pub struct FtpsTarget {
    /// Absolute directory on the server. Default: where the restored path was backed up from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("ftps.path must be absolute"))]
    pub path: Option<String>,
    /// Replace files that exist on the server: `Changed` (size or time differ), `Always` or
    /// `Never` (only missing files are restored).
    #[serde(default)]
    pub overwrite: Overwrite,
    /// Also remove files and directories under `path` that the snapshot does not have (what an
    /// attacker added). Needs `path`.
    #[serde(default)]
    pub delete: bool,
    /// Only report in the status what would change.
    #[serde(default)]
    pub dry_run: bool,
    /// Another FTPS server instead of the resource's own (e.g. a staging copy of the site).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<FtpsServer>,
}

/// An FTPS server (explicit TLS) with credentials of its own.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FtpsServer {
    /// Host name or IP address.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// Control port.
    #[serde(default = "default_ftp_port")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("port must be 1-65535"))]
    pub port: i32,
    /// Server certificate verification.
    #[serde(default)]
    pub tls: FtpsTls,
    /// The Secret (same namespace) with its FTP user and password.
    pub credentials_secret_ref: FtpsCredentialsRef,
}

/// Keys of a Secret holding FTP credentials.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FtpsCredentialsRef {
    /// Name of the Secret.
    pub name: String,
    /// Key of the user name. Default: `username`.
    #[serde(default = "default_username")]
    pub username_key: String,
    /// Key of the password. Default: `password`.
    #[serde(default = "default_password")]
    pub password_key: String,
}

fn default_ftp_port() -> i32 {
    i32::from(unstoppable_contract::defaults::FTP_PORT)
}
fn default_username() -> String {
    "username".into()
}
fn default_password() -> String {
    "password".into()
}
fn default_access_key_id() -> String {
    "accessKeyId".into()
}
fn default_secret_access_key() -> String {
    "secretAccessKey".into()
}
fn default_region() -> String {
    unstoppable_contract::defaults::REGION.into()
}
fn default_path_style() -> bool {
    unstoppable_contract::defaults::PATH_STYLE
}

/// When a file that exists on the server is replaced.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Overwrite {
    #[default]
    Changed,
    Always,
    Never,
}

impl Overwrite {
    /// The job's word for it.
    pub fn as_arg(self) -> &'static str {
        match self {
            Self::Changed => "changed",
            Self::Always => "always",
            Self::Never => "never",
        }
    }
}

/// Restore into a volume: an existing claim, or a new one from a template.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.claimName) != has(self.template)").message("pvc takes exactly one of claimName and template"))]
pub struct PvcTarget {
    /// An existing PersistentVolumeClaim in the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_name: Option<String>,
    /// A new claim, named after the BackupRestore, created from this spec. It is kept when the
    /// BackupRestore is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PersistentVolumeClaimSpec>,
    /// A directory inside the volume. Default: its root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("!self.startsWith('/') && !self.contains('..')").message("subPath must be relative and must not contain .."))]
    pub sub_path: Option<String>,
}

/// Restore as plain files into the customer's bucket, or into a bucket elsewhere.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.bucket) && has(self.endpoint))").message("s3 takes bucket or endpoint, not both: an endpoint names its own bucket"))]
pub struct S3Target {
    /// Key prefix, e.g. `restores/www-2026-12-04/`.
    #[schemars(length(min = 1, max = 512))]
    pub prefix: String,
    /// Another bucket on the same endpoint, reachable with the customer's keys. Default: the
    /// customer's bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// A bucket on another S3 endpoint, with keys of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<S3Endpoint>,
}

/// A bucket on an S3-compatible endpoint, with its own keys.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct S3Endpoint {
    /// Endpoint URL, e.g. `https://s3.eu-central-1.amazonaws.com`.
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message("endpoint.url must be an http(s) URL"))]
    pub url: String,
    /// Region.
    #[serde(default = "default_region")]
    pub region: String,
    /// The bucket.
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    /// Path-style addressing (MinIO, SeaweedFS).
    #[serde(default = "default_path_style")]
    pub path_style: bool,
    /// The Secret (same namespace) with the keys.
    pub credentials_secret_ref: S3CredentialsRef,
}

/// Keys of a Secret holding S3 credentials.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct S3CredentialsRef {
    /// Name of the Secret.
    pub name: String,
    /// Key of the access key id. Default: `accessKeyId`.
    #[serde(default = "default_access_key_id")]
    pub access_key_id_key: String,
    /// Key of the secret access key. Default: `secretAccessKey`.
    #[serde(default = "default_secret_access_key")]
    pub secret_access_key_key: String,
}

/// Where a restore is.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RestorePhase {
    /// Waiting to start (for the resource, or for its running backup to end).
    #[default]
    Pending,
    Running,
    Succeeded,
    Failed,
}

/// Observed state of a restore.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BackupRestoreStatus {
    #[serde(default)]
    pub phase: RestorePhase,
    /// `Complete`: true once the restore ended well.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The Job running the restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// `ftps`, `pvc` or `s3`, and where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The snapshot actually restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// When that snapshot was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Files written (with `dryRun`: that would be written), and their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_restored: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_restored: Option<u64>,
    /// Files already equal to the snapshot's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_unchanged: Option<u64>,
    /// Files removed from the server (`delete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_deleted: Option<u64>,
    /// Paths that could not be written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_failed: Option<u64>,
    /// The first paths changed (deleted ones start with `-`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Why modification times were not set, or what went wrong, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
