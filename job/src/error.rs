use unstoppable_contract::{exit_code, reason};

use crate::config::ConfigError;
use crate::ftps::FtpsError;

/// Every way a command of the job can fail, with a message a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Source(#[from] FtpsError),
    /// The source failed after the archiver started; the message is the first failure.
    #[error("{0}")]
    Run(String),
    #[error("{0}")]
    Repository(String),
    /// Another run holds the repository's lock.
    #[error("{0}")]
    Locked(String),
    #[error("{0}")]
    Restore(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Config(_) => exit_code::BAD_CONFIG,
            _ => exit_code::RUN_FAILED,
        }
    }

    /// The summary's `reason` code.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Config(_) => reason::BAD_CONFIG,
            Self::Source(_) | Self::Run(_) => reason::SOURCE_FAILED,
            Self::Repository(_) => reason::REPOSITORY_FAILED,
            Self::Locked(_) => reason::REPOSITORY_LOCKED,
            Self::Restore(_) => reason::COMMAND_FAILED,
        }
    }
}
