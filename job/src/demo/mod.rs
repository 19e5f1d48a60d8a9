//! `unstoppable-job demo`: the whole job on one machine with no setup. An in-process FTPS server
//! (libunftp, generated certificates) serves a generated tree; the job backs it up into a local
//! hot and cold directory, backs up again after one change, restores and verifies every byte.
//! Built only with the `demo` feature, so production images carry no FTP server.

mod server;
pub mod tree;

use std::path::{Path, PathBuf};

use tokio::runtime::Runtime;
use unstoppable_contract::{FtpsConfig, JobConfig, RepositoryConfig, Secret};

pub use server::{generate_certificates, start_server, DemoServer};

pub fn run(rt: &Runtime, workdir: Option<PathBuf>) -> Result<(), String> {
    let temp;
    let base = match workdir {
        Some(dir) => dir,
        None => {
            temp = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
            temp.path().to_path_buf()
        }
    };
    let src = base.join("ftp-root/site");
    std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
    tree::sample_tree(&src, 42, 300).map_err(|e| format!("sample tree: {e}"))?;
    let server = rt.block_on(start_server(&base.join("ftp-root"), &base.join("tls")))?;
    println!(
        "1. FTPS server (in-process, explicit TLS, passive) on 127.0.0.1:{}",
        server.port
    );
    println!("   serving a generated tree of {} files", count_files(&src));

    let cfg = demo_config(&base, &server);
    let first =
        crate::backup::run(&cfg, rt, None, None).map_err(|e| format!("first backup: {e}"))?;
    println!(
        "2. full backup: snapshot {} — {} files new, downloaded {} files ({} bytes), repository grew by {} bytes",
        short(&first.snapshot_id),
        first.files_new,
        first.files_downloaded,
        first.bytes_downloaded,
        first.bytes_added
    );

    let changed = src.join("projects/p03/src/file-0003.dat");
    tree::write_file(&changed, b"changed by the demo\n", tree::time(99_999))
        .map_err(|e| format!("changing a file: {e}"))?;
    let second =
        crate::backup::run(&cfg, rt, None, None).map_err(|e| format!("second backup: {e}"))?;
    println!(
        "3. changed one file, incremental backup: snapshot {} — {} changed, {} unmodified, downloaded {} file(s) ({} bytes)",
        short(&second.snapshot_id),
        second.files_changed,
        second.files_unmodified,
        second.files_downloaded,
        second.bytes_downloaded
    );
    if second.files_downloaded != 1 {
        return Err(format!(
            "the incremental backup downloaded {} files; expected exactly the 1 changed file",
            second.files_downloaded
        ));
    }

    let target = base.join("restored");
    crate::restore::run(
        &cfg,
        rt,
        &crate::restore::Request::latest_to(target.clone()),
    )
    .map_err(|e| format!("restore: {e}"))?;
    let diffs = tree::compare(&src, &target).map_err(|e| format!("comparing: {e}"))?;
    if !diffs.is_empty() {
        return Err(format!(
            "restore differs from the source: {}",
            diffs.join("; ")
        ));
    }
    println!(
        "4. restored the latest snapshot to {}: every file's bytes and modification time match the server",
        target.display()
    );
    crate::maintenance::check(&cfg, true, None).map_err(|e| format!("check: {e}"))?;
    println!("5. repository check (with data) passed");
    println!("   hot part (metadata): {}", cfg.repository.hot_dir);
    println!(
        "   cold part (all data): {}/{}",
        base.join("cold").display(),
        cfg.resource
    );
    rt.block_on(server.stop());
    Ok(())
}

fn demo_config(base: &Path, server: &DemoServer) -> JobConfig {
    JobConfig {
        customer: "demo-customer".into(),
        resource: "demo-site".into(),
        ftps: Some(FtpsConfig {
            host: "127.0.0.1".into(),
            port: server.port,
            username: "demo".into(),
            password: Secret::new("demo"),
            path: "/site".into(),
            include: vec![],
            exclude: vec![],
            ca_file: Some(server.ca_file.display().to_string()),
            server_name: None,
            insecure_skip_verify: false,
            max_connections: 4,
            timeout_secs: 30,
            retries: 3,
            clock_skew_secs: 3600,
        }),
        repository: RepositoryConfig {
            hot_dir: base.join("hot").display().to_string(),
            cold_dir: Some(base.join("cold").display().to_string()),
            password: Secret::new("demo-repository-password"),
        },
        s3: None,
        infisical: None,
        summary_path: String::new(),
        progress_interval_secs: 0,
        retention: Default::default(),
        maintenance: Default::default(),
        restore: None,
        anomaly: Default::default(),
    }
}

fn count_files(dir: &Path) -> usize {
    tree::manifest(dir)
        .map(|m| m.values().filter(|(k, _, _)| *k == 'f').count())
        .unwrap_or(0)
}

fn short(id: &Option<String>) -> String {
    id.as_deref()
        .map(|s| s.chars().take(8).collect())
        .unwrap_or_default()
}
