//! Nothing is missing without the run saying so, and what could be read is protected: cut
//! listings, refused files, vanished files and a second run of the same repository, against
//! pure-ftpd, vsftpd and pyftpdlib.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::servers::{PureFtpd, Pyftpd, Vsftpd, VsftpdOptions};
use common::tree::{time, write_file, Rng};
use common::{assert_same_tree, restic_check, JobEnv, TestDir};
use unstoppable_contract::{reason, RunResult};

fn tree_of(root: &Path, big_dir_files: usize) {
    let mut rng = Rng::new(11);
    for i in 0..big_dir_files {
        let len = 1 + rng.below(3000) as usize;
        let data = rng.bytes(len);
        write_file(
            &root.join(format!("many/f{i:03}.dat")),
            &data,
            time(10 + i as u64),
        )
        .expect("write");
    }
    write_file(&root.join("ok/a.txt"), b"a\n", time(1)).expect("write");
    write_file(&root.join("ok/b.txt"), b"bb\n", time(2)).expect("write");
    write_file(&root.join("top.txt"), b"top\n", time(3)).expect("write");
}

/// Files below `root`, relative, for comparing what a snapshot holds.
fn files_below(root: &Path) -> Vec<String> {
    common::tree::manifest(root)
        .expect("manifest")
        .into_iter()
        .filter(|(_, (kind, _, _))| *kind == 'f')
        .map(|(path, _)| path.display().to_string())
        .collect()
}

#[test]
fn pure_ftpd_cut_listing_and_refused_name_give_an_incomplete_snapshot_then_a_complete_one() {
    let mut server = PureFtpd::start(40);
    tree_of(&server.data(), 60);
    // pure-ftpd refuses to send names with a backslash (553 Prohibited file name).
    write_file(&server.data().join("ok/back\\slash.txt"), b"x", time(4)).expect("write");
    let work = TestDir::new();
    let mut env = JobEnv::new("acme", "pure", &work.join("hot"));
    env.cold_dir(&work.join("cold")).ftps(server.port, "/");

    let run = env.run(&["backup"]);
    assert_eq!(
        run.code, 3,
        "expected exit 3:\n{}\n{}",
        run.stdout, run.stderr
    );
    let s = run.summary();
    assert_eq!(s.result(), RunResult::Incomplete);
    assert!(!s.success);
    assert_eq!(s.reason.as_deref(), Some(reason::PATHS_UNREADABLE));
    assert_eq!(s.failed_paths, 2, "{s:?}");
    let many = s
        .failures
        .iter()
        .find(|f| f.path == "/many")
        .unwrap_or_else(|| panic!("the cut directory is named: {s:?}"));
    assert!(
        many.reason.contains("truncated") && many.reason.contains("-L"),
        "{many:?}"
    );
    let refused = s
        .failures
        .iter()
        .find(|f| f.path.ends_with("back\\slash.txt"))
        .unwrap_or_else(|| panic!("the refused file is named: {s:?}"));
    assert!(refused.reason.contains("553"), "{refused:?}");
    let snapshots = env.run(&["snapshots"]);
    assert!(
        snapshots.stderr.contains("incomplete"),
        "the snapshot is tagged:\n{}",
        snapshots.stderr
    );

    // Everything that could be read is in the snapshot, byte-exact.
    let restored = work.join("restored-incomplete");
    env.run(&["restore", "--target", &restored.display().to_string()])
        .assert_ok();
    let got = files_below(&restored);
    let in_many = got.iter().filter(|p| p.starts_with("many/")).count();
    assert!(
        (1..60).contains(&in_many),
        "the cut listing's entries are kept: {in_many}"
    );
    assert!(!got.iter().any(|p| p.contains("slash")));
    for path in &got {
        assert_eq!(
            std::fs::read(restored.join(path)).expect("restored file"),
            std::fs::read(server.data().join(path)).expect("source file"),
            "{path}"
        );
    }
    env.assert_check_clean();
    restic_check(&work.join("cold/pure"));

    // With the cap raised and the bad name gone, the next run is complete; it downloads exactly
    // the files its incomplete parent lacks.
    std::fs::remove_file(server.data().join("ok/back\\slash.txt")).expect("remove");
    server.restart(1000);
    let s = env.run(&["backup"]).assert_ok();
    assert_eq!(s.result(), RunResult::Success);
    assert_eq!(s.files_new, 60 - in_many as u64, "{s:?}");
    assert_eq!(s.files_downloaded, 60 - in_many as u64, "{s:?}");
    let restored = work.join("restored");
    env.run(&["restore", "--target", &restored.display().to_string()])
        .assert_ok();
    assert_same_tree(&server.data(), &restored);
}

#[test]
fn many_refused_files_give_a_short_log_and_a_summary_that_fits() {
    let server = PureFtpd::start(1000);
    tree_of(&server.data(), 0);
    for i in 0..80 {
        write_file(
            &server.data().join(format!("bad/name\\{i:02}.txt")),
            b"x",
            time(5),
        )
        .expect("write");
    }
    let work = TestDir::new();
    let mut env = JobEnv::new("acme", "noisy", &work.join("hot"));
    env.cold_dir(&work.join("cold")).ftps(server.port, "/");
    let run = env.run(&["backup"]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let s = run.summary();
    assert_eq!(s.failed_paths, 80);
    assert!(!s.failures.is_empty() && s.failures.len() <= 5);
    let last = run.stdout.lines().last().unwrap_or_default();
    assert!(last.len() <= unstoppable_contract::SUMMARY_MAX_BYTES);
    let per_path = run
        .stderr
        .lines()
        .filter(|l| l.contains("cannot read"))
        .count();
    assert_eq!(
        per_path,
        unstoppable_job::ftps::LOG_LIMIT as usize,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("80 paths could not be read in all"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.lines().count() < 40,
        "the log of a failing run stays short:\n{}",
        run.stderr
    );
}

#[test]
fn vsftpd_refused_file_and_unlistable_directory_give_exit_3_and_keep_the_rest() {
    use std::os::unix::fs::PermissionsExt;
    let server = Vsftpd::start(VsftpdOptions::default());
    tree_of(&server.data(), 5);
    let work = TestDir::new();
    let mut env = JobEnv::new("acme", "partly", &work.join("hot"));
    env.cold_dir(&work.join("cold")).ftps(server.port, "/data");
    env.run(&["backup"]).assert_ok();

    let unreadable = server.data().join("ok/unreadable.bin");
    write_file(&unreadable, b"secret", time(8)).expect("write");
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let locked = server.data().join("locked");
    write_file(&locked.join("inside.txt"), b"x", time(9)).expect("write");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    write_file(&server.data().join("ok/new.txt"), b"new\n", time(10)).expect("write");

    let run = env.run(&["backup"]);
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let s = run.summary();
    assert_eq!(s.failed_paths, 2, "{s:?}");
    let paths: Vec<&str> = s.failures.iter().map(|f| f.path.as_str()).collect();
    assert!(paths.contains(&"/data/ok/unreadable.bin"), "{paths:?}");
    assert!(paths.contains(&"/data/locked"), "{paths:?}");
    assert_eq!(s.files_new, 1, "only ok/new.txt is new: {s:?}");
    assert!(s
        .error
        .unwrap_or_default()
        .contains("2 paths could not be read"));
    assert_eq!(env.snapshot_count(), 2);
    env.assert_check_clean();

    // The incomplete snapshot holds everything else, byte-exact.
    std::fs::remove_file(&unreadable).expect("remove");
    std::fs::remove_dir_all(&locked).expect("remove");
    let restored = work.join("restored");
    env.run(&["restore", "--target", &restored.display().to_string()])
        .assert_ok();
    assert_same_tree(&server.data(), &restored);
}

#[test]
fn a_file_that_vanishes_before_its_download_is_counted_not_failed() {
    let work = TestDir::new();
    let root = work.join("served");
    tree_of(&root, 3);
    write_file(&root.join("ok/gone.txt"), b"soon gone\n", time(7)).expect("write");
    let server = Pyftpd::start_with(&root, Some("gone.txt"));
    let mut env = JobEnv::new("acme", "vanishing", &work.join("hot"));
    env.cold_dir(&work.join("cold")).ftps(server.port, "/");
    let run = env.run(&["backup"]);
    let s = run.assert_ok();
    assert_eq!(s.files_vanished, 1, "{s:?}");
    assert_eq!(s.failed_paths, 0);
    assert!(!root.join("ok/gone.txt").exists());
    let restored = work.join("restored");
    env.run(&["restore", "--target", &restored.display().to_string()])
        .assert_ok();
    assert_same_tree(&root, &restored);
}

#[test]
fn a_file_that_keeps_changing_while_read_is_left_out_and_the_run_says_so() {
    let work = TestDir::new();
    let root = work.join("served");
    tree_of(&root, 3);
    write_file(&root.join("ok/app.log"), b"first line\n", time(7)).expect("write");
    let server = Pyftpd::start_with_hooks(&root, None, Some("app.log"));
    let mut env = JobEnv::new("acme", "changing", &work.join("hot"));
    env.cold_dir(&work.join("cold")).ftps(server.port, "/");
    env.set("UNSTOPPABLE_FTPS_RETRIES", "1");
    let run = env.run(&["backup"]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let s = run.summary();
    assert_eq!(s.failed_paths, 1, "{s:?}");
    assert_eq!(s.failures[0].path, "/ok/app.log");
    assert!(
        s.failures[0].reason.contains("changed while being read"),
        "{:?}",
        s.failures[0]
    );
    let restored = work.join("restored");
    env.run(&["restore", "--target", &restored.display().to_string()])
        .assert_ok();
    assert!(!restored.join("ok/app.log").exists(), "no half-read file");
    assert_eq!(
        std::fs::read(restored.join("ok/a.txt")).expect("a.txt"),
        b"a\n"
    );
    env.assert_check_clean();
}

#[test]
fn a_second_run_of_the_same_repository_is_refused_while_the_first_completes() {
    let server = Vsftpd::start(VsftpdOptions {
        max_rate: Some(512 * 1024),
        ..Default::default()
    });
    tree_of(&server.data(), 3);
    write_file(
        &server.data().join("slow.bin"),
        &Rng::new(5).bytes(2 * 1024 * 1024),
        time(50),
    )
    .expect("write");
    let work = TestDir::new();
    let mut env = JobEnv::new("acme", "busy", &work.join("hot"));
    env.cold_dir(&work.join("cold")).ftps(server.port, "/data");
    let first = Command::new(env!("CARGO_BIN_EXE_unstoppable-job"))
        .arg("backup")
        .env_clear()
        .envs(&env.vars)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the first run");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.retr_paths().iter().any(|p| p.ends_with("slow.bin")) {
        assert!(Instant::now() < deadline, "the first run never downloaded");
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    let second = env.run(&["backup"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refused at once"
    );
    assert_eq!(second.code, 1, "{}\n{}", second.stdout, second.stderr);
    let s = second.summary();
    assert_eq!(s.reason.as_deref(), Some(reason::REPOSITORY_LOCKED));
    assert!(
        s.error.unwrap_or_default().contains("another run"),
        "{}",
        second.stderr
    );
    let out = first.wait_with_output().expect("first run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.snapshot_count(), 1);
    env.assert_check_clean();
}
