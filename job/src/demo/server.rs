//! The demo's in-process FTPS server: libunftp over a local directory, with a freshly generated
//! CA and server certificate (rustls refuses a self-signed CA as a server certificate).

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use libunftp::options::FtpsRequired;
use libunftp::ServerBuilder;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::task::JoinHandle;
use unftp_sbe_fs::Filesystem;

pub struct DemoServer {
    pub port: u16,
    pub ca_file: PathBuf,
    task: JoinHandle<()>,
}

impl DemoServer {
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Writes `ca.pem`, `server.pem` and `server.key` into `dir`; returns the CA path.
pub fn generate_certificates(dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf), String> {
    let err = |e: rcgen::Error| format!("generating certificates: {e}");
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "unstoppable demo CA");
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(err)?;
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf_key = KeyPair::generate().map_err(err)?;
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).map_err(err)?;

    let ca_file = dir.join("ca.pem");
    let cert_file = dir.join("server.pem");
    let key_file = dir.join("server.key");
    let write =
        |p: &Path, s: String| std::fs::write(p, s).map_err(|e| format!("{}: {e}", p.display()));
    write(&ca_file, ca_cert.pem())?;
    write(&cert_file, leaf.pem())?;
    write(&key_file, leaf_key.serialize_pem())?;
    Ok((ca_file, cert_file, key_file))
}

/// Serves `root` over explicit FTPS on a free loopback port. Any user name and password log in.
pub async fn start_server(root: &Path, tls_dir: &Path) -> Result<DemoServer, String> {
    let (ca_file, cert_file, key_file) = generate_certificates(tls_dir)?;
    let port = free_port()?;
    let root = root.to_path_buf();
    Filesystem::new(root.clone()).map_err(|e| format!("{}: {e}", root.display()))?;
    let server = ServerBuilder::new(Box::new(move || {
        // Checked just above; the directory is the demo's own.
        Filesystem::new(root.clone()).expect("demo root exists")
    }))
    .ftps(cert_file, key_file)
    .ftps_required(FtpsRequired::All, FtpsRequired::All)
    .passive_ports(50000..=50999)
    .build()
    .map_err(|e| format!("FTPS server: {e}"))?;
    let addr = format!("127.0.0.1:{port}");
    let task = tokio::spawn(async move {
        if let Err(e) = server.listen(addr).await {
            tracing::error!("demo FTPS server stopped: {e}");
        }
    });
    // Wait until it accepts connections.
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(DemoServer {
                port,
                ca_file,
                task,
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Err(format!("the demo FTPS server did not start on port {port}"))
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}
