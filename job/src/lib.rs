//! The unstoppable backup job: configuration → FTPS source → rustic repository → run summary.

pub mod backup;
pub mod changes;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod error;
pub mod ftps;
pub mod hold;
pub mod hot_state;
pub mod lock;
pub mod maintenance;
pub mod previous;
mod progress;
pub mod recover;
pub mod repo;
pub mod restore;
pub mod retention;
pub mod s3client;
pub mod secrets;
pub mod summary;
pub mod upkeep;

pub use error::Error;
