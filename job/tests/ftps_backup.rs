//! The job against real servers: vsftpd (LIST + MDTM, TLS session reuse), pyftpdlib (MLSD),
//! SeaweedFS (S3), and restic as an independent reader of what we write.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::s3::{s3, RecordingProxy};
use common::servers::{free_port, Pyftpd, Vsftpd, VsftpdOptions, FTP_PASSWORD};
use common::tree::{time, write_file, Rng};
use common::{assert_same_tree, restic, JobEnv, TestDir};

fn ftps_env(env: &mut JobEnv, port: u16, path: &str) {
    env.ftps(port, path);
}

/// The awkward cases: nested and empty directories, empty files, spaces, non-ASCII, a dotfile,
/// and names that sort differently as strings than as paths (`a-b` vs `a/b`).
fn awkward_tree(root: &Path, big_file: usize) {
    let mut rng = Rng::new(7);
    std::fs::create_dir_all(root.join("empty/deeper/still empty")).expect("dirs");
    write_file(&root.join("empty file"), b"", time(1)).expect("write");
    write_file(&root.join(".hidden"), b"dot\n", time(2)).expect("write");
    write_file(
        &root.join("spaces in name/ä ö ü ß €.txt"),
        "grüße\n".as_bytes(),
        time(3),
    )
    .expect("write");
    write_file(
        &root.join("日本語/ファイル.txt"),
        "テスト\n".as_bytes(),
        time(4),
    )
    .expect("write");
    write_file(&root.join("a/b"), b"a/b\n", time(5)).expect("write");
    write_file(&root.join("a-b"), b"a-b\n", time(6)).expect("write");
    write_file(&root.join("a.b/c"), b"a.b/c\n", time(7)).expect("write");
    for i in 0..40 {
        let len = 1 + rng.below(20_000) as usize;
        let data = rng.bytes(len);
        write_file(
            &root.join(format!("nested/d{}/e{}/f{i}.dat", i % 3, i % 5)),
            &data,
            time(100 + i),
        )
        .expect("write");
    }
    if big_file > 0 {
        let data = rng.bytes(big_file);
        write_file(&root.join("big/larger than a pack.bin"), &data, time(1000)).expect("write");
    }
}

#[test]
fn full_backup_to_s3_restores_byte_exact_and_restic_reads_it() {
    let server = Vsftpd::start(VsftpdOptions::default());
    // Larger than a data pack (16 MiB): the file spans packs.
    awkward_tree(&server.data(), 40 * 1024 * 1024);
    let s3 = s3();
    let bucket = &format!("round-trip-{}", std::process::id());
    s3.create_bucket(bucket, false);
    let proxy = RecordingProxy::start(&s3.endpoint);
    let work = TestDir::new();
    let mut env = JobEnv::new("acme", "www", &work.join("hot"));
    ftps_env(&mut env, server.port, "/data");
    s3.configure(&mut env, &proxy.endpoint, bucket);

    let summary = env.run(&["backup"]).assert_ok();
    let files = 48;
    assert_eq!(summary.files_new, files, "{summary:?}");
    assert_eq!(summary.files_downloaded, files);
    assert!(summary.bytes_downloaded > 40 * 1024 * 1024);
    assert!(summary.snapshot_id.is_some());

    // Every upload carries a checksum, as AWS requires for Object-Lock buckets.
    let puts: Vec<String> = proxy
        .heads()
        .into_iter()
        .filter(|h| h.starts_with("PUT "))
        .collect();
    assert!(puts.len() >= 5, "expected uploads, saw {}", puts.len());
    for put in &puts {
        assert!(
            put.to_ascii_lowercase().contains("x-amz-checksum-crc32c:"),
            "PUT without checksum header:\n{put}"
        );
    }
    // Packs are not hashed a second time for the request signature (the checksum and the
    // repository's own authentication guard them).
    let packs: Vec<&String> = puts.iter().filter(|h| h.contains("/data/")).collect();
    assert!(!packs.is_empty(), "no pack uploads among {puts:?}");
    for put in packs {
        assert!(
            put.to_ascii_lowercase()
                .contains("x-amz-content-sha256: unsigned-payload"),
            "pack PUT with a signed payload:\n{put}"
        );
    }

    // Data packs of a fixed 16 MiB (a pack closes at the first blob past it, and a blob is at
    // most 8 MiB): the packs in flight, and so the job's memory, do not grow with the repository.
    let packs = s3.objects(bucket, "www/data/");
    assert!(packs.len() >= 3, "{packs:?}");
    assert!(
        packs.iter().all(|(_, size)| *size < 24 * 1024 * 1024),
        "{packs:?}"
    );

    let restored = work.join("restored");
    env.run(&["restore", "--target", &restored.display().to_string()])
        .assert_ok();
    assert_same_tree(&server.data(), &restored);

    // restic, an independent implementation, reads the cold part on its own.
    let repo = format!("s3:{}/{bucket}/www", s3.endpoint);
    let renv = [
        ("RESTIC_PASSWORD", "test-repository-password"),
        ("AWS_ACCESS_KEY_ID", s3.access_key.as_str()),
        ("AWS_SECRET_ACCESS_KEY", s3.secret_key.as_str()),
        (
            "RESTIC_CACHE_DIR",
            &*work.join("restic-cache").display().to_string().leak(),
        ),
    ];
    let out = restic(&renv, &["-r", &repo, "snapshots", "--json"]);
    assert!(
        out.status.success(),
        "restic snapshots: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("restic JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let out = restic(&renv, &["-r", &repo, "check", "--read-data"]);
    assert!(
        out.status.success(),
        "restic check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let by_restic = work.join("restic-restore");
    let out = restic(
        &renv,
        &[
            "-r",
            &repo,
            "restore",
            "latest",
            "--target",
            &by_restic.display().to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "restic restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_tree(&server.data(), &by_restic);
}

#[test]
fn incremental_downloads_exactly_the_changed_and_new_files() {
    let server = Vsftpd::start(VsftpdOptions::default());
    awkward_tree(&server.data(), 0);
    let work = TestDir::new();
    let mut env = JobEnv::new("acme", "files", &work.join("hot"));
    env.cold_dir(&work.join("cold"));
    ftps_env(&mut env, server.port, "/data");

    let first = env.run(&["backup"]).assert_ok();
    assert_eq!(server.retr_count() as u64, first.files_new);

    // Nothing changed: nothing is downloaded (parent matching sees every file, `a-b` included).
    let before = server.retr_count();
    let same = env.run(&["backup"]).assert_ok();
    assert_eq!(
        server.retr_count(),
        before,
        "unchanged files were downloaded"
    );
    assert_eq!(same.files_unmodified, first.files_new);
    assert_eq!(
        (same.files_new, same.files_changed, same.files_downloaded),
        (0, 0, 0)
    );

    let data = server.data();
    write_file(&data.join("a-b"), b"changed content\n", time(50_000)).expect("change");
    write_file(&data.join("nested/new file.txt"), b"new\n", time(50_001)).expect("add");
    std::fs::remove_file(data.join("nested/d0/e0/f0.dat")).expect("delete");
    let before = server.retr_count();
    // rustic says when a password opened the repository: the key is derived (scrypt, ~128 MiB)
    // once per run, also when the change profile reads the trees this run wrote.
    env.set("RUST_LOG", "info,rustic_core=info");
    let run = env.run(&["backup"]);
    let third = run.assert_ok();
    assert_eq!(
        run.stderr.matches("password is correct").count(),
        1,
        "{}",
        run.stderr
    );
    let mut fetched: Vec<String> = server.retr_paths()[before..].to_vec();
    fetched.sort();
    assert_eq!(
        fetched,
        vec![
            "/data/a-b".to_string(),
            "/data/nested/new file.txt".to_string()
        ]
    );
    assert_eq!(
        (third.files_new, third.files_changed, third.files_downloaded),
        (1, 1, 2)
    );

    let restored = work.join("restored");
    env.run(&["restore", "--target", &restored.display().to_string()])
        .assert_ok();
    assert_same_tree(&data, &restored);
    assert_eq!(env.snapshot_count(), 3);
    // A path filter restores just that subtree.
    let part = work.join("part");
    env.run(&[
        "restore",
        "--path",
        "nested/d1",
        "--target",
        &part.display().to_string(),
    ])
    .assert_ok();
    assert_same_tree(&data.join("nested/d1"), &part);
    // A single file is restored as the target path itself, bytes and time.
    let one = data.join("nested/d1/e1/f1.dat");
    let single = work.join("single/copy");
    env.run(&[
        "restore",
        "--path",
        "nested/d1/e1/f1.dat",
        "--target",
        &single.display().to_string(),
    ])
    .assert_ok();
    assert_eq!(
        std::fs::read(&single).expect("restored file"),
        std::fs::read(&one).expect("source file")
    );
    let mtime = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    assert_eq!(mtime(&single), mtime(&one));
}

fn snapshot_tree_ids(env: &JobEnv) -> Vec<String> {
    let run = env.run(&["snapshots"]);
    run.assert_ok();
    run.stderr
        .lines()
        .filter_map(|l| l.split("tree=").nth(1))
        .map(|t| t.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn mlsd_and_list_with_mdtm_give_identical_snapshots() {
    let vsftpd = Vsftpd::start(VsftpdOptions::default());
    awkward_tree(&vsftpd.data(), 300_000);
    let pyftpd = Pyftpd::start(&vsftpd.data());
    let work = TestDir::new();

    let mut list_env = JobEnv::new("acme", "via-list", &work.join("hot-list"));
    list_env.cold_dir(&work.join("cold"));
    ftps_env(&mut list_env, vsftpd.port, "/data");
    let list_run = list_env.run(&["backup"]);
    list_run.assert_ok();
    assert!(
        list_run.stderr.contains("ListAndMdtm"),
        "{}",
        list_run.stderr
    );

    let mut mlsd_env = JobEnv::new("acme", "via-mlsd", &work.join("hot-mlsd"));
    mlsd_env.cold_dir(&work.join("cold"));
    ftps_env(&mut mlsd_env, pyftpd.port, "/");
    let mlsd_run = mlsd_env.run(&["backup"]);
    mlsd_run.assert_ok();
    assert!(mlsd_run.stderr.contains("Mlsd"), "{}", mlsd_run.stderr);

    let list_trees = snapshot_tree_ids(&list_env);
    let mlsd_trees = snapshot_tree_ids(&mlsd_env);
    assert_eq!(list_trees.len(), 1);
    assert_eq!(
        list_trees, mlsd_trees,
        "the two listing paths describe the tree differently"
    );
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn failures_fail_the_run_write_no_snapshot_and_leave_the_repository_clean() {
    let mut server = Vsftpd::start(VsftpdOptions::default());
    awkward_tree(&server.data(), 0);
    let work = TestDir::new();
    let mut env = JobEnv::new("acme", "fragile", &work.join("hot"));
    env.cold_dir(&work.join("cold"));
    ftps_env(&mut env, server.port, "/data");
    env.set("UNSTOPPABLE_FTPS_RETRIES", "1");
    env.run(&["backup"]).assert_ok();

    let expect_failure = |env: &JobEnv, needle: &str| {
        let run = env.run(&["backup"]);
        assert_eq!(
            run.code, 1,
            "expected a failed run:\n{}\n{}",
            run.stdout, run.stderr
        );
        let summary = run.summary();
        assert!(!summary.success);
        assert_eq!(summary.snapshot_id, None);
        let error = summary.error.unwrap_or_default();
        assert!(
            error.contains(needle),
            "error {error:?} does not mention {needle:?}"
        );
        assert!(!run.stderr.contains(FTP_PASSWORD) && !run.stdout.contains(FTP_PASSWORD));
        assert_eq!(env.snapshot_count(), 1, "a failed run left a snapshot");
        env.assert_check_clean();
    };

    let mut wrong = env.clone();
    wrong.set("UNSTOPPABLE_FTPS_PASSWORD", "not-the-password");
    expect_failure(&wrong, "login");

    let mut untrusted = env.clone();
    untrusted.vars.remove("UNSTOPPABLE_FTPS_CA_FILE");
    expect_failure(&untrusted, "set ftps.ca_file");

    // rustls' reason, not the error's text, picks the hint: a certificate for another name.
    let mut misnamed = env.clone();
    misnamed.set("UNSTOPPABLE_FTPS_SERVER_NAME", "elsewhere.example.org");
    expect_failure(&misnamed, "set ftps.server_name");

    let mut wrong_key = env.clone();
    wrong_key.set(
        "UNSTOPPABLE_REPOSITORY_PASSWORD",
        "not-the-repository-password",
    );
    let run = wrong_key.run(&["backup"]);
    let error = run.summary().error.unwrap_or_default();
    assert!(
        run.code == 1 && error.contains("check repository.password"),
        "{}: {error}",
        run.code
    );
    assert_eq!(env.snapshot_count(), 1, "a failed run left a snapshot");

    let mut unreachable = env.clone();
    unreachable.set("UNSTOPPABLE_FTPS_PORT", &free_port().to_string());
    expect_failure(&unreachable, "cannot connect");

    // A server offering no TLS at all (vsftpd answers AUTH TLS with 530): refused before any
    // credential is sent, with the reason.
    server.restart(VsftpdOptions {
        plain: true,
        ..Default::default()
    });
    expect_failure(&env, "does not offer explicit TLS");
    server.restart(VsftpdOptions::default());

    // A refused file or directory is not a failure of the whole run: see tests/incomplete.rs.

    // The server dies in the middle of a (throttled) transfer.
    let mut rng = Rng::new(3);
    write_file(
        &server.data().join("slow.bin"),
        &rng.bytes(3 * 1024 * 1024),
        time(77),
    )
    .expect("write");
    server.restart(VsftpdOptions {
        max_rate: Some(256 * 1024),
        ..Default::default()
    });
    let summary_file = work.join("termination-log");
    let mut slow_env = env.clone();
    slow_env.set("UNSTOPPABLE_PROGRESS_INTERVAL_SECS", "1").set(
        "UNSTOPPABLE_SUMMARY_PATH",
        &summary_file.display().to_string(),
    );
    let child = Command::new(env!("CARGO_BIN_EXE_unstoppable-job"))
        .arg("backup")
        .env_clear()
        .envs(&slow_env.vars)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start job");
    wait_until(
        "the slow download to start",
        Duration::from_secs(60),
        || server.retr_paths().iter().any(|p| p.ends_with("slow.bin")),
    );
    std::thread::sleep(Duration::from_millis(1500));
    server.kill();
    let out = child.wait_with_output().expect("job output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("progress: listed"),
        "no progress lines:\n{stderr}"
    );
    // A server that is gone is one failure of the run, logged once, not one line per file.
    assert!(!stderr.contains("cannot read"), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.contains("ERROR")).count(),
        1,
        "{stderr}"
    );
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(last.contains("\"success\":false"), "{last}");
    let written = std::fs::read_to_string(&summary_file).expect("summary file written");
    assert_eq!(written, last, "termination log and last stdout line differ");
    assert_eq!(env.snapshot_count(), 1);
    env.assert_check_clean();

    // The job itself is killed in the middle of a transfer.
    server.restart(VsftpdOptions {
        max_rate: Some(256 * 1024),
        ..Default::default()
    });
    let retrs = server.retr_count();
    let mut child = Command::new(env!("CARGO_BIN_EXE_unstoppable-job"))
        .arg("backup")
        .env_clear()
        .envs(&env.vars)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start job");
    wait_until(
        "the slow download to start again",
        Duration::from_secs(60),
        || {
            server.retr_paths()[retrs..]
                .iter()
                .any(|p| p.ends_with("slow.bin"))
        },
    );
    child.kill().expect("kill job");
    let _ = child.wait();
    assert_eq!(env.snapshot_count(), 1);
    env.assert_check_clean();

    // And the next run, with the server back, succeeds and is complete.
    server.restart(VsftpdOptions::default());
    env.run(&["backup"]).assert_ok();
    assert_eq!(env.snapshot_count(), 2);
    let restored = work.join("restored");
    env.run(&["restore", "--target", &restored.display().to_string()])
        .assert_ok();
    assert_same_tree(&server.data(), &restored);
}

#[test]
fn bad_configuration_exits_2_with_one_line_naming_the_key() {
    let work = TestDir::new();
    let mut env = JobEnv::new("acme", "cfg", &work.join("hot"));
    env.cold_dir(&work.join("cold"));
    let run = env.run(&["backup"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("ftps.host"), "{}", run.stderr);

    ftps_env(&mut env, 21, "/data");
    env.set("UNSTOPPABLE_FTPS_MAX_CONNECTIONS", "lots");
    let run = env.run(&["backup"]);
    assert_eq!(run.code, 2);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("ftps.max_connections")
            && lines[0].contains("UNSTOPPABLE_FTPS_MAX_CONNECTIONS")
    );
}

#[test]
fn a_dotenv_file_fills_in_and_the_environment_wins() {
    let work = TestDir::new();
    std::fs::write(
        work.join("job.env"),
        "UNSTOPPABLE_FTPS_HOST=127.0.0.1\nUNSTOPPABLE_FTPS_USERNAME=u\nUNSTOPPABLE_FTPS_PASSWORD=p\nUNSTOPPABLE_FTPS_PORT=99999\n",
    )
    .expect("write .env");
    let mut env = JobEnv::new("acme", "dotenv", &work.join("hot"));
    env.cold_dir(&work.join("cold"));
    let env_file = work.join("job.env").display().to_string();
    // The .env file's port is invalid: the error names it...
    let run = env.run(&["--env-file", &env_file, "backup"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("ftps.port"), "{}", run.stderr);
    // ...and a variable in the environment overrides it (nothing listens there: exit 1, not 2).
    env.set("UNSTOPPABLE_FTPS_PORT", &free_port().to_string());
    let run = env.run(&["--env-file", &env_file, "backup"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run
        .summary()
        .error
        .unwrap_or_default()
        .contains("cannot connect"));
}

#[test]
fn the_demo_runs_end_to_end() {
    let work = TestDir::new();
    let out = Command::new(env!("CARGO_BIN_EXE_unstoppable-job"))
        .args(["demo", "--workdir", &work.path().display().to_string()])
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("downloaded 1 file(s)"), "{stdout}");
    assert!(
        stdout.contains("every file's bytes and modification time match"),
        "{stdout}"
    );
}

#[test]
fn a_plain_ftp_server_is_refused_with_the_reason() {
    // pyftpdlib without TLS answers AUTH TLS with 500, where vsftpd says 530.
    let work = TestDir::new();
    std::fs::create_dir_all(work.join("site")).expect("site");
    let port = free_port();
    let mut server = Command::new("python3")
        .args([
            "-m",
            "pyftpdlib",
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-d",
        ])
        .arg(work.join("site"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("pyftpdlib");
    common::servers::wait_for_port(port);
    let mut env = JobEnv::new("acme", "plain", &work.join("hot"));
    ftps_env(&mut env, port, "/");
    env.cold_dir(&work.join("cold"));
    let run = env.run(&["backup"]);
    let _ = server.kill();
    let _ = server.wait();
    let error = run.summary().error.unwrap_or_default();
    assert!(
        run.code == 1 && error.contains("does not offer explicit TLS"),
        "{}: {error}",
        run.code
    );
}

/// A wide directory on vsftpd (LIST + one MDTM per file over the pooled connections): no command
/// may go unanswered. Before the TLS stream flushed every command, about one in a thousand never
/// left the client and its reply was waited for until the 30-second timeout (a stress test: it
/// failed in most runs then).
#[test]
fn thousands_of_mdtm_commands_are_all_answered() {
    let server = Vsftpd::start(VsftpdOptions::default());
    for i in 0..5000 {
        write_file(&server.data().join(format!("wide/f{i}.txt")), b"x", time(i)).expect("write");
    }
    let work = TestDir::new();
    let mut env = JobEnv::new("acme", "wide", &work.join("hot"));
    env.cold_dir(&work.join("cold"));
    ftps_env(&mut env, server.port, "/data");
    for round in 0..2 {
        let run = env.run(&["backup"]);
        run.assert_ok();
        assert!(
            !run.stderr.contains("no answer within"),
            "run {round} waited for a reply:\n{}",
            run.stderr
                .lines()
                .filter(|l| l.contains("no answer"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// The blobs of small files lie side by side in their pack: a restore reads them with a few range
/// GETs, not one per file (restic reads a pack's blobs in one range too).
#[test]
fn a_restore_of_many_small_files_reads_their_pack_in_few_requests() {
    let server = Vsftpd::start(VsftpdOptions::default());
    let mut rng = Rng::new(17);
    let files = 300;
    for i in 0..files {
        let len = 1000 + (i * 37) % 3000;
        write_file(
            &server.data().join(format!("d{}/f{i:03}.bin", i % 6)),
            &rng.bytes(len),
            time(100 + i as u64),
        )
        .expect("write");
    }
    let s3 = s3();
    let bucket = &format!("small-restore-{}", std::process::id());
    s3.create_bucket(bucket, false);
    let proxy = RecordingProxy::start(&s3.endpoint);
    let work = TestDir::new();
    let mut env = JobEnv::new("acme", "small", &work.join("hot"));
    ftps_env(&mut env, server.port, "/data");
    s3.configure(&mut env, &proxy.endpoint, bucket);
    env.run(&["backup"]).assert_ok();

    let pack_gets = || {
        proxy
            .heads()
            .iter()
            .filter(|h| h.starts_with("GET ") && h.contains("/data/"))
            .count()
    };
    let before = pack_gets();
    let restored = work.join("restored");
    env.run(&["restore", "--target", &restored.display().to_string()])
        .assert_ok();
    assert_same_tree(&server.data(), &restored);
    let gets = pack_gets() - before;
    assert!(
        (1..=10).contains(&gets),
        "{gets} GETs of data packs to restore {files} small files"
    );
}

/// A server that answers the first connection's TLS ClientHello in plain text, then serves the
/// rest through vsftpd. libunftp does this under load: it replies 234 to AUTH TLS before its
/// control loop switches to TLS and reads the ClientHello as a command.
fn plain_reply_to_the_first_client_hello(upstream: u16) -> u16 {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for (n, client) in listener.incoming().enumerate() {
            let Ok(mut client) = client else { return };
            if n == 0 {
                let _ = client.write_all(b"220 ready\r\n");
                let mut line = String::new();
                let _ = BufReader::new(&client).read_line(&mut line);
                let _ = client.write_all(b"234 Upgrading to TLS\r\n");
                let mut hello = [0u8; 512];
                let _ = client.read(&mut hello);
                let _ = client.write_all(b"500 Command not understood\r\n");
                continue;
            }
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                return;
            };
            for (mut from, mut to) in [
                (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                ),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    port
}

#[test]
fn a_tls_handshake_that_breaks_off_is_tried_again_on_a_new_connection() {
    let server = Vsftpd::start(VsftpdOptions::default());
    write_file(&server.data().join("site/a.txt"), b"hello", time(1)).expect("write");
    let port = plain_reply_to_the_first_client_hello(server.port);
    let work = TestDir::new();
    let mut env = JobEnv::new("acme", "handshake", &work.join("hot"));
    env.cold_dir(&work.join("cold"));
    ftps_env(&mut env, port, "/data/site");
    let run = env.run(&["backup"]);
    run.assert_ok();
    assert!(run.stderr.contains("retrying"), "{}", run.stderr);
    let restored = work.join("restored");
    env.run(&["restore", "--target", &restored.display().to_string()])
        .assert_ok();
    assert_same_tree(&server.data().join("site"), &restored);
}
