//! The one rustls client configuration shared by every control and data connection, so that data
//! connections resume the control connection's TLS session (vsftpd's `require_ssl_reuse`).

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::CertificateError;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::FtpsError;

/// Which certificates the client trusts.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The operating system's roots.
    System,
    /// Only the CAs in this PEM file.
    CaFile(String),
    /// Anything. Testing only.
    InsecureSkipVerify,
}

/// More than one crypto provider is compiled into the job (the AWS SDK brings aws-lc-rs), so the provider
/// is chosen explicitly: `ClientConfig::builder()` would panic.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration, and why its verifier last refused a server certificate.
#[derive(Debug, Clone)]
pub struct Tls {
    pub config: Arc<ClientConfig>,
    pub refusals: Arc<Refusals>,
}

/// Why the server's certificate was last refused. suppaftp hands TLS failures on as text only;
/// the verifier keeps rustls' typed reason so that the error can say what to fix.
#[derive(Debug, Default)]
pub struct Refusals(Mutex<Option<CertificateError>>);

impl Refusals {
    pub fn take(&self) -> Option<CertificateError> {
        self.0.lock().ok().and_then(|mut r| r.take())
    }

    fn record(&self, e: &CertificateError) {
        if let Ok(mut r) = self.0.lock() {
            *r = Some(e.clone());
        }
    }
}

pub fn client_config(trust: &Trust) -> Result<Tls, FtpsError> {
    let refusals = Arc::new(Refusals::default());
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| FtpsError::Tls(format!("TLS setup: {e}")))?;
    // The standard WebPKI verifier, only wrapped to keep the reason of a refusal.
    let verifying = |roots: RootCertStore| -> Result<ClientConfig, FtpsError> {
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| FtpsError::Tls(format!("TLS setup: {e}")))?;
        Ok(builder
            .clone()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Recording {
                inner,
                refusals: refusals.clone(),
            }))
            .with_no_client_auth())
    };
    let config = match trust {
        Trust::System => {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A broken system certificate must not make every other root unusable.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(FtpsError::Tls(
                    "no system CA certificates found; install ca-certificates or set ftps.ca_file"
                        .into(),
                ));
            }
            verifying(roots)?
        }
        Trust::CaFile(path) => {
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| FtpsError::Tls(format!("ftps.ca_file {path}: {e}")))?;
            for cert in certs {
                let cert = cert.map_err(|e| FtpsError::Tls(format!("ftps.ca_file {path}: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| FtpsError::Tls(format!("ftps.ca_file {path}: {e}")))?;
            }
            if roots.is_empty() {
                return Err(FtpsError::Tls(format!(
                    "ftps.ca_file {path} holds no PEM certificate"
                )));
            }
            verifying(roots)?
        }
        Trust::InsecureSkipVerify => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
            .with_no_client_auth(),
    };
    Ok(Tls {
        config: Arc::new(config),
        refusals,
    })
}

/// The WebPKI verifier, recording why it refused a certificate.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    refusals: Arc<Refusals>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if let Err(rustls::Error::InvalidCertificate(e)) = &verdict {
            self.refusals.record(e);
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    // Signatures are still checked: skipping verification of the certificate's issuer is the only
    // thing this switch does.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
