//! The contract between the unstoppable operator and its backup job.
//!
//! The operator renders a [`JobConfig`] into the job pod's environment and reads the job's
//! [`RunSummary`] back from the pod's termination message. Both crates depend on this one, so it
//! stays free of heavy dependencies.

mod config;
mod summary;

pub use config::{
    defaults, AnomalyConfig, ConfigKey, FtpsConfig, InfisicalConfig, JobConfig, KeyKind,
    MaintenanceConfig, RepositoryConfig, RestoreConfig, RestoreFtpsConfig, RestoreS3Config,
    RetentionConfig, S3Config, Secret, CONFIG_KEYS,
};
pub use summary::{
    anomaly_reason, Anomaly, AnomalyReason, ChangeProfile, CheckOutcome, DirChanges, FailedPath,
    LockOutcome, PruneOutcome, RecoverOutcome, RepositorySize, RestoreOutcome, RetentionOutcome,
    RunResult, RunSummary, SUMMARY_MAX_BYTES, SUMMARY_MAX_FAILED_PATHS,
};

/// Process exit codes of `unstoppable-job`.
pub mod exit_code {
    /// The command did what it was asked.
    pub const SUCCESS: i32 = 0;
    /// The run failed (source, repository or verification error); no snapshot was written.
    pub const RUN_FAILED: i32 = 1;
    /// The configuration is invalid; nothing was attempted.
    pub const BAD_CONFIG: i32 = 2;
    /// A snapshot was written, tagged `incomplete`, but some paths could not be read (restic's
    /// "snapshot created, but some source data could not be read").
    pub const INCOMPLETE: i32 = 3;
    /// The backup's snapshot was written, but the check after it found damage in the repository.
    pub const REPOSITORY_DAMAGED: i32 = 4;
}

/// Values of [`RunSummary::reason`]: why a run did not succeed, short and stable.
pub mod reason {
    /// Some paths could not be read; the snapshot is tagged `incomplete` (exit code 3).
    pub const PATHS_UNREADABLE: &str = "PathsUnreadable";
    /// A restore could not write some paths to its target (exit code 3).
    pub const PATHS_UNWRITABLE: &str = "PathsUnwritable";
    /// Another run of the same repository holds the hot directory's lock.
    pub const REPOSITORY_LOCKED: &str = "RepositoryLocked";
    /// The FTPS server could not be used (connection, TLS, login, server gone).
    pub const SOURCE_FAILED: &str = "SourceFailed";
    /// The repository (hot directory or the S3 bucket) could not be read or written.
    pub const REPOSITORY_FAILED: &str = "RepositoryFailed";
    /// Credentials could not be fetched (Infisical).
    pub const SECRETS_FAILED: &str = "SecretsFailed";
    /// The configuration is invalid.
    pub const BAD_CONFIG: &str = "BadConfig";
    /// The check after a backup found damage in the repository (exit code 4).
    pub const REPOSITORY_DAMAGED: &str = "RepositoryDamaged";
    /// A restore or check failed.
    pub const COMMAND_FAILED: &str = "CommandFailed";
}
