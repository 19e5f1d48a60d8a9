//! Restores onto real servers: back onto the FTPS server a site was backed up from (vsftpd:
//! LIST + MDTM, times set with MDTM; pyftpdlib: MLSD and MFMT), with dry runs, overwrite policies and delete;
//! and the repository recovered from a versioned bucket (SeaweedFS) after an attacker with the
//! job's keys deleted it.

mod common;

use std::path::Path;
use std::process::Command;

use common::s3::s3;
use common::servers::{give_to_ftp_user, Pyftpd, Vsftpd, VsftpdOptions};
use common::tree::{manifest, time, write_file, Rng};
use common::{assert_same_tree, JobEnv, TestDir};
use unstoppable_contract::{RestoreOutcome, RunResult};

/// A small website: pages, an image, a nested directory, an empty directory.
fn website(root: &Path) {
    let mut rng = Rng::new(11);
    write_file(&root.join("index.html"), b"<h1>welcome</h1>\n", time(10)).expect("write");
    write_file(&root.join("about.html"), b"<p>about us</p>\n", time(11)).expect("write");
    write_file(&root.join("img/logo.png"), &rng.bytes(70_000), time(12)).expect("write");
    write_file(
        &root.join("blog/2026/first post.html"),
        "grüße\n".as_bytes(),
        time(13),
    )
    .expect("write");
    write_file(&root.join("big.bin"), &rng.bytes(3_000_000), time(14)).expect("write");
    std::fs::create_dir_all(root.join("uploads")).expect("mkdir");
}

/// What an attacker does: deface one page, delete another, drop a shell and a directory.
fn deface(root: &Path) {
    write_file(&root.join("index.html"), b"<h1>hacked</h1>\n", time(500)).expect("write");
    std::fs::remove_file(root.join("about.html")).expect("rm");
    write_file(
        &root.join("shell.php"),
        b"<?php system($_GET['c']);\n",
        time(501),
    )
    .expect("write");
    write_file(&root.join("evil/kit/x.php"), b"<?php\n", time(502)).expect("write");
}

fn copy_tree(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .args(["-a"])
        .arg(from)
        .arg(to)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cp -a");
}

/// Paths and bytes of two trees are equal; times too when `mtimes`.
fn assert_same(expected: &Path, actual: &Path, mtimes: bool) {
    let a = manifest(expected).expect("manifest");
    let b = manifest(actual).expect("manifest");
    let strip = |m: &common::tree::TreeManifest| -> Vec<(String, char, Vec<u8>, Option<u64>)> {
        m.iter()
            .map(|(p, (k, d, t))| (p.display().to_string(), *k, d.clone(), t.filter(|_| mtimes)))
            .collect()
    };
    let (a, b) = (strip(&a), strip(&b));
    let names = |m: &[(String, char, Vec<u8>, Option<u64>)]| {
        m.iter().map(|e| e.0.clone()).collect::<Vec<_>>()
    };
    assert_eq!(names(&a), names(&b), "the trees hold other paths");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "`{}` differs", x.0);
    }
}

fn restore(env: &JobEnv, args: &[&str]) -> (RunResult, RestoreOutcome, String) {
    let mut all = vec!["restore", "--to-ftps"];
    all.extend_from_slice(args);
    let run = env.run(&all);
    let summary = run.summary();
    let outcome = summary
        .restore
        .clone()
        .unwrap_or_else(|| panic!("no restore outcome (exit {}):\n{}", run.code, run.stderr));
    (summary.result(), outcome, run.stderr)
}

/// The same story on any writable server whose files are under `data` (served as `/data`).
fn defaced_site_goes_back(port: u16, data: &Path, owner_fix: &dyn Fn(&Path), times: bool) {
    let dir = TestDir::new();
    website(data);
    owner_fix(data);
    let original = dir.join("original");
    copy_tree(data, &original);
    let mut env = JobEnv::new("acme", "site", &dir.join("hot"));
    env.ftps(port, "/data").cold_dir(&dir.join("cold"));
    env.run(&["backup"]).assert_ok();

    deface(data);
    owner_fix(data);
    let defaced = dir.join("defaced");
    copy_tree(data, &defaced);

    // A dry run names exactly the deleted and the modified page, and changes nothing.
    let (result, dry, log) = restore(&env, &["--dry-run"]);
    assert_eq!(result, RunResult::Success, "{log}");
    assert!(dry.dry_run);
    assert_eq!((dry.files_missing, dry.files_changed), (1, 1), "{dry:?}");
    let mut paths = dry.paths.clone();
    paths.sort();
    assert_eq!(paths, vec!["about.html", "index.html"]);
    assert_eq!(dry.files_deleted, 0, "nothing is deleted unless asked");
    assert_eq!(dry.files_unchanged, 3, "{dry:?}");
    assert_same(&defaced, data, true);

    // With delete, the dry run also names what the attacker added.
    let (_, dry, log) = restore(&env, &["--dry-run", "--delete", "--target-path", "/data"]);
    assert_eq!(dry.files_deleted, 2, "{dry:?}\n{log}");
    assert_eq!(dry.dirs_removed, 2, "evil/kit and evil");
    assert!(
        dry.paths.contains(&"-shell.php".to_string()),
        "{:?}",
        dry.paths
    );
    assert_same(&defaced, data, true);

    // Delete is refused without an explicit target path.
    let run = env.run(&["restore", "--to-ftps", "--delete"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--target-path"), "{}", run.stderr);

    // overwrite=never brings back only the deleted page.
    let (result, out, log) = restore(&env, &["--overwrite", "never"]);
    assert_eq!(result, RunResult::Success, "{log}");
    assert_eq!((out.files_restored, out.files_kept), (1, 1), "{out:?}");
    assert_eq!(
        std::fs::read(data.join("index.html")).expect("read"),
        b"<h1>hacked</h1>\n"
    );
    assert!(data.join("about.html").exists());

    // The real restore: the defaced page goes back, the attacker's files stay without delete.
    let (result, out, log) = restore(&env, &[]);
    assert_eq!(result, RunResult::Success, "{log}");
    assert_eq!(out.files_restored, 1 + u64::from(!times), "{out:?}\n{log}");
    assert!(data.join("shell.php").exists());
    assert_eq!(out.mtimes_set, times, "{out:?}");
    assert_eq!(out.note.is_some(), !times, "{out:?}");

    // Then with delete: the server holds exactly the backed-up site again.
    let (result, out, log) = restore(&env, &["--delete", "--target-path", "/data"]);
    assert_eq!(result, RunResult::Success, "{log}");
    assert_eq!((out.files_deleted, out.dirs_removed), (2, 2), "{out:?}");
    assert_same(&original, data, times);
    let leftovers: Vec<_> = manifest(data)
        .expect("manifest")
        .into_keys()
        .filter(|p| p.display().to_string().contains("unstoppable-restore"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    if times {
        // Equal in bytes and times: nothing left to do.
        let (_, again, _) = restore(&env, &["--dry-run"]);
        assert_eq!(again.files_restored, 0, "{again:?}");
    }
}

/// vsftpd has no MFMT; it sets times with `MDTM <time> <path>` (`mdtm_write`, on by default).
#[test]
fn a_defaced_site_goes_back_onto_vsftpd_with_its_times() {
    let server = Vsftpd::start(VsftpdOptions {
        writable: true,
        ..Default::default()
    });
    defaced_site_goes_back(server.port, &server.data(), &give_to_ftp_user, true);
}

/// A server that sets no times at all: the restore says so, and the next one sends the
/// restored files again (their times differ from the snapshot's).
#[test]
fn a_server_that_sets_no_times_is_named_in_the_outcome() {
    let server = Vsftpd::start(VsftpdOptions {
        writable: true,
        no_mdtm_write: true,
        ..Default::default()
    });
    defaced_site_goes_back(server.port, &server.data(), &give_to_ftp_user, false);
}

#[test]
fn a_defaced_site_goes_back_onto_pyftpdlib_with_its_times() {
    let root = TestDir::new();
    let data = root.join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let server = Pyftpd::start_writable(root.path());
    defaced_site_goes_back(server.port, &data, &|_| {}, true);
}

#[test]
fn one_file_and_included_paths_go_back_into_their_directories() {
    let root = TestDir::new();
    let data = root.join("data");
    website(&data);
    let server = Pyftpd::start_writable(root.path());
    let dir = TestDir::new();
    let mut env = JobEnv::new("acme", "site", &dir.join("hot"));
    env.ftps(server.port, "/data").cold_dir(&dir.join("cold"));
    env.run(&["backup"]).assert_ok();
    std::fs::remove_file(data.join("img/logo.png")).expect("rm");
    std::fs::remove_file(data.join("index.html")).expect("rm");
    std::fs::remove_file(data.join("about.html")).expect("rm");

    let (_, out, log) = restore(&env, &["--path", "img/logo.png"]);
    assert_eq!(out.files_restored, 1, "{out:?}\n{log}");
    assert!(data.join("img/logo.png").exists());
    assert!(!data.join("index.html").exists(), "only the path asked for");

    let (_, out, log) = restore(&env, &["--include", "index.*"]);
    assert_eq!(out.files_restored, 1, "{out:?}\n{log}");
    assert!(data.join("index.html").exists());
    assert!(!data.join("about.html").exists(), "only the included files");

    // Into another directory, which is created.
    let (_, out, log) = restore(
        &env,
        &["--path", "blog", "--target-path", "/data/restored/blog"],
    );
    assert_eq!(out.files_restored, 1, "{out:?}\n{log}");
    assert_eq!(
        std::fs::read(data.join("restored/blog/2026/first post.html")).expect("read"),
        "grüße\n".as_bytes()
    );
}

/// Threat C: the attacker holds the job's keys, deletes every snapshot, index and pack with plain
/// DELETEs and wipes the hot volume. On a versioned bucket the deletes only added markers.
#[test]
fn a_deleted_repository_comes_back_from_the_buckets_versions() {
    let server = Vsftpd::start(VsftpdOptions::default());
    website(&server.data());
    let s3 = s3();
    let bucket = &format!("versioned-{}", std::process::id());
    s3.create_bucket(bucket, false);
    let versioning = s3.aws(&[
        "s3api",
        "put-bucket-versioning",
        "--bucket",
        bucket,
        "--versioning-configuration",
        "Status=Enabled",
    ]);
    assert!(
        versioning.status.success(),
        "{}",
        String::from_utf8_lossy(&versioning.stderr)
    );
    let work = TestDir::new();
    let hot = work.join("hot");
    let mut env = JobEnv::new("acme", "www", &hot);
    env.ftps(server.port, "/data");
    s3.configure(&mut env, &s3.endpoint, bucket);
    env.run(&["backup"]).assert_ok();
    write_file(
        &server.data().join("index.html"),
        b"<h1>v2</h1>\n",
        time(600),
    )
    .expect("write");
    env.run(&["backup"]).assert_ok();
    let expected = work.join("expected");
    copy_tree(&server.data(), &expected);

    // S3 times are whole seconds: the attack comes clearly after the chosen time.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let before = jiff::Timestamp::now().to_string();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for dir in ["snapshots", "index", "data"] {
        let out = s3.aws(&[
            "s3",
            "rm",
            "--recursive",
            &format!("s3://{bucket}/www/{dir}/"),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(s3.objects(bucket, "www/snapshots/").is_empty());
    std::fs::remove_dir_all(&hot).expect("wipe hot");

    // A normal restore fails and says where to look.
    let lost = env.run(&[
        "restore",
        "--target",
        &work.join("lost").display().to_string(),
    ]);
    assert_eq!(lost.code, 1, "{}", lost.stderr);
    assert!(lost.stderr.contains("recover --as-of"), "{}", lost.stderr);

    // The past is readable as it was, without changing anything.
    let listed = env.run(&["snapshots", "--as-of", &before]);
    listed.assert_ok();
    assert_eq!(
        listed
            .stderr
            .lines()
            .filter(|l| l.contains("host="))
            .count(),
        2,
        "{}",
        listed.stderr
    );
    let past = work.join("past");
    env.run(&[
        "restore",
        "--as-of",
        &before,
        "--target",
        &past.display().to_string(),
    ])
    .assert_ok();
    assert_same_tree(&expected, &past);

    let run = env.run(&["recover", "--as-of", &before]);
    let recovered = run.assert_ok().recover.expect("recover outcome");
    assert_eq!(recovered.snapshots, 2);
    assert!(recovered.copied_back >= 4, "{recovered:?}");
    assert!(!s3.objects(bucket, "www/snapshots/").is_empty());

    // restic, on its own, finds the repository whole, and the restore is byte-exact.
    let repo = format!("s3:{}/{bucket}/www", s3.endpoint);
    let out = s3.restic(
        &work.join("restic-cache"),
        &["-r", &repo, "check", "--read-data"],
    );
    assert!(
        out.status.success(),
        "restic check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = work.join("restored");
    env.run(&["restore", "--target", &restored.display().to_string()])
        .assert_ok();
    assert_same_tree(&expected, &restored);
    // As plain files into the bucket: byte-exact, the same files restic lists, times kept.
    let run = env.run(&["restore", "--to-s3", "restores/www"]);
    let out = run.assert_ok().restore.expect("restore outcome");
    assert_eq!(out.files_restored, 5, "{out:?}");
    let fetched = work.join("from-s3");
    let cp = s3.aws(&[
        "s3",
        "cp",
        "--recursive",
        &format!("s3://{bucket}/restores/www/"),
        &fetched.display().to_string(),
    ]);
    assert!(
        cp.status.success(),
        "{}",
        String::from_utf8_lossy(&cp.stderr)
    );
    let files = |root: &Path| -> Vec<(String, Vec<u8>)> {
        manifest(root)
            .expect("manifest")
            .into_iter()
            .filter(|(_, (k, _, _))| *k == 'f')
            .map(|(p, (_, d, _))| (p.display().to_string(), d))
            .collect()
    };
    assert_eq!(files(&fetched), files(&expected));
    let listed = s3.restic(
        &work.join("restic-cache"),
        &["-r", &repo, "ls", "latest", "--json"],
    );
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let mut by_restic: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "file")
        .filter_map(|v| Some(v["path"].as_str()?.trim_start_matches('/').to_string()))
        .collect();
    by_restic.sort();
    let restored_names: Vec<String> = files(&fetched).into_iter().map(|(p, _)| p).collect();
    assert_eq!(by_restic, restored_names);
    let head = s3.s3api(&[
        "head-object",
        "--bucket",
        bucket,
        "--key",
        "restores/www/about.html",
    ]);
    let mtime = head["Metadata"]["mtime"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let want = time(11)
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    assert!(mtime.starts_with(&format!("{want}.")), "{head}");

    // The hot part was rebuilt: the next backup is incremental again.
    let run = env.run(&["backup"]);
    let next = run.assert_ok();
    assert_eq!(next.files_downloaded, 0, "{next:?}");
    // Rebuilt once: later runs do not copy (and list every pack) again.
    let again = env.run(&["backup"]);
    again.assert_ok();
    assert!(
        !again.stderr.contains("lacks files of the cold part"),
        "{}",
        again.stderr
    );
}

/// A staging copy of the site on another server, and the files in another bucket: each with
/// credentials of its own (`restore.ftps.*`, `restore.s3.*`); the repository here is local.
#[test]
fn a_restore_goes_to_another_server_and_another_bucket_with_their_own_credentials() {
    let root = TestDir::new();
    let data = root.join("data");
    website(&data);
    let source = Pyftpd::start(root.path());
    let staging_root = TestDir::new();
    let staging = Pyftpd::start_writable(staging_root.path());
    let dir = TestDir::new();
    let mut env = JobEnv::new("acme", "site", &dir.join("hot"));
    env.ftps(source.port, "/data").cold_dir(&dir.join("cold"));
    env.run(&["backup"]).assert_ok();

    let ca = common::servers::tls().ca.display().to_string();
    let mut to_staging = env.clone();
    to_staging
        .set("UNSTOPPABLE_RESTORE_FTPS_HOST", "127.0.0.1")
        .set("UNSTOPPABLE_RESTORE_FTPS_PORT", &staging.port.to_string())
        .set(
            "UNSTOPPABLE_RESTORE_FTPS_USERNAME",
            common::servers::FTP_USER,
        )
        .set(
            "UNSTOPPABLE_RESTORE_FTPS_PASSWORD",
            common::servers::FTP_PASSWORD,
        )
        .set("UNSTOPPABLE_RESTORE_FTPS_CA_FILE", &ca)
        .set("UNSTOPPABLE_RESTORE_FTPS_PATH", "/copy");
    let (result, out, log) = restore(&to_staging, &[]);
    assert_eq!(result, RunResult::Success, "{log}");
    assert!(
        out.location.contains(&format!(":{}/copy", staging.port)),
        "{out:?}\n{log}\n{:?}",
        to_staging.vars
    );
    assert_same(&data, &staging_root.join("copy"), true);

    // Without its password the other server is not tried with the source's.
    to_staging.vars.remove("UNSTOPPABLE_RESTORE_FTPS_PASSWORD");
    let run = to_staging.run(&["restore", "--to-ftps"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("restore.ftps.password"),
        "{}",
        run.stderr
    );

    let s3 = s3();
    let bucket = &format!("elsewhere-{}", std::process::id());
    s3.create_bucket(bucket, false);
    let mut to_bucket = env.clone();
    to_bucket
        .set("UNSTOPPABLE_RESTORE_S3_ENDPOINT", &s3.endpoint)
        .set("UNSTOPPABLE_RESTORE_S3_BUCKET", bucket)
        .set("UNSTOPPABLE_RESTORE_S3_ACCESS_KEY_ID", &s3.access_key)
        .set("UNSTOPPABLE_RESTORE_S3_SECRET_ACCESS_KEY", &s3.secret_key);
    let out = to_bucket
        .run(&["restore", "--to-s3", "site"])
        .assert_ok()
        .restore
        .expect("restore outcome");
    assert_eq!(out.files_restored, 5, "{out:?}");
    let keys: Vec<String> = s3
        .objects(bucket, "site/")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(
        keys.contains(&"site/blog/2026/first post.html".to_string()),
        "{keys:?}"
    );
}

/// The server goes away in the middle of an upload: the retry resumes (REST) from what the
/// server already holds, and the file still arrives whole under its own name.
#[test]
fn an_interrupted_upload_resumes_where_it_stopped() {
    let mut server = Vsftpd::start(VsftpdOptions {
        writable: true,
        ..Default::default()
    });
    let data = server.data();
    website(&data);
    give_to_ftp_user(&data);
    let original = std::fs::read(data.join("big.bin")).expect("read");
    let dir = TestDir::new();
    let mut env = JobEnv::new("acme", "site", &dir.join("hot"));
    env.ftps(server.port, "/data")
        .cold_dir(&dir.join("cold"))
        .set("UNSTOPPABLE_FTPS_RETRIES", "6");
    env.run(&["backup"]).assert_ok();
    std::fs::remove_file(data.join("big.bin")).expect("rm");

    // 3 MB at 256 KiB/s: the upload is still running when the server is restarted.
    server.restart(VsftpdOptions {
        writable: true,
        max_rate: Some(256 * 1024),
        ..Default::default()
    });
    let job = {
        let env = env.clone();
        std::thread::spawn(move || env.run(&["restore", "--to-ftps", "--path", "big.bin"]))
    };
    // Restarted once part of the file has arrived under its temporary name.
    let partial = data.join(".big.bin.unstoppable-restore");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < 300_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    server.restart(VsftpdOptions {
        writable: true,
        ..Default::default()
    });
    let run = job.join().expect("job thread");
    let out = run.assert_ok().restore.expect("restore outcome");
    assert_eq!(out.files_restored, 1, "{out:?}\n{}", run.stderr);
    assert!(
        run.stderr.contains("retrying"),
        "the upload was not interrupted:\n{}",
        run.stderr
    );
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    let resumed_at: Vec<u64> = log
        .lines()
        .filter_map(|l| l.split("\"REST ").nth(1))
        .filter_map(|r| r.trim_end_matches('"').parse().ok())
        .collect();
    assert!(
        resumed_at.iter().any(|&n| n > 100_000),
        "no upload resumed from its partial copy: REST {resumed_at:?}"
    );
    assert_eq!(std::fs::read(data.join("big.bin")).expect("read"), original);
}
