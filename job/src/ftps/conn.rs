use std::sync::Arc;
use std::time::Duration;

use rustls::CertificateError;
use suppaftp::tokio::ImplAsyncFtpStream;
use suppaftp::types::FileType;
use suppaftp::{FtpError, Mode, Status};
use tokio::net::TcpStream;
use unstoppable_contract::Secret;

use super::flushing::{FlushingTls, FlushingTlsConnector};
use super::tls::Tls;
use super::FtpsError;

pub type Ftp = ImplAsyncFtpStream<FlushingTls>;

/// Opens logged-in, TLS-protected control connections. Each control connection and its data
/// connections share one rustls `ClientConfig`, whose session cache lets the data connections
/// resume the control connection's TLS session.
pub struct Connector {
    addr: String,
    server_name: String,
    tls: Tls,
    username: String,
    password: Secret,
    timeout: Duration,
}

impl Connector {
    pub fn new(
        host: &str,
        port: u16,
        server_name: Option<&str>,
        tls: Tls,
        username: &str,
        password: Secret,
        timeout: Duration,
    ) -> Self {
        Self {
            addr: if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            },
            server_name: server_name.unwrap_or(host).to_string(),
            tls,
            username: username.to_string(),
            password,
            timeout,
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub async fn connect(&self) -> Result<Ftp, FtpsError> {
        let connect_err = |detail: String| FtpsError::Connect {
            addr: self.addr.clone(),
            detail,
        };
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| connect_err(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| connect_err(e.to_string()))?;
        // Commands are small and latency-bound: never let Nagle hold one back.
        let _ = tcp.set_nodelay(true);
        let ftp = self
            .with_timeout(Ftp::connect_with_stream(tcp))
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        let connector = FlushingTlsConnector(tokio_rustls::TlsConnector::from(
            per_connection_config(&self.tls.config),
        ));
        let mut ftp = self
            .with_timeout(ftp.into_secure(connector, &self.server_name))
            .await
            .map_err(|e| tls_error(&self.addr, e, self.tls.refusals.take()))?;
        // Data connections go to the control connection's peer, whatever address PASV names: this
        // works behind NAT and refuses to be redirected to a third host.
        ftp.set_mode(Mode::Passive);
        ftp.set_passive_nat_workaround(true);
        let mut ftp = ftp.passive_stream_builder(|addr| {
            Box::pin(async move {
                let tcp = TcpStream::connect(addr)
                    .await
                    .map_err(FtpError::ConnectionError)?;
                let _ = tcp.set_nodelay(true);
                Ok(tcp)
            })
        });
        self.with_timeout(ftp.login(self.username.as_str(), self.password.expose()))
            .await
            .map_err(|e| FtpsError::Login {
                user: self.username.clone(),
                detail: e.to_string(),
            })?;
        self.with_timeout(ftp.transfer_type(FileType::Binary))
            .await
            .map_err(|e| FtpsError::Protocol(format!("TYPE I refused: {e}")))?;
        Ok(ftp)
    }

    async fn with_timeout<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, FtpError>>,
    ) -> Result<T, FtpError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(result) => result,
            Err(_) => Err(FtpError::ConnectionError(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {:?}", self.timeout),
            ))),
        }
    }
}

/// The shared configuration with a session store of this control connection's own, which its data
/// connections then resume. Multi-process servers such as vsftpd run every control connection in
/// a process with its own ticket keys: a ticket from another connection cannot be resumed there,
/// and a data connection that does not resume is refused ("522 session reuse required").
fn per_connection_config(shared: &Arc<rustls::ClientConfig>) -> Arc<rustls::ClientConfig> {
    let mut config = rustls::ClientConfig::clone(shared);
    config.resumption = rustls::client::Resumption::in_memory_sessions(16);
    Arc::new(config)
}

/// `refused`: why the verifier refused the server's certificate, if it did.
fn tls_error(addr: &str, err: FtpError, refused: Option<CertificateError>) -> FtpsError {
    let detail = err.to_string();
    // Nothing refused: the connection broke or was garbled, and a new one may get through.
    if refused.is_none() && matches!(err, FtpError::SecureError(_) | FtpError::ConnectionError(_)) {
        return FtpsError::Handshake(format!("{addr}: {detail}"));
    }
    let hint = match (&err, refused) {
        (
            FtpError::SecureError(_),
            Some(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }),
        ) => "; the server certificate is for another name: set ftps.server_name to a name it carries",
        (
            FtpError::SecureError(_),
            Some(CertificateError::Expired | CertificateError::ExpiredContext { .. }),
        ) => "; the server certificate has expired (or this machine's clock is wrong)",
        (FtpError::SecureError(_), Some(_)) => {
            "; the server certificate is not trusted: set ftps.ca_file to the CA that signed it"
        }
        // The refusal of AUTH TLS is a reply code.
        (FtpError::UnexpectedResponse(reply), _)
            if matches!(
                reply.status,
                Status::NotLoggedIn | Status::BadCommand | Status::NotImplemented | Status::BadArguments
            ) =>
        {
            "; the server does not offer explicit TLS (AUTH TLS)"
        }
        _ => "",
    };
    FtpsError::Tls(format!("{addr}: {detail}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_handshake_that_broke_off_with_nothing_refused_is_tried_again() {
        let garbled = || FtpError::SecureError("received corrupt message".into());
        assert!(!tls_error("h:21", garbled(), None).is_permanent());
        let untrusted = tls_error("h:21", garbled(), Some(CertificateError::UnknownIssuer));
        assert!(untrusted.is_permanent());
        assert!(
            untrusted.to_string().contains("ftps.ca_file"),
            "{untrusted}"
        );
    }
}
