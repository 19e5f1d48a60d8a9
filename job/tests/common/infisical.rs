//! The Infisical stand-in (`fixtures/infisical_standin.py`) as a test server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TestDir;

pub struct InfisicalStandIn {
    child: Child,
    pub url: String,
    log: PathBuf,
    _dir: TestDir,
}

impl InfisicalStandIn {
    pub fn start(state: serde_json::Value) -> Self {
        let prefix = state["prefix"].as_str().unwrap_or_default().to_string();
        let dir = TestDir::new();
        let state_file = dir.join("state.json");
        std::fs::write(&state_file, state.to_string()).expect("state");
        let port_file = dir.join("port");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/infisical_standin.py");
        let child = Command::new("python3")
            .arg(script)
            .arg(&state_file)
            .arg(&port_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let deadline = Instant::now() + Duration::from_secs(10);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                if let Ok(p) = p.trim().parse::<u16>() {
                    break p;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the Infisical stand-in did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            child,
            url: format!("http://127.0.0.1:{port}{prefix}"),
            log: PathBuf::from(format!("{}.log", state_file.display())),
            _dir: dir,
        }
    }

    /// Requests so far, one "METHOD PATH STATUS" each.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Requests that start with `prefix` ("GET /api/v4/secrets 404").
    pub fn count(&self, prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.starts_with(prefix))
            .count()
    }

    pub fn logins(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.starts_with("POST /api/v1/auth/universal-auth/login 200"))
            .count()
    }
}

impl Drop for InfisicalStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
