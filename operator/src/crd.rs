//! The custom resources: `BackupCustomer` (a tenant) and `BackupResource` (one FTPS endpoint of a
//! tenant). These types are the single source of truth; `crdgen` writes `crds/*.yaml` from them.

// Several `printcolumn(...)` attributes repeat the same keys by design.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use unstoppable_contract::defaults;

pub const GROUP: &str = "unstoppable.dev";

/// A customer of the backup service: where its backups are stored, where its secrets live, how
/// long backups are kept.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "unstoppable.dev",
    version = "v1alpha1",
    kind = "BackupCustomer",
    doc = "A customer (tenant) of the backup service: its bucket, secrets and retention.",
    namespaced,
    status = "BackupCustomerStatus",
    shortname = "bc",
    category = "unstoppable",
    printcolumn(name = "Bucket", type_ = "string", json_path = ".status.bucket"),
    printcolumn(
        name = "Resources",
        type_ = "integer",
        json_path = ".status.resourceCount"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Suspended", type_ = "boolean", json_path = ".spec.suspend"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
// Object Lock is extended when a prune runs, to now + days for what ends within twice the
// prune interval: a lock no longer than that could run out before the next prune.
#[x_kube(validation = Rule::new("!has(self.coldStorage.objectLock) || self.coldStorage.objectLock.days > 2 * (has(self.maintenance) && has(self.maintenance.pruneIntervalDays) ? self.maintenance.pruneIntervalDays : 7)").message("coldStorage.objectLock.days must exceed twice maintenance.pruneIntervalDays (7 by default): a lock could run out before the next prune extends it"))]
#[serde(rename_all = "camelCase")]
pub struct BackupCustomerSpec {
    /// Where the customer's backup data (the cold part of every repository) is stored.
    pub cold_storage: ColdStorage,
    /// Where the job reads the customer's credentials at run time.
    pub secrets: SecretSource,
    /// How many snapshots to keep, unless a resource overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Maintenance defaults of the customer's resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<Maintenance>,
    /// The local volume for the hot part (repository metadata) of each resource.
    #[serde(default)]
    pub hot_storage: HotStorage,
    /// Suspends every backup of this customer.
    #[serde(default)]
    pub suspend: bool,
}

/// S3-compatible cold storage.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(oldSelf.objectLock) || has(self.objectLock)").message("objectLock cannot be removed: S3 Object Lock cannot be turned off once enabled"))]
#[x_kube(validation = Rule::new("!has(oldSelf.objectLock) || !has(self.objectLock) || oldSelf.objectLock.mode != 'Compliance' || self.objectLock.mode == 'Compliance'").message("objectLock.mode cannot be weakened from Compliance to Governance"))]
pub struct ColdStorage {
    /// S3 endpoint URL, e.g. `https://s3.eu-central-1.amazonaws.com`.
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('https://') || self.startsWith('http://')").message("endpoint must be an http(s) URL"))]
    pub endpoint: String,
    /// S3 region.
    #[serde(default = "default_region")]
    pub region: String,
    /// Bucket name. Default: `unstoppable-<namespace>-<customer>` (shortened when needed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 63))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9][a-z0-9.-]*[a-z0-9]$')").message("bucket names are 3-63 lowercase letters, digits, '.' and '-'"))]
    pub bucket: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`) as MinIO and SeaweedFS expect; `false` for
    /// virtual-host style.
    #[serde(default = "default_true")]
    pub path_style: bool,
    /// S3 Object Lock (WORM) for the bucket: backups cannot be deleted or overwritten, even with
    /// the job's own credentials, until their retention ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<ObjectLock>,
}

/// Default retention of the bucket's Object Lock.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.days > 0").message("objectLock.days must be greater than 0"))]
pub struct ObjectLock {
    /// `Compliance`: nobody can shorten or remove the lock. `Governance`: privileged users can.
    pub mode: ObjectLockMode,
    /// Days every object version stays locked (at most 36500).
    #[schemars(range(max = 36500))]
    pub days: u32,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectLockMode {
    Governance,
    Compliance,
}

/// Where the job finds the credentials: Infisical (a machine identity) or a Kubernetes Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.infisical) != has(self.secretRef)").message("set exactly one of secrets.infisical and secrets.secretRef"))]
pub struct SecretSource {
    /// Infisical project, environment and path, and the machine identity that may read them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infisical: Option<InfisicalSource>,
    /// A Kubernetes Secret in the customer's namespace holding the credentials (small setups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
}

/// Infisical universal-auth source.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InfisicalSource {
    /// Infisical site, e.g. `https://app.infisical.com`.
    pub site_url: String,
    /// Project (workspace) id.
    pub project_id: String,
    /// Environment slug, e.g. `prod`.
    pub environment: String,
    /// Secret path in the project.
    #[serde(default = "default_secret_path")]
    pub path: String,
    /// Secret holding the machine identity's `clientId` and `clientSecret`.
    pub identity_secret_ref: SecretRef,
}

/// A Secret in the same namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Keep policy (like `restic forget`): a snapshot is kept when any rule keeps it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    /// Keep the last n snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000000))]
    pub keep_last: Option<u32>,
    /// Keep the last snapshot of each of the last n hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000000))]
    pub keep_hourly: Option<u32>,
    /// Keep the last snapshot of each of the last n days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000000))]
    pub keep_daily: Option<u32>,
    /// Keep the last snapshot of each of the last n weeks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000000))]
    pub keep_weekly: Option<u32>,
    /// Keep the last snapshot of each of the last n months.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000000))]
    pub keep_monthly: Option<u32>,
    /// Keep the last snapshot of each of the last n years.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000000))]
    pub keep_yearly: Option<u32>,
    /// Keep every snapshot younger than this duration, counted back from the newest, e.g. `30d`,
    /// `1y 2mo`, `2w` (or ISO 8601, `P30D`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("self.matches('^(P[0-9YMWDTHS.]+|([0-9]+ *[a-zA-Z]+,? *)+)$')").message("keepWithin must be a duration such as 30d, 1y 2mo or P30D"))]
    pub keep_within: Option<String>,
}

/// Repository maintenance, run inside each successful backup (no schedule of its own).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Maintenance {
    /// Days between prunes (two-phase, never downloading data packs from the bucket); a missed
    /// prune runs at the next backup. 0 prunes after every backup. Default: 7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 365))]
    pub prune_interval_days: Option<u32>,
    /// Every data pack is read back from the bucket and verified once per this many days: each
    /// backup reads its share, by the schedule's interval. 0 reads no data (the metadata is
    /// still checked after every backup). Default: 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 3660))]
    pub check_period_days: Option<u32>,
}

/// The hot volume of a resource: one PersistentVolumeClaim per resource.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HotStorage {
    /// StorageClass of the hot PVC. Default: the operator's setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Size of the hot PVC, e.g. `2Gi`. Default: the operator's setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

/// Observed state of a customer.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BackupCustomerStatus {
    /// `Ready`, `StorageReady`, `SecretsReady`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The bucket in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Number of BackupResources of this customer.
    #[serde(default)]
    pub resource_count: u32,
    /// The generation these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The CEL rule that admits the schedules Kubernetes' CronJob accepts (robfig/cron's standard
/// parser); numeric ranges are part of the pattern, month and day names are checked by the
/// operator.
pub const SCHEDULE_RULE: &str = concat!(
    "self.matches('^\\\\s*(",
    "@(yearly|annually|monthly|weekly|daily|midnight|hourly)",
    "|@every ([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+",
    "|(\\\\*|\\\\?|(0?[0-9]|[1-5][0-9])(-(0?[0-9]|[1-5][0-9]))?)(/[0-9]+)?(,(\\\\*|\\\\?|(0?[0-9]|[1-5][0-9])(-(0?[0-9]|[1-5][0-9]))?)(/[0-9]+)?)*",
    "\\\\s+(\\\\*|\\\\?|(0?[0-9]|1[0-9]|2[0-3])(-(0?[0-9]|1[0-9]|2[0-3]))?)(/[0-9]+)?(,(\\\\*|\\\\?|(0?[0-9]|1[0-9]|2[0-3])(-(0?[0-9]|1[0-9]|2[0-3]))?)(/[0-9]+)?)*",
    "\\\\s+(\\\\*|\\\\?|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[0-9]+)?(,(\\\\*|\\\\?|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[0-9]+)?)*",
    "\\\\s+(\\\\*|\\\\?|(0?[1-9]|1[0-2]|[A-Za-z]{3})(-(0?[1-9]|1[0-2]|[A-Za-z]{3}))?)(/[0-9]+)?(,(\\\\*|\\\\?|(0?[1-9]|1[0-2]|[A-Za-z]{3})(-(0?[1-9]|1[0-2]|[A-Za-z]{3}))?)(/[0-9]+)?)*",
    "\\\\s+(\\\\*|\\\\?|(0?[0-6]|[A-Za-z]{3})(-(0?[0-6]|[A-Za-z]{3}))?)(/[0-9]+)?(,(\\\\*|\\\\?|(0?[0-6]|[A-Za-z]{3})(-(0?[0-6]|[A-Za-z]{3}))?)(/[0-9]+)?)*",
    ")\\\\s*$')"
);

/// One FTPS endpoint of a customer, backed up on a schedule.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "unstoppable.dev",
    version = "v1alpha1",
    kind = "BackupResource",
    doc = "One FTPS endpoint of a customer, backed up on a cron schedule by its own CronJob.",
    namespaced,
    status = "BackupResourceStatus",
    shortname = "br",
    category = "unstoppable",
    printcolumn(
        name = "Customer",
        type_ = "string",
        json_path = ".spec.customerRef.name"
    ),
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule"),
    printcolumn(
        name = "Last Success",
        type_ = "date",
        json_path = ".status.lastSuccessfulTime"
    ),
    printcolumn(
        name = "Last Result",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"LastBackupSucceeded\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
// The operator keeps every BackupResource in memory: the parts most resources leave unset are
// boxed, so an unset one costs a pointer instead of its whole size (at 10,000 resources, megabytes).
pub struct BackupResourceSpec {
    /// The BackupCustomer (same namespace) this resource belongs to.
    pub customer_ref: CustomerRef,
    /// What to back up.
    pub source: Source,
    /// Cron schedule in Kubernetes' dialect: 5 fields (minute hour day-of-month month
    /// day-of-week 0-6, names such as `mon` or `jan`; no `L`, `W` or `#`) or `@yearly`,
    /// `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`, `@every 1h30m`; e.g. `0 3 * * *`.
    /// The operator reports a schedule it cannot use as condition `Ready=False` and an Event.
    #[schemars(length(min = 1, max = 256))]
    #[x_kube(validation = Rule::new(SCHEDULE_RULE).message("schedule must be 5 cron fields as Kubernetes accepts them (day-of-week 0-6, no L, W or #) or @yearly, @monthly, @weekly, @daily, @midnight, @hourly, @every <duration>"))]
    pub schedule: String,
    /// IANA time zone of the schedule, e.g. `Europe/Berlin`. Default: UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Overrides the customer's retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Box<Retention>>,
    /// Overrides the customer's maintenance settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<Maintenance>,
    /// Overrides the customer's hot storage for this resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hot_storage: Option<Box<HotStorage>>,
    /// Suspends this resource's backups.
    #[serde(default)]
    pub suspend: bool,
    /// CPU and memory of the backup pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Box<ResourceRequirements>>,
    /// A run longer than this many seconds is stopped and counted as failed. Default: 6 hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0").message("deadlineSeconds must be positive"))]
    pub deadline_seconds: Option<i64>,
    /// When a backup's changes count as an attack on the source, and releasing the hold an
    /// anomaly put on the last good snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<Box<AnomalyDetection>>,
}

/// Anomaly detection: each backup's change profile against the resource's last 30 normal runs.
/// A rate is an anomaly when it reaches its percentage, concerns at least `minFiles` files and
/// exceeds `factor` times its usual; the snapshot is then tagged `anomaly` and the newest one
/// before it held (never forgotten) until released. Defaults: the job's.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AnomalyDetection {
    /// Judge backups at all. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Fewer affected files are never an anomaly. Default: 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000000))]
    pub min_files: Option<u64>,
    /// How many times its usual a rate must exceed. Default: 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub factor: Option<u64>,
    /// Percent of the files deleted in one run (`MassDeletion`). Default: 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub deleted_percent: Option<u64>,
    /// Percent of the files whose content changed in one run (`MassChange`). Default: 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub changed_percent: Option<u64>,
    /// Percent of the changed files whose content no longer compresses though it did
    /// (`EncryptedContent`). Default: 25.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub incompressible_percent: Option<u64>,
    /// Percent of the files renamed to an extension never seen in the resource
    /// (`NewExtensions`). Default: 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub renamed_percent: Option<u64>,
    /// Releases the hold of this snapshot (`status.anomaly.heldSnapshot`, or its first 8 or
    /// more hex digits) at the next backup, once a person has looked; `status.anomaly` then
    /// clears. An id that is not held is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[0-9a-f]{8,64}$"))]
    pub release_hold: Option<String>,
}

/// Reference to a BackupCustomer.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CustomerRef {
    /// Name of the BackupCustomer.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// The backup source.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// An FTPS server (explicit TLS, passive mode).
    pub ftps: FtpsSource,
}

/// An FTPS server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FtpsSource {
    /// Host name or IP address.
    pub host: String,
    /// Control port.
    #[serde(default = "default_ftp_port")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("port must be 1-65535"))]
    pub port: i32,
    /// Directory to back up.
    #[serde(default = "default_root")]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("path must be absolute"))]
    pub path: String,
    /// Glob patterns (relative to `path`); when set, only matching files are backed up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Glob patterns (relative to `path`) of files and directories to skip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Server certificate verification.
    #[serde(default)]
    pub tls: FtpsTls,
    /// Names of the FTP username and password in the customer's secret source.
    #[serde(default)]
    pub credentials: CredentialKeys,
    /// FTPS connections used in parallel.
    #[serde(default = "default_max_connections")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 64").message("maxConnections must be 1-64"))]
    pub max_connections: i32,
}

/// How the server certificate is verified.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(self.insecureSkipVerify && has(self.caSecretRef))").message("insecureSkipVerify and caSecretRef cannot both be set"))]
pub struct FtpsTls {
    /// A Secret key holding the PEM CA certificate(s) to trust instead of the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
    /// Name the certificate must carry, when it differs from `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Accept any certificate. Testing only: it allows a man in the middle.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// A key of a Secret in the same namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    pub name: String,
    /// Key in the Secret.
    pub key: String,
}

/// Key names of the FTP credentials in the customer's secret source.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CredentialKeys {
    /// Key of the FTP username.
    #[serde(default = "default_username_key")]
    pub username_key: String,
    /// Key of the FTP password.
    #[serde(default = "default_password_key")]
    pub password_key: String,
}

impl Default for CredentialKeys {
    fn default() -> Self {
        Self {
            username_key: default_username_key(),
            password_key: default_password_key(),
        }
    }
}

/// Observed state of a resource.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BackupResourceStatus {
    /// `Ready`, `Scheduled`, `LastBackupSucceeded`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The CronJob running this resource's backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_job_name: Option<String>,
    /// When the last run was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// When the last successful run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<Time>,
    /// The last failed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<Box<LastFailure>>,
    /// The snapshot of the last successful run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_snapshot: Option<Box<LastSnapshot>>,
    /// When the next run is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<Time>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// What ran after the backups: retention, prune, the rolling check; the repository's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<Box<MaintenanceStatus>>,
    /// What changed in the source in the last successful backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_changes: Option<Box<ChangesStatus>>,
    /// The last anomaly, until its held snapshot is released (condition `SourceAnomaly`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<Box<AnomalyStatus>>,
}

/// The change profile of a backup, against the snapshot before it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ChangesStatus {
    pub files_before: u64,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_deleted: u64,
    /// Renamed to another extension in the same directory.
    pub files_renamed: u64,
    /// Changed to content that no longer compresses though it did.
    pub files_incompressible: u64,
    /// New or renamed files with an extension never seen in the resource.
    pub files_new_extension: u64,
    /// The first extensions seen for the first time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_extensions: Vec<String>,
}

/// A backup whose changes were well outside the resource's usual.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AnomalyStatus {
    /// When the run finished.
    pub time: Time,
    /// The snapshot of that run (tagged `anomaly`).
    pub snapshot: String,
    /// The last good snapshot, held until `spec.anomaly.releaseHold` names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_snapshot: Option<String>,
    /// Codes (`MassDeletion`, `MassChange`, `EncryptedContent`, `NewExtensions`) and what was
    /// measured.
    pub reasons: Vec<AnomalyReasonStatus>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AnomalyReasonStatus {
    pub code: String,
    pub message: String,
}

/// What ran after the backups of a resource, as their jobs reported it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceStatus {
    /// Snapshots the retention rules kept after the last successful backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots_kept: Option<u64>,
    /// When the last prune finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_prune_time: Option<Time>,
    /// When the last clean check finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check_time: Option<Time>,
    /// The slice of the data packs the last clean check read, e.g. `12/30`: how far the current
    /// period has come in reading every pack back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check_slice: Option<String>,
    /// Bytes of the hot part (metadata on the hot volume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hot_bytes: Option<u64>,
    /// Bytes of packs in the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_bytes: Option<u64>,
}

/// A failed run.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LastFailure {
    /// When it failed.
    pub time: Time,
    /// Why, in one line.
    pub reason: String,
}

/// A snapshot written by a successful run.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LastSnapshot {
    /// Snapshot id.
    pub id: String,
    /// When the run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
    /// Files new in this snapshot.
    pub files_new: u64,
    /// Files changed since the previous snapshot.
    pub files_changed: u64,
    /// Files unchanged (not downloaded).
    pub files_unmodified: u64,
    /// Bytes of all files the source listed.
    pub bytes_processed: u64,
    /// Bytes the repository grew by.
    pub bytes_added: u64,
    /// Run duration in seconds.
    pub duration_seconds: f64,
}

// Defaults are the job's own (`unstoppable_contract::defaults`), written once.
fn default_region() -> String {
    defaults::REGION.into()
}
fn default_true() -> bool {
    defaults::PATH_STYLE
}
fn default_secret_path() -> String {
    defaults::ROOT.into()
}
fn default_ftp_port() -> i32 {
    i32::from(defaults::FTP_PORT)
}
fn default_root() -> String {
    defaults::ROOT.into()
}
fn default_max_connections() -> i32 {
    i32::from(defaults::MAX_CONNECTIONS)
}
fn default_username_key() -> String {
    defaults::FTPS_USERNAME_KEY.into()
}
fn default_password_key() -> String {
    defaults::FTPS_PASSWORD_KEY.into()
}

/// The CRD files `crdgen` writes: (file name, YAML).
pub fn crd_files() -> Vec<(&'static str, String)> {
    use kube::CustomResourceExt;
    let header = "# Generated by `cargo run -p unstoppable-operator --bin crdgen` from operator/src/crd.rs. Do not edit.\n";
    let yaml = |crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition| {
        format!("{header}{}", serde_saphyr::to_string(&crd).unwrap_or_default())
    };
    vec![
        (
            "backupcustomers.unstoppable.dev.yaml",
            yaml(BackupCustomer::crd()),
        ),
        (
            "backupresources.unstoppable.dev.yaml",
            yaml(BackupResource::crd()),
        ),
        (
            "backuprestores.unstoppable.dev.yaml",
            yaml(crate::restore_crd::BackupRestore::crd()),
        ),
    ]
}

#[cfg(test)]
mod schedule_rule_tests {
    use super::SCHEDULE_RULE;
    use crate::cron_dialect;

    /// The pattern inside `self.matches('…')`, as CEL hands it to RE2.
    fn pattern() -> regex::Regex {
        let inner = SCHEDULE_RULE
            .strip_prefix("self.matches('")
            .and_then(|s| s.strip_suffix("')"))
            .expect("a matches() rule");
        regex::Regex::new(&inner.replace("\\\\", "\\")).expect("RE2-compatible pattern")
    }

    #[test]
    fn admission_agrees_with_kubernetes_dialect() {
        let re = pattern();
        for ok in [
            "0 3 * * *",
            "*/15 * * * *",
            "0 3 * * 1-5",
            "0 3 * * MON-FRI",
            "0 0 1 jan,jul ?",
            "5-55/10 8-18 1,15 * *",
            "@midnight",
            "@every 1h30m",
            "@daily",
        ] {
            assert!(re.is_match(ok), "admission refuses {ok}");
            assert!(cron_dialect::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "0 3 * * 7",
            "0 3 L * *",
            "0 3 * * 5#2",
            "0 3 15W * *",
            "0 0 3 * * *",
            "0 3 * *",
            "61 3 * * *",
            "0 24 * * *",
            "0 3 32 * *",
            "0 3 * 13 *",
            "@fortnightly",
            "TZ=UTC 0 3 * * *",
            "",
        ] {
            assert!(!re.is_match(bad), "admission accepts {bad}");
            assert!(cron_dialect::parse(bad).is_err(), "{bad}");
        }
    }
}
