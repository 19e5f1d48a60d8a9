//! The shared harness of the job's integration tests: real servers (vsftpd, pyftpdlib, SeaweedFS),
//! the job binary run as a user runs it, and tree helpers.
#![allow(dead_code)]

pub mod infisical;
pub mod s3;
pub mod servers;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The longest any single run of the job takes in these tests is about a minute.
const JOB_TIMEOUT: Duration = Duration::from_secs(600);

use unstoppable_contract::RunSummary;

pub use unstoppable_job::demo::tree;

/// A temporary directory other users can read (vsftpd serves it as an unprivileged user).
pub struct TestDir(tempfile::TempDir);

impl TestDir {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("unstoppable-test-")
            .tempdir()
            .expect("temporary directory");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod temp dir");
        Self(dir)
    }
    pub fn path(&self) -> &Path {
        self.0.path()
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.path().join(p)
    }
}

/// One run of `unstoppable-job`, as a user would start it.
#[derive(Debug)]
pub struct JobRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl JobRun {
    /// The JSON summary on the last stdout line.
    pub fn summary(&self) -> RunSummary {
        let last = self.stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last).unwrap_or_else(|e| {
            panic!(
                "last stdout line is not a summary ({e}): {last:?}\nstderr:\n{}",
                self.stderr
            )
        })
    }

    pub fn assert_ok(&self) -> RunSummary {
        assert_eq!(
            self.code, 0,
            "job failed:\n{}\n{}",
            self.stdout, self.stderr
        );
        let s = self.summary();
        assert!(s.success, "{s:?}");
        // Whoever runs the job may alert on ERROR lines: a run that succeeded logs none.
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.contains("ERROR"))
            .collect();
        assert!(
            errors.is_empty(),
            "a successful run logged errors:\n{}",
            errors.join("\n")
        );
        s
    }
}

/// Environment for the job: starts from nothing (no ambient variables leak in) plus `vars`.
#[derive(Debug, Clone, Default)]
pub struct JobEnv {
    pub vars: BTreeMap<String, String>,
}

impl JobEnv {
    pub fn new(customer: &str, resource: &str, hot: &Path) -> Self {
        let mut env = Self::default();
        env.set("UNSTOPPABLE_CUSTOMER", customer)
            .set("UNSTOPPABLE_RESOURCE", resource)
            .set("UNSTOPPABLE_REPOSITORY_HOT_DIR", &hot.display().to_string())
            .set(
                "UNSTOPPABLE_REPOSITORY_PASSWORD",
                "test-repository-password",
            )
            .set("UNSTOPPABLE_SUMMARY_PATH", "")
            .set("UNSTOPPABLE_FTPS_TIMEOUT_SECS", "10");
        env
    }

    pub fn set(&mut self, key: &str, value: &str) -> &mut Self {
        self.vars.insert(key.to_string(), value.to_string());
        self
    }

    /// Points the job at a test FTPS server on `port`, backing up `path`.
    pub fn ftps(&mut self, port: u16, path: &str) -> &mut Self {
        self.set("UNSTOPPABLE_FTPS_HOST", "127.0.0.1")
            .set("UNSTOPPABLE_FTPS_PORT", &port.to_string())
            .set("UNSTOPPABLE_FTPS_USERNAME", servers::FTP_USER)
            .set("UNSTOPPABLE_FTPS_PASSWORD", servers::FTP_PASSWORD)
            .set("UNSTOPPABLE_FTPS_PATH", path)
            .set(
                "UNSTOPPABLE_FTPS_CA_FILE",
                &servers::tls().ca.display().to_string(),
            )
    }

    pub fn cold_dir(&mut self, dir: &Path) -> &mut Self {
        self.set(
            "UNSTOPPABLE_REPOSITORY_COLD_DIR",
            &dir.display().to_string(),
        )
    }

    pub fn run(&self, args: &[&str]) -> JobRun {
        let mut child = Command::new(env!("CARGO_BIN_EXE_unstoppable-job"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .envs(&self.vars)
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run unstoppable-job");
        let read = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut out = Vec::new();
                let _ = pipe.read_to_end(&mut out);
                String::from_utf8_lossy(&out).into_owned()
            })
        };
        let stdout = read(Box::new(child.stdout.take().expect("stdout")));
        let stderr = read(Box::new(child.stderr.take().expect("stderr")));
        // A run that hangs fails its test with what it printed, instead of stalling the suite.
        let deadline = Instant::now() + JOB_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for unstoppable-job") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let run = JobRun {
            code: status.and_then(|s| s.code()).unwrap_or(-1),
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        };
        assert!(
            status.is_some(),
            "unstoppable-job {args:?} did not finish within {JOB_TIMEOUT:?}; killed.\nstdout:\n{}\nstderr:\n{}",
            run.stdout,
            run.stderr
        );
        run
    }

    /// Number of snapshots in the repository (`snapshots` must succeed).
    pub fn snapshot_count(&self) -> usize {
        let run = self.run(&["snapshots"]);
        if run.code != 0 && run.stderr.contains("no repository found") {
            return 0;
        }
        run.assert_ok();
        run.stderr.lines().filter(|l| l.contains("host=")).count()
    }

    pub fn assert_check_clean(&self) {
        let run = self.run(&["check", "--read-data"]);
        run.assert_ok();
    }
}

/// Runs restic, an independent implementation of the repository format.
pub fn restic(env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    Command::new("restic")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("restic (run scripts/install-test-deps.sh)")
}

/// `restic check --read-data` of a local (cold) repository must pass.
pub fn restic_check(repo: &Path) {
    let cache = repo.with_extension("restic-cache");
    let out = restic(
        &[
            ("RESTIC_PASSWORD", "test-repository-password"),
            ("RESTIC_CACHE_DIR", &cache.display().to_string()),
        ],
        &["-r", &repo.display().to_string(), "check", "--read-data"],
    );
    assert!(
        out.status.success(),
        "restic check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts that `restored` equals `expected` in every path, byte and file mtime.
pub fn assert_same_tree(expected: &Path, restored: &Path) {
    let diffs = tree::compare(expected, restored).expect("compare trees");
    assert!(diffs.is_empty(), "trees differ:\n{}", diffs.join("\n"));
    let files = tree::manifest(expected)
        .expect("manifest")
        .values()
        .filter(|(k, _, _)| *k == 'f')
        .count();
    assert!(files > 0, "compared an empty tree");
}
