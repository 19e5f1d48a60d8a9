//! The contract between the unstoppable operator and its backup job.
//!
//! The operator renders a [`JobConfig`] into the job pod's environment and reads the job's
//! [`RunSummary`] back from the pod's termination message. Both crates depend on this one, so it
//! stays free of heavy dependencies.

mod config;
mod summary;

pub use config::{
    ConfigKey, FtpsConfig, InfisicalConfig, JobConfig, KeyKind, RepositoryConfig, S3Config, Secret,
    CONFIG_KEYS,
};
pub use summary::{RunSummary, SUMMARY_MAX_BYTES};

/// Process exit codes of `unstoppable-job`.
pub mod exit_code {
    /// The command did what it was asked.
    pub const SUCCESS: i32 = 0;
    /// The run failed (source, repository or verification error); no snapshot was written.
    pub const RUN_FAILED: i32 = 1;
    /// The configuration is invalid; nothing was attempted.
    pub const BAD_CONFIG: i32 = 2;
}
