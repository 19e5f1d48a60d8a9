//! The FTPS source: explicit TLS, passive mode, a bounded connection pool, recursive listing
//! (MLSD or LIST + MDTM) and lazy, streamed downloads into rustic_core's archiver.

mod conn;
mod listing;
mod pool;
mod reader;
mod source;
mod stats;
pub mod tls;
mod walk;

pub use conn::Connector;
pub use listing::{detect_mode, with_retries};
pub use listing::{Kind, RemoteEntry};
pub use pool::Pool;
pub use source::{FtpsSource, SourceOptions};
pub use stats::SourceStats;

/// What went wrong talking to the FTPS server, phrased for the person who has to fix it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FtpsError {
    #[error("cannot connect to {addr}: {detail}; check ftps.host/ftps.port and that the server is reachable")]
    Connect { addr: String, detail: String },
    #[error("TLS with the FTPS server failed: {0}")]
    Tls(String),
    #[error("login as `{user}` refused: {detail}; check ftps.username/ftps.password")]
    Login { user: String, detail: String },
    #[error("listing `{path}` failed: {detail}")]
    Listing { path: String, detail: String },
    #[error("download of `{path}` failed: {detail}")]
    Transfer { path: String, detail: String },
    #[error("FTPS server: {0}")]
    Protocol(String),
}

impl FtpsError {
    /// Errors that another attempt cannot fix.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Tls(_) | Self::Login { .. })
    }
}
