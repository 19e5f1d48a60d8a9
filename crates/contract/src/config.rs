use serde::{Deserialize, Serialize};
use std::fmt;

/// A credential. Its `Debug` and `Display` never show the value, so it cannot leak into logs.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The value, for handing to the one client that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Everything one run of the job needs. Keys are documented in [`CONFIG_KEYS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    pub customer: String,
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ftps: Option<FtpsConfig>,
    pub repository: RepositoryConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Config>,
    /// Where the credentials come from at run time, when not given directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infisical: Option<InfisicalConfig>,
    #[serde(default = "default_summary_path")]
    pub summary_path: String,
    #[serde(default = "default_progress_interval")]
    pub progress_interval_secs: u64,
    /// Which snapshots of the resource are kept after each successful backup.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Repository maintenance inside the backup run.
    #[serde(default)]
    pub maintenance: MaintenanceConfig,
    /// Where `restore --to-ftps` / `--to-s3` write when not to the resource's own server or
    /// bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreConfig>,
    /// When a backup's changes count as an attack on the source.
    #[serde(default)]
    pub anomaly: AnomalyConfig,
}

/// When a backup's change profile is an anomaly: a rate must reach its threshold, concern at
/// least `min_files` files, and exceed `factor` times the highest rate of the resource's recent
/// normal runs. Rates are percent of the files the parent snapshot had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_anomaly_min_files")]
    pub min_files: u64,
    #[serde(default = "default_anomaly_factor")]
    pub factor: u64,
    #[serde(default = "default_anomaly_deleted_percent")]
    pub deleted_percent: u64,
    #[serde(default = "default_anomaly_changed_percent")]
    pub changed_percent: u64,
    /// Percent of the changed files (whose previous content compressed).
    #[serde(default = "default_anomaly_incompressible_percent")]
    pub incompressible_percent: u64,
    #[serde(default = "default_anomaly_renamed_percent")]
    pub renamed_percent: u64,
    /// A held snapshot (id or id prefix) whose hold the next backup releases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_hold: Option<String>,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_files: defaults::ANOMALY_MIN_FILES,
            factor: defaults::ANOMALY_FACTOR,
            deleted_percent: defaults::ANOMALY_DELETED_PERCENT,
            changed_percent: defaults::ANOMALY_CHANGED_PERCENT,
            incompressible_percent: defaults::ANOMALY_INCOMPRESSIBLE_PERCENT,
            renamed_percent: defaults::ANOMALY_RENAMED_PERCENT,
            release_hold: None,
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_anomaly_min_files() -> u64 {
    defaults::ANOMALY_MIN_FILES
}
fn default_anomaly_factor() -> u64 {
    defaults::ANOMALY_FACTOR
}
fn default_anomaly_deleted_percent() -> u64 {
    defaults::ANOMALY_DELETED_PERCENT
}
fn default_anomaly_changed_percent() -> u64 {
    defaults::ANOMALY_CHANGED_PERCENT
}
fn default_anomaly_incompressible_percent() -> u64 {
    defaults::ANOMALY_INCOMPRESSIBLE_PERCENT
}
fn default_anomaly_renamed_percent() -> u64 {
    defaults::ANOMALY_RENAMED_PERCENT
}

/// Another FTPS server or bucket to restore to, with credentials of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ftps: Option<RestoreFtpsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<RestoreS3Config>,
}

/// An FTPS server to restore to: where and how to log in; how hard to work (connections,
/// timeouts, retries) comes from the resource's own `ftps.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreFtpsConfig {
    pub host: String,
    #[serde(default = "default_ftp_port")]
    pub port: u16,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Secret,
    #[serde(default = "default_root")]
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

impl RestoreFtpsConfig {
    /// As a full server configuration, with the resource's connections, timeout and retries.
    pub fn to_ftps(&self, resource: Option<&FtpsConfig>) -> FtpsConfig {
        FtpsConfig {
            host: self.host.clone(),
            port: self.port,
            username: self.username.clone(),
            password: self.password.clone(),
            path: self.path.clone(),
            include: Vec::new(),
            exclude: Vec::new(),
            ca_file: self.ca_file.clone(),
            server_name: self.server_name.clone(),
            insecure_skip_verify: self.insecure_skip_verify,
            max_connections: resource.map_or_else(default_max_connections, |f| f.max_connections),
            timeout_secs: resource.map_or_else(default_timeout, |f| f.timeout_secs),
            retries: resource.map_or_else(default_retries, |f| f.retries),
            clock_skew_secs: resource.map_or_else(default_clock_skew, |f| f.clock_skew_secs),
        }
    }
}

/// A bucket to restore to, on any endpoint, with its own keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreS3Config {
    pub endpoint: String,
    #[serde(default = "default_region")]
    pub region: String,
    pub bucket: String,
    #[serde(default)]
    pub access_key_id: Secret,
    #[serde(default)]
    pub secret_access_key: Secret,
    #[serde(default = "default_path_style")]
    pub path_style: bool,
}

impl RestoreS3Config {
    pub fn to_s3(&self) -> S3Config {
        S3Config {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            bucket: self.bucket.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            path_style: self.path_style,
            object_lock_days: None,
        }
    }
}

/// Repository maintenance, run inside a successful backup run after the retention rules (so the
/// CronJob's `concurrencyPolicy: Forbid` keeps it single): no schedule and no lock of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// Days between prunes; the time of the last one is kept in the hot directory, so a missed
    /// prune runs at the next backup. 0 prunes after every backup.
    #[serde(default = "default_prune_interval_days")]
    pub prune_interval_days: u32,
    /// Each successful backup reads one of this many slices of the data packs, in turn; 0 turns
    /// the rolling read-data check off.
    #[serde(default = "default_check_slices")]
    pub check_slices: u32,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        Self {
            prune_interval_days: defaults::PRUNE_INTERVAL_DAYS,
            check_slices: defaults::CHECK_SLICES,
        }
    }
}

fn default_check_slices() -> u32 {
    defaults::CHECK_SLICES
}

fn default_prune_interval_days() -> u32 {
    defaults::PRUNE_INTERVAL_DAYS
}

/// Keep rules, as `restic forget` has them: a snapshot is kept when any rule keeps it. With no
/// rule set, [`defaults::RETENTION`] applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_hourly: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_yearly: Option<u32>,
    /// Every snapshot younger than this, counted back from the newest (e.g. `30d`, `1y 2mo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_within: Option<String>,
}

impl RetentionConfig {
    /// Whether no rule is set (then the default rules apply).
    pub fn is_empty(&self) -> bool {
        self == &RetentionConfig::default()
    }

    /// These rules, or the default ones when none is set.
    pub fn or_default_rules(&self) -> RetentionConfig {
        if self.is_empty() {
            defaults::RETENTION
        } else {
            self.clone()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FtpsConfig {
    pub host: String,
    #[serde(default = "default_ftp_port")]
    pub port: u16,
    /// Credentials (here, `repository.password` and the S3 keys) may be left out of the file and
    /// the environment when `infisical` is set: the job reads them from there, then checks that
    /// each is present before it runs.
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Secret,
    /// Directory on the server to back up.
    #[serde(default = "default_root")]
    pub path: String,
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// PEM file with the CA certificate(s) to trust instead of the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Name to verify the server certificate against, when it differs from `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// How far the server's clock may be behind the job's (servers without MLSD only).
    #[serde(default = "default_clock_skew")]
    pub clock_skew_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    /// Local directory (the hot PersistentVolume) for the repository's metadata.
    pub hot_dir: String,
    /// Local directory for the cold part instead of S3 (development and tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_dir: Option<String>,
    #[serde(default)]
    pub password: Secret,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub endpoint: String,
    #[serde(default = "default_region")]
    pub region: String,
    pub bucket: String,
    #[serde(default)]
    pub access_key_id: Secret,
    #[serde(default)]
    pub secret_access_key: Secret,
    /// Path-style addressing (`endpoint/bucket/key`), as MinIO and SeaweedFS expect.
    #[serde(default = "default_path_style")]
    pub path_style: bool,
    /// Days of the bucket's Object Lock retention: when prune runs, every object the repository
    /// still has is kept locked until at least now + these days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock_days: Option<u32>,
}

/// Infisical (universal auth) as the source of the job's credentials. The secrets named by the
/// `*_key` fields are read from `project_id` / `environment` / `secret_path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfisicalConfig {
    pub site_url: String,
    pub client_id: Secret,
    pub client_secret: Secret,
    pub project_id: String,
    pub environment: String,
    #[serde(default = "default_root")]
    pub secret_path: String,
    #[serde(default = "default_ftps_username_key")]
    pub ftps_username_key: String,
    #[serde(default = "default_ftps_password_key")]
    pub ftps_password_key: String,
    #[serde(default = "default_repository_password_key")]
    pub repository_password_key: String,
    #[serde(default = "default_s3_access_key_id_key")]
    pub s3_access_key_id_key: String,
    #[serde(default = "default_s3_secret_access_key_key")]
    pub s3_secret_access_key_key: String,
}

/// The defaults of the job's configuration, written once: the serde defaults below, the
/// operator's rendering and CRD defaults use them, and a test checks `CONFIG_KEYS` agrees.
pub mod defaults {
    pub const FTPS_USERNAME_KEY: &str = "FTP_USERNAME";
    pub const FTPS_PASSWORD_KEY: &str = "FTP_PASSWORD";
    pub const REPOSITORY_PASSWORD_KEY: &str = "REPOSITORY_PASSWORD";
    pub const S3_ACCESS_KEY_ID_KEY: &str = "S3_ACCESS_KEY_ID";
    pub const S3_SECRET_ACCESS_KEY_KEY: &str = "S3_SECRET_ACCESS_KEY";
    pub const SUMMARY_PATH: &str = "/dev/termination-log";
    pub const PROGRESS_INTERVAL_SECS: u64 = 5;
    /// Days between prunes.
    pub const PRUNE_INTERVAL_DAYS: u32 = 7;
    /// Slices of the rolling read-data check: every pack read once a month of daily backups.
    pub const CHECK_SLICES: u32 = 30;
    /// Days over which every data pack is read back once, when the customer and the resource
    /// do not say (the operator turns it into slices by the schedule).
    pub const CHECK_PERIOD_DAYS: u32 = 30;
    /// Keep rules when neither the customer nor the resource sets any: the last 7 snapshots
    /// (several backups a day are not thinned out at once), a week of daily ones, five weekly
    /// ones and a year of monthly ones — at most 31 snapshots.
    pub const RETENTION: super::RetentionConfig = super::RetentionConfig {
        keep_last: Some(7),
        keep_hourly: None,
        keep_daily: Some(7),
        keep_weekly: Some(5),
        keep_monthly: Some(12),
        keep_yearly: None,
        keep_within: None,
    };
    pub const FTP_PORT: u16 = 21;
    pub const ROOT: &str = "/";
    pub const MAX_CONNECTIONS: u16 = 4;
    pub const TIMEOUT_SECS: u64 = 30;
    pub const RETRIES: u32 = 3;
    /// Servers without MLSD show times in LIST only to the minute; a file whose LIST line
    /// matches the previous snapshot is dated from it instead of by MDTM only if that minute
    /// ended this long before the snapshot was taken. An hour covers clocks that drift or
    /// jump by a daylight-saving hour; a server further behind should set more.
    pub const CLOCK_SKEW_SECS: u64 = 3600;
    pub const REGION: &str = "us-east-1";
    pub const PATH_STYLE: bool = true;
    /// Fewer files than this are never an anomaly: a small site editing most of its few pages
    /// is a normal day.
    pub const ANOMALY_MIN_FILES: u64 = 20;
    /// "Well above the usual": a rate must exceed this many times the highest rate of the last
    /// normal runs, so a resource that churns by nature (logs, caches) does not page daily.
    pub const ANOMALY_FACTOR: u64 = 3;
    /// A fifth of the site gone in one run is rarely a redesign and often a wipe.
    pub const ANOMALY_DELETED_PERCENT: u64 = 20;
    /// Sites are edited a few pages at a time; encryption rewrites nearly every file.
    pub const ANOMALY_CHANGED_PERCENT: u64 = 30;
    /// Edits keep text text; encrypted output does not compress at all.
    pub const ANOMALY_INCOMPRESSIBLE_PERCENT: u64 = 25;
    /// Renames to a never-seen extension are rare in normal work and ransomware's signature.
    pub const ANOMALY_RENAMED_PERCENT: u64 = 5;
}

fn default_ftps_username_key() -> String {
    defaults::FTPS_USERNAME_KEY.into()
}
fn default_ftps_password_key() -> String {
    defaults::FTPS_PASSWORD_KEY.into()
}
fn default_repository_password_key() -> String {
    defaults::REPOSITORY_PASSWORD_KEY.into()
}
fn default_s3_access_key_id_key() -> String {
    defaults::S3_ACCESS_KEY_ID_KEY.into()
}
fn default_s3_secret_access_key_key() -> String {
    defaults::S3_SECRET_ACCESS_KEY_KEY.into()
}
fn default_summary_path() -> String {
    defaults::SUMMARY_PATH.into()
}
fn default_progress_interval() -> u64 {
    defaults::PROGRESS_INTERVAL_SECS
}
fn default_ftp_port() -> u16 {
    defaults::FTP_PORT
}
fn default_root() -> String {
    defaults::ROOT.into()
}
fn default_max_connections() -> usize {
    usize::from(defaults::MAX_CONNECTIONS)
}
fn default_timeout() -> u64 {
    defaults::TIMEOUT_SECS
}
fn default_retries() -> u32 {
    defaults::RETRIES
}
fn default_clock_skew() -> u64 {
    defaults::CLOCK_SKEW_SECS
}
fn default_region() -> String {
    defaults::REGION.into()
}
fn default_path_style() -> bool {
    defaults::PATH_STYLE
}

/// How a key's value is written in an environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Text,
    Number,
    Bool,
    /// A list in YAML; in the environment comma-separated, or a JSON array (for globs with commas).
    List,
}

/// One configuration key: its dotted YAML path, its environment variable, and what it means.
#[derive(Debug, Clone, Copy)]
pub struct ConfigKey {
    pub path: &'static str,
    pub kind: KeyKind,
    pub secret: bool,
    pub default: &'static str,
    pub doc: &'static str,
}

impl ConfigKey {
    /// `ftps.max_connections` -> `UNSTOPPABLE_FTPS_MAX_CONNECTIONS`.
    pub fn env_name(&self) -> String {
        format!("UNSTOPPABLE_{}", self.path.replace('.', "_").to_uppercase())
    }
}

macro_rules! key {
    ($path:literal, $kind:ident, $secret:literal, $default:literal, $doc:literal) => {
        ConfigKey {
            path: $path,
            kind: KeyKind::$kind,
            secret: $secret,
            default: $default,
            doc: $doc,
        }
    };
}

/// Every key the job reads; the README's table is generated from the same list.
pub const CONFIG_KEYS: &[ConfigKey] = &[
    key!(
        "customer",
        Text,
        false,
        "",
        "Customer (tenant) name; tags every snapshot."
    ),
    key!(
        "resource",
        Text,
        false,
        "",
        "Resource name; tags every snapshot and is the repository prefix in the bucket."
    ),
    key!(
        "ftps.host",
        Text,
        false,
        "",
        "FTPS server host name or IP address."
    ),
    key!(
        "ftps.port",
        Number,
        false,
        "21",
        "FTPS control port (explicit TLS, AUTH TLS)."
    ),
    key!("ftps.username", Text, false, "", "FTP user."),
    key!("ftps.password", Text, true, "", "FTP password."),
    key!(
        "ftps.path",
        Text,
        false,
        "/",
        "Directory on the server to back up."
    ),
    key!(
        "ftps.include",
        List,
        false,
        "",
        "Glob patterns (relative to `ftps.path`); when set, only matching files are backed up."
    ),
    key!(
        "ftps.exclude",
        List,
        false,
        "",
        "Glob patterns (relative to `ftps.path`) of files and directories to skip."
    ),
    key!(
        "ftps.ca_file",
        Text,
        false,
        "",
        "PEM file of CA certificates to trust instead of the system roots."
    ),
    key!(
        "ftps.server_name",
        Text,
        false,
        "",
        "Name the server certificate must carry, when it differs from `ftps.host`."
    ),
    key!(
        "ftps.insecure_skip_verify",
        Bool,
        false,
        "false",
        "Accept any server certificate. Only for testing: it allows a man in the middle."
    ),
    key!(
        "ftps.max_connections",
        Number,
        false,
        "4",
        "FTPS connections used in parallel for listing and downloads."
    ),
    key!(
        "ftps.timeout_secs",
        Number,
        false,
        "30",
        "Timeout of connects and of stalled transfers, in seconds."
    ),
    key!(
        "ftps.retries",
        Number,
        false,
        "3",
        "Retries of a failed listing or download before the run fails."
    ),
    key!(
        "ftps.clock_skew_secs",
        Number,
        false,
        "3600",
        "How far the server's clock may be behind the job's. Servers without MLSD: a file whose LIST line matches the previous snapshot skips MDTM only if its LIST minute ended this long before that snapshot."
    ),
    key!(
        "repository.hot_dir",
        Text,
        false,
        "",
        "Local directory (the hot PersistentVolume) holding the repository metadata."
    ),
    key!(
        "repository.cold_dir",
        Text,
        false,
        "",
        "Local directory for the cold part instead of S3 (development only)."
    ),
    key!(
        "repository.password",
        Text,
        true,
        "",
        "Repository encryption password."
    ),
    key!(
        "s3.endpoint",
        Text,
        false,
        "",
        "S3 endpoint URL of the cold storage, e.g. `https://s3.eu-central-1.amazonaws.com`."
    ),
    key!("s3.region", Text, false, "us-east-1", "S3 region."),
    key!(
        "s3.bucket",
        Text,
        false,
        "",
        "The customer's bucket; the repository lives under `<resource>/` in it."
    ),
    key!("s3.access_key_id", Text, true, "", "S3 access key id."),
    key!(
        "s3.secret_access_key",
        Text,
        true,
        "",
        "S3 secret access key."
    ),
    key!(
        "s3.path_style",
        Bool,
        false,
        "true",
        "Path-style addressing (MinIO, SeaweedFS); `false` for virtual-host style."
    ),
    key!(
        "s3.object_lock_days",
        Number,
        false,
        "",
        "The bucket's Object Lock retention in days. When a prune runs, every object the repository still has whose lock ends within twice `maintenance.prune_interval_days` is locked again until now + these days (as Kopia's `--extend-object-locks`), so data a kept snapshot needs never becomes deletable; must exceed twice the prune interval."
    ),
    key!(
        "restore.ftps.host",
        Text,
        false,
        "",
        "Another FTPS server to restore to (`restore --to-ftps`), instead of `ftps.host`."
    ),
    key!(
        "restore.ftps.port",
        Number,
        false,
        "21",
        "Its control port."
    ),
    key!(
        "restore.ftps.username",
        Text,
        false,
        "",
        "Its FTP user."
    ),
    key!(
        "restore.ftps.password",
        Text,
        true,
        "",
        "Its FTP password."
    ),
    key!(
        "restore.ftps.path",
        Text,
        false,
        "/",
        "The directory on it that stands for the backed-up one (a restore goes to this path, plus the path inside the snapshot)."
    ),
    key!(
        "restore.ftps.ca_file",
        Text,
        false,
        "",
        "PEM file of CA certificates to trust for it instead of the system roots."
    ),
    key!(
        "restore.ftps.server_name",
        Text,
        false,
        "",
        "Name its certificate must carry, when it differs from `restore.ftps.host`."
    ),
    key!(
        "restore.ftps.insecure_skip_verify",
        Bool,
        false,
        "false",
        "Accept any certificate from it. Only for testing."
    ),
    key!(
        "restore.s3.endpoint",
        Text,
        false,
        "",
        "Another S3 endpoint to restore to (`restore --to-s3`), instead of the repository's bucket."
    ),
    key!(
        "restore.s3.region",
        Text,
        false,
        "us-east-1",
        "Its region."
    ),
    key!(
        "restore.s3.bucket",
        Text,
        false,
        "",
        "Its bucket."
    ),
    key!(
        "restore.s3.access_key_id",
        Text,
        true,
        "",
        "Its access key id."
    ),
    key!(
        "restore.s3.secret_access_key",
        Text,
        true,
        "",
        "Its secret access key."
    ),
    key!(
        "restore.s3.path_style",
        Bool,
        false,
        "true",
        "Path-style addressing for it."
    ),
    key!("infisical.site_url", Text, false, "", "Infisical site, e.g. `https://app.infisical.com`; with it, credentials not set otherwise are read from Infisical."),
    key!("infisical.client_id", Text, true, "", "Client id of the machine identity (universal auth)."),
    key!("infisical.client_secret", Text, true, "", "Client secret of the machine identity."),
    key!("infisical.project_id", Text, false, "", "Infisical project (workspace) id."),
    key!("infisical.environment", Text, false, "", "Infisical environment slug, e.g. `prod`."),
    key!("infisical.secret_path", Text, false, "/", "Folder of the secrets in the project."),
    key!("infisical.ftps_username_key", Text, false, "FTP_USERNAME", "Infisical secret holding `ftps.username`."),
    key!("infisical.ftps_password_key", Text, false, "FTP_PASSWORD", "Infisical secret holding `ftps.password`."),
    key!("infisical.repository_password_key", Text, false, "REPOSITORY_PASSWORD", "Infisical secret holding `repository.password`."),
    key!("infisical.s3_access_key_id_key", Text, false, "S3_ACCESS_KEY_ID", "Infisical secret holding `s3.access_key_id`."),
    key!("infisical.s3_secret_access_key_key", Text, false, "S3_SECRET_ACCESS_KEY", "Infisical secret holding `s3.secret_access_key`."),
    key!(
        "summary_path",
        Text,
        false,
        "/dev/termination-log",
        "Where the JSON run summary is written (at most 4096 bytes); empty to skip."
    ),
    key!(
        "progress_interval_secs",
        Number,
        false,
        "5",
        "Seconds between progress lines; 0 disables them."
    ),
    key!(
        "retention.keep_last",
        Number,
        false,
        "",
        "After each successful backup keep the last n snapshots of the resource. With no `retention.*` rule set: `keep_last` 7, `keep_daily` 7, `keep_weekly` 5, `keep_monthly` 12."
    ),
    key!(
        "retention.keep_hourly",
        Number,
        false,
        "",
        "Keep the newest snapshot of each of the last n hours that have one."
    ),
    key!(
        "retention.keep_daily",
        Number,
        false,
        "",
        "Keep the newest snapshot of each of the last n days that have one."
    ),
    key!(
        "retention.keep_weekly",
        Number,
        false,
        "",
        "Keep the newest snapshot of each of the last n weeks that have one."
    ),
    key!(
        "retention.keep_monthly",
        Number,
        false,
        "",
        "Keep the newest snapshot of each of the last n months that have one."
    ),
    key!(
        "retention.keep_yearly",
        Number,
        false,
        "",
        "Keep the newest snapshot of each of the last n years that have one."
    ),
    key!(
        "retention.keep_within",
        Text,
        false,
        "",
        "Keep every snapshot younger than this, counted back from the newest (e.g. `30d`, `1y 2mo`)."
    ),
    key!(
        "maintenance.prune_interval_days",
        Number,
        false,
        "7",
        "Days between prunes, run inside a successful backup after the retention rules (two-phase, never reads data packs from the bucket); a missed prune runs at the next backup; 0 prunes after every backup."
    ),
    key!(
        "maintenance.check_slices",
        Number,
        false,
        "30",
        "Each successful backup checks the repository and reads one of this many slices of the data packs back from the bucket, in turn (every pack once per n backups); damage fails the run as `RepositoryDamaged` (exit 4) and later backups still run; 0 turns the read off."
    ),
    key!(
        "anomaly.enabled",
        Bool,
        false,
        "true",
        "Compare each backup's change profile with the resource's recent runs; an anomaly tags the snapshot `anomaly` and holds the newest snapshot before it (never forgotten until released); `false` computes neither the change profile nor a verdict."
    ),
    key!(
        "anomaly.min_files",
        Number,
        false,
        "20",
        "Fewer deleted, changed or renamed files than this are never an anomaly (a small site editing most of its pages is a normal day)."
    ),
    key!(
        "anomaly.factor",
        Number,
        false,
        "3",
        "A rate is an anomaly only above this many times its highest value in the resource's last 30 normal runs, so a resource that churns by nature does not page at every run."
    ),
    key!(
        "anomaly.deleted_percent",
        Number,
        false,
        "20",
        "Percent of the parent snapshot's files deleted in one run that is an anomaly (`MassDeletion`): a wiped or replaced site."
    ),
    key!(
        "anomaly.changed_percent",
        Number,
        false,
        "30",
        "Percent of the parent snapshot's files whose content changed in one run that is an anomaly (`MassChange`): sites are edited a few pages at a time, encryption rewrites nearly all."
    ),
    key!(
        "anomaly.incompressible_percent",
        Number,
        false,
        "25",
        "Percent of the changed files whose new content no longer compresses though their previous content did that is an anomaly (`EncryptedContent`); judged from the first 64 KiB of each file as it streams, files under 4 KiB are not judged."
    ),
    key!(
        "anomaly.renamed_percent",
        Number,
        false,
        "5",
        "Percent of the parent snapshot's files renamed to an extension never seen in the resource that is an anomaly (`NewExtensions`): ransomware's mark."
    ),
    key!(
        "anomaly.release_hold",
        Text,
        false,
        "",
        "A held snapshot (id or id prefix) whose hold the next backup releases; an id that is not held is ignored."
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
    }

    #[test]
    fn env_names_follow_the_yaml_path() {
        let key = CONFIG_KEYS
            .iter()
            .find(|k| k.path == "ftps.max_connections")
            .expect("key listed");
        assert_eq!(key.env_name(), "UNSTOPPABLE_FTPS_MAX_CONNECTIONS");
    }

    #[test]
    fn documented_defaults_are_the_defaults_applied() {
        // Only the required fields: everything else takes its serde default.
        let cfg: JobConfig = serde_json::from_value(serde_json::json!({
            "customer": "c", "resource": "r",
            "ftps": {"host": "h", "username": "u", "password": "p"},
            "repository": {"hot_dir": "h", "password": "p"},
            "s3": {"endpoint": "e", "bucket": "b", "access_key_id": "a", "secret_access_key": "s"},
            "infisical": {"site_url": "https://i", "client_id": "i", "client_secret": "s",
                          "project_id": "p", "environment": "e"},
            "restore": {"ftps": {"host": "h"}, "s3": {"endpoint": "e", "bucket": "b"}},
        }))
        .expect("minimal config");
        let value = serde_json::to_value(&cfg).expect("json");
        let mut checked = 0;
        for key in CONFIG_KEYS.iter().filter(|k| !k.default.is_empty()) {
            let applied = key
                .path
                .split('.')
                .try_fold(&value, |v, part| v.get(part))
                .unwrap_or_else(|| panic!("{} has no value", key.path));
            let applied = match applied {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(
                applied, key.default,
                "the documented default of {}",
                key.path
            );
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} defaults checked");
    }

    #[test]
    fn every_key_is_a_field_of_the_config() {
        // Serialising a full config lists every field; each documented key must be one of them.
        let yaml_paths: Vec<&str> = CONFIG_KEYS.iter().map(|k| k.path).collect();
        let cfg = JobConfig {
            customer: "c".into(),
            resource: "r".into(),
            ftps: Some(FtpsConfig {
                host: "h".into(),
                port: 21,
                username: "u".into(),
                password: Secret::new("p"),
                path: "/".into(),
                include: vec![],
                exclude: vec![],
                ca_file: Some("ca".into()),
                server_name: Some("s".into()),
                insecure_skip_verify: false,
                max_connections: 4,
                timeout_secs: 30,
                retries: 3,
                clock_skew_secs: 3600,
            }),
            repository: RepositoryConfig {
                hot_dir: "h".into(),
                cold_dir: Some("c".into()),
                password: Secret::new("p"),
            },
            s3: Some(S3Config {
                endpoint: "e".into(),
                region: "r".into(),
                bucket: "b".into(),
                access_key_id: Secret::new("a"),
                secret_access_key: Secret::new("s"),
                path_style: true,
                object_lock_days: Some(30),
            }),
            infisical: Some(InfisicalConfig {
                site_url: "https://i".into(),
                client_id: Secret::new("i"),
                client_secret: Secret::new("s"),
                project_id: "p".into(),
                environment: "e".into(),
                secret_path: "/".into(),
                ftps_username_key: "a".into(),
                ftps_password_key: "b".into(),
                repository_password_key: "c".into(),
                s3_access_key_id_key: "d".into(),
                s3_secret_access_key_key: "e".into(),
            }),
            summary_path: "x".into(),
            progress_interval_secs: 5,
            retention: RetentionConfig {
                keep_last: Some(1),
                keep_hourly: Some(1),
                keep_daily: Some(1),
                keep_weekly: Some(1),
                keep_monthly: Some(1),
                keep_yearly: Some(1),
                keep_within: Some("1d".into()),
            },
            maintenance: MaintenanceConfig::default(),
            anomaly: AnomalyConfig {
                release_hold: Some("abc".into()),
                ..AnomalyConfig::default()
            },
            restore: Some(RestoreConfig {
                ftps: Some(RestoreFtpsConfig {
                    host: "h".into(),
                    port: 21,
                    username: "u".into(),
                    password: Secret::new("p"),
                    path: "/".into(),
                    ca_file: Some("ca".into()),
                    server_name: Some("s".into()),
                    insecure_skip_verify: false,
                }),
                s3: Some(RestoreS3Config {
                    endpoint: "e".into(),
                    region: "r".into(),
                    bucket: "b".into(),
                    access_key_id: Secret::new("a"),
                    secret_access_key: Secret::new("s"),
                    path_style: true,
                }),
            }),
        };
        let value = serde_json::to_value(&cfg).expect("serialisable");
        let mut fields = Vec::new();
        collect_paths(&value, "", &mut fields);
        fields.sort();
        let mut documented: Vec<String> = yaml_paths.iter().map(|s| s.to_string()).collect();
        documented.sort();
        assert_eq!(fields, documented);
    }

    fn collect_paths(value: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    collect_paths(v, &path, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }
}
