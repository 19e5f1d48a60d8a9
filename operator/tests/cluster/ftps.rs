//! An FTPS server for the tests on the real control plane: pyftpdlib (the job's test fixture)
//! with a certificate from a fresh test CA.

use std::path::Path;
use std::process::{Child, Command, Stdio};

pub const USER: &str = "backup";
pub const PASSWORD: &str = "ftp-secret-password";

/// A CA and a server certificate for 127.0.0.1 (rustls refuses a self-signed CA as end entity).
pub fn certificates(dir: &Path) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let run = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(Stdio::null())
            .status()
            .expect("openssl")
            .success();
        assert!(ok, "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("ext"),
        "basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    (
        std::fs::read_to_string(dir.join("ca.pem")).expect("ca"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

pub struct Ftps(Child);

impl Drop for Ftps {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// pyftpdlib with explicit TLS serving `root`; a file named `app.log` grows whenever it is read.
pub fn ftps_server(root: &Path, cert: &Path, key: &Path) -> (Ftps, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let pasv = 36000 + (std::process::id() % 100) as u16 * 20;
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../job/tests/fixtures/mlsd_ftps_server.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(root)
        .arg(port.to_string())
        .arg(cert)
        .arg(key)
        .args([USER, PASSWORD])
        .args([pasv.to_string(), (pasv + 19).to_string()])
        .args(["-", "app.log"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("pyftpdlib (run scripts/install-test-deps.sh)");
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    assert_eq!(line.trim(), "ready");
    (Ftps(child), port)
}

/// The BackupResource `www` of customer `acme` in `ns`, backing up `/site` of the test FTPS server
/// on `port` (CA from the key `ca.pem` of the customer's Secret), created through the API.
pub async fn create_site_resource(client: &kube::Client, ns: &str, port: u16, schedule: &str) {
    use unstoppable_operator::crd::{BackupResource, SecretKeyRef};
    let mut resource = BackupResource::test();
    resource.metadata = Default::default();
    resource.metadata.name = Some("www".into());
    resource.metadata.namespace = Some(ns.into());
    resource.spec.schedule = schedule.into();
    let ftps = &mut resource.spec.source.ftps;
    ftps.host = "127.0.0.1".into();
    ftps.port = i32::from(port);
    ftps.path = "/site".into();
    ftps.tls.ca_secret_ref = Some(SecretKeyRef {
        name: "acme-credentials".into(),
        key: "ca.pem".into(),
    });
    let resources: kube::Api<BackupResource> = kube::Api::namespaced(client.clone(), ns);
    resources
        .create(&kube::api::PostParams::default(), &resource)
        .await
        .expect("resource");
}
