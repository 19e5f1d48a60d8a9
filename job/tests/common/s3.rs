//! The SeaweedFS S3 server started by `scripts/test.sh`, buckets for tests, and a recording proxy
//! that shows which headers our S3 requests carry.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};

use super::JobEnv;

pub struct S3 {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

/// The S3 server of this test run; `scripts/test.sh` starts it and exports these variables.
pub fn s3() -> S3 {
    let var = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!("{k} is not set: run the tests with scripts/test.sh, which starts SeaweedFS")
        })
    };
    S3 {
        endpoint: var("UNSTOPPABLE_TEST_S3_ENDPOINT"),
        access_key: var("UNSTOPPABLE_TEST_S3_ACCESS_KEY"),
        secret_key: var("UNSTOPPABLE_TEST_S3_SECRET_KEY"),
    }
}

impl S3 {
    /// Runs the aws CLI against this server.
    pub fn aws(&self, args: &[&str]) -> std::process::Output {
        Command::new("aws")
            .arg("--endpoint-url")
            .arg(&self.endpoint)
            .args(["--region", "us-east-1"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &self.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_key)
            .output()
            .expect("aws CLI (run scripts/install-test-deps.sh)")
    }

    pub fn create_bucket(&self, name: &str, object_lock: bool) {
        let mut args = vec!["s3api", "create-bucket", "--bucket", name];
        if object_lock {
            args.push("--object-lock-enabled-for-bucket");
        }
        let out = self.aws(&args);
        assert!(
            out.status.success(),
            "create bucket {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Points the job at `bucket` on `endpoint` (this server, or a proxy in front of it).
    pub fn configure(&self, env: &mut JobEnv, endpoint: &str, bucket: &str) {
        env.set("UNSTOPPABLE_S3_ENDPOINT", endpoint)
            .set("UNSTOPPABLE_S3_BUCKET", bucket)
            .set("UNSTOPPABLE_S3_ACCESS_KEY_ID", &self.access_key)
            .set("UNSTOPPABLE_S3_SECRET_ACCESS_KEY", &self.secret_key);
    }
}

/// An HTTP/1.1 proxy that records every request head and forwards it (one request per
/// connection: it asks both sides to close after each exchange).
pub struct RecordingProxy {
    pub endpoint: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl RecordingProxy {
    pub fn start(upstream: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let recorded = heads.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let upstream = upstream.clone();
                let recorded = recorded.clone();
                std::thread::spawn(move || {
                    let _ = forward(client, &upstream, &recorded);
                });
            }
        });
        Self { endpoint, heads }
    }

    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

fn forward(
    client: TcpStream,
    upstream: &str,
    recorded: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let done = line == "\r\n";
        if !line.to_ascii_lowercase().starts_with("connection:") && !done {
            head.push(line);
        }
        if done {
            break;
        }
    }
    recorded
        .lock()
        .map_err(|_| std::io::Error::other("poisoned"))?
        .push(head.concat());
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(head.concat().as_bytes())?;
    server.write_all(b"Connection: close\r\n\r\n")?;
    // Whatever the reader buffered beyond the head is body: send it first.
    let buffered = reader.buffer().to_vec();
    server.write_all(&buffered)?;
    let mut to_server = server.try_clone()?;
    let mut from_client = reader.into_inner();
    let upload = std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_server);
    });
    let mut to_client = client;
    let mut from_server = server.try_clone()?;
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = from_server.read(&mut buf)?;
        if n == 0 {
            break;
        }
        to_client.write_all(&buf[..n])?;
    }
    let _ = to_client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    let _ = upload.join();
    Ok(())
}
