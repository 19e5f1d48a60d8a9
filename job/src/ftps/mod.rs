//! The FTPS source: explicit TLS, passive mode, a bounded connection pool, recursive listing
//! (MLSD or LIST + MDTM) and lazy, streamed downloads into rustic_core's archiver.

mod completeness;
mod conn;
mod datacmd;
mod dating;
mod error;
mod failures;
mod flushing;
mod list_time;
mod listing;
mod pool;
mod reader;
mod retry;
mod source;
mod stats;
pub mod tls;
mod walk;

pub use conn::Connector;
pub use conn::Ftp;
pub use dating::{Dating, KnownFiles, Previous};
pub use error::FtpsError;
pub use failures::{Failures, LOG_LIMIT};
pub use list_time::Known;
pub use listing::detect_mode;
pub use listing::{join, list_dir, Kind, ListingMode, RemoteEntry};
pub use pool::Pool;
pub use retry::with_retries;
pub use source::{FtpsSource, SourceOptions};
pub use stats::SourceStats;
pub use walk::{Filter, Walk, WalkItem};
