//! What can go wrong talking to an FTPS server, and which of it another attempt can fix.

/// What went wrong talking to the FTPS server, phrased for the person who has to fix it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FtpsError {
    #[error("cannot connect to {addr}: {detail}; check ftps.host/ftps.port and that the server is reachable")]
    Connect { addr: String, detail: String },
    #[error("TLS with the FTPS server failed: {0}")]
    Tls(String),
    /// The handshake broke off with nothing refused (no certificate, no AUTH TLS): a reset or
    /// garbled connection, which a new connection may not meet.
    #[error("TLS handshake with the FTPS server broke off: {0}")]
    Handshake(String),
    #[error("login as `{user}` refused: {detail}; check ftps.username/ftps.password")]
    Login { user: String, detail: String },
    #[error("listing `{path}` failed: {detail}")]
    Listing { path: String, detail: String },
    #[error("download of `{path}` failed: {detail}")]
    Transfer { path: String, detail: String },
    /// The server answered a command about this one path with a refusal (a 4xx or 5xx reply);
    /// other paths are not affected.
    #[error("{op} `{path}` refused: {detail}")]
    Refused {
        path: String,
        op: &'static str,
        code: u32,
        detail: String,
    },
    /// The file's content differs from what the listing said while it is being read.
    #[error("`{path}` changed while being read: {detail}")]
    Changed { path: String, detail: String },
    #[error("FTPS server: {0}")]
    Protocol(String),
}

impl FtpsError {
    /// Errors that another attempt cannot fix: TLS and login problems, permanent refusals
    /// (5xx: RFC 959 discourages repeating the request), content that changed under us.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Tls(_) | Self::Login { .. } | Self::Changed { .. } => true,
            Self::Refused { code, .. } => *code >= 500,
            _ => false,
        }
    }

    /// Errors about one path that leave the rest of the run meaningful: the snapshot is written
    /// without that path and the run is incomplete. Everything else ends the run.
    pub fn affects_one_path(&self) -> bool {
        matches!(self, Self::Refused { .. } | Self::Changed { .. })
    }

    /// A refusal that may mean the path no longer exists (550 / 450 "file unavailable").
    pub fn may_mean_missing(&self) -> bool {
        matches!(
            self,
            Self::Refused {
                code: 450 | 550,
                ..
            }
        )
    }

    /// `err` of `op` on `path`: a refusal when the server answered with an error reply, else a
    /// failure of the connection made by `other`.
    pub(crate) fn from_ftp(
        err: suppaftp::FtpError,
        op: &'static str,
        path: &str,
        other: impl FnOnce(String) -> FtpsError,
    ) -> FtpsError {
        match err {
            suppaftp::FtpError::UnexpectedResponse(response) => {
                let text = String::from_utf8_lossy(&response.body).trim().to_string();
                // Codes suppaftp does not know map to `Unknown` (0): read them from the text.
                let code = text
                    .get(..3)
                    .and_then(|c| c.parse::<u32>().ok())
                    .unwrap_or_else(|| response.status.code());
                if (400..600).contains(&code) {
                    FtpsError::Refused {
                        path: path.to_string(),
                        op,
                        code,
                        detail: text,
                    }
                } else {
                    other(format!("unexpected reply {text:?}"))
                }
            }
            other_err => other(other_err.to_string()),
        }
    }
}
