//! The SeaweedFS S3 server started by `scripts/test.sh`, buckets for tests, and a proxy that
//! records which headers our S3 requests carry and injects faults (5xx, reset connections,
//! stalls) at chosen requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

    /// `aws s3api <args>`, which must succeed, as JSON.
    pub fn s3api(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["s3api"];
        all.extend_from_slice(args);
        let out = self.aws(&all);
        assert!(
            out.status.success(),
            "s3api {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("s3api answers JSON")
    }

    /// The objects under `prefix` as (key, size), without the back-end's directory markers
    /// (`www/data/00/`).
    pub fn objects(&self, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
        let listed = self.s3api(&["list-objects-v2", "--bucket", bucket, "--prefix", prefix]);
        listed["Contents"]
            .as_array()
            .map(|objects| {
                objects
                    .iter()
                    .filter_map(|o| Some((o["Key"].as_str()?.to_string(), o["Size"].as_u64()?)))
                    .filter(|(key, _)| !key.ends_with('/'))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A bucket with Object Lock whose default retention locks every new version for `days` in
    /// COMPLIANCE mode (nobody can shorten or remove it).
    pub fn create_compliance_bucket(&self, name: &str, days: u32) {
        self.create_bucket(name, true);
        let rule = format!(
            r#"{{"ObjectLockEnabled":"Enabled","Rule":{{"DefaultRetention":{{"Mode":"COMPLIANCE","Days":{days}}}}}}}"#
        );
        let out = self.aws(&[
            "s3api",
            "put-object-lock-configuration",
            "--bucket",
            name,
            "--object-lock-configuration",
            &rule,
        ]);
        assert!(
            out.status.success(),
            "lock bucket {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs restic with this server's keys and the test repository password (`cache` keeps its
    /// cache out of the user's home).
    pub fn restic(&self, cache: &std::path::Path, args: &[&str]) -> std::process::Output {
        let cache = cache.display().to_string();
        super::restic(
            &[
                ("RESTIC_PASSWORD", "test-repository-password"),
                ("AWS_ACCESS_KEY_ID", self.access_key.as_str()),
                ("AWS_SECRET_ACCESS_KEY", self.secret_key.as_str()),
                ("RESTIC_CACHE_DIR", cache.as_str()),
            ],
            args,
        )
    }

    /// Points the job at `bucket` on `endpoint` (this server, or a proxy in front of it).
    pub fn configure(&self, env: &mut JobEnv, endpoint: &str, bucket: &str) {
        env.set("UNSTOPPABLE_S3_ENDPOINT", endpoint)
            .set("UNSTOPPABLE_S3_BUCKET", bucket)
            .set("UNSTOPPABLE_S3_ACCESS_KEY_ID", &self.access_key)
            .set("UNSTOPPABLE_S3_SECRET_ACCESS_KEY", &self.secret_key);
    }
}

/// Which requests a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Uploads (PUT).
    Put,
    /// Object reads (GET of a key).
    Get,
    /// Listings (GET with `list-type=` in the query).
    List,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `500 InternalError`, after reading the request.
    ServerError,
    /// The connection closes without an answer.
    Reset,
    /// Nothing comes back for this long; then the connection closes without an answer.
    Stall(Duration),
}

/// `fault` for the requests of `target` after the first `skip` of them, `times` times
/// (`usize::MAX`: for good).
#[derive(Debug, Clone, Copy)]
pub struct FaultRule {
    pub target: Target,
    pub skip: usize,
    pub times: usize,
    pub fault: Fault,
}

#[derive(Debug, Default)]
struct Faults {
    rules: Vec<(FaultRule, usize)>,
    seen: [usize; 3],
    injected: Vec<(Target, Fault, String)>,
}

impl Faults {
    /// The fault for this request, if a rule hits it.
    fn decide(&mut self, head: &str) -> Option<Fault> {
        let line = head.lines().next().unwrap_or_default();
        let mut parts = line.split(' ');
        let (method, target) = (parts.next()?, parts.next()?);
        let kind = match method {
            "PUT" => Target::Put,
            "GET" if target.contains("list-type=") => Target::List,
            "GET" => Target::Get,
            _ => return None,
        };
        let n = &mut self.seen[kind as usize];
        let index = *n;
        *n += 1;
        for (rule, used) in &mut self.rules {
            if rule.target == kind && index >= rule.skip && *used < rule.times {
                *used += 1;
                self.injected.push((kind, rule.fault, target.to_string()));
                return Some(rule.fault);
            }
        }
        None
    }
}

/// An HTTP/1.1 proxy that records every request head and forwards it (one request per
/// connection: it asks both sides to close after each exchange), or injects a fault.
pub struct RecordingProxy {
    pub endpoint: String,
    heads: Arc<Mutex<Vec<String>>>,
    faults: Arc<Mutex<Faults>>,
}

impl RecordingProxy {
    pub fn start(upstream: &str) -> Self {
        Self::with_faults(upstream, &[])
    }

    pub fn with_faults(upstream: &str, rules: &[FaultRule]) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let faults = Arc::new(Mutex::new(Faults {
            rules: rules.iter().map(|r| (*r, 0)).collect(),
            ..Default::default()
        }));
        let recorded = heads.clone();
        let plan = faults.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let upstream = upstream.clone();
                let recorded = recorded.clone();
                let plan = plan.clone();
                std::thread::spawn(move || {
                    let _ = forward(client, &upstream, &recorded, &plan);
                });
            }
        });
        Self {
            endpoint,
            heads,
            faults,
        }
    }

    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// The faults injected so far: what, which kind of request, and its target.
    pub fn injected(&self) -> Vec<(Target, Fault, String)> {
        self.faults
            .lock()
            .map(|f| f.injected.clone())
            .unwrap_or_default()
    }

    /// Replaces the fault rules (and forgets how many requests were seen).
    pub fn set_faults(&self, rules: &[FaultRule]) {
        if let Ok(mut f) = self.faults.lock() {
            f.rules = rules.iter().map(|r| (*r, 0)).collect();
            f.seen = [0; 3];
        }
    }
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

fn forward(
    client: TcpStream,
    upstream: &str,
    recorded: &Mutex<Vec<String>>,
    faults: &Mutex<Faults>,
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
    let fault = faults
        .lock()
        .map_err(|_| std::io::Error::other("poisoned"))?
        .decide(&head.concat());
    match fault {
        None => {}
        Some(Fault::ServerError) => {
            // Read the body first, as a server does, so the client sees the answer.
            let mut body = vec![0u8; content_length(&head.concat())];
            let _ = reader.read_exact(&mut body);
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>injected by the test</Message></Error>";
            let mut client = reader.into_inner();
            write!(
                client,
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            )?;
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        Some(Fault::Reset) => {
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        Some(Fault::Stall(d)) => {
            std::thread::sleep(d);
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
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
