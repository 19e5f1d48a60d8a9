//! What a successful backup run does after its snapshot — retention, prune when due, the rolling
//! read-data check — against vsftpd and SeaweedFS, with restic as the independent reader of what
//! is left. The job's clock is moved with `backup --time`.

mod common;

use std::process::Command;

use common::s3::{s3, RecordingProxy};
use common::servers::{Vsftpd, VsftpdOptions};
use common::tree::{sample_tree, time, write_file, Rng};
use common::{assert_same_tree, JobEnv, TestDir};

/// Backup `i` of twelve: two a day, at 06:00 and 18:00, from 1 March on.
fn backup_time(i: u32) -> String {
    format!("2026-03-{:02}T{:02}:00:00Z", 1 + i / 2, 6 + 12 * (i % 2))
}

#[test]
fn twelve_backups_with_keep_last_3_and_keep_daily_2_keep_exactly_those_and_restore() {
    let server = Vsftpd::start(VsftpdOptions::default());
    let data = server.data();
    sample_tree(&data, 11, 20).expect("tree");
    let s3 = s3();
    let bucket = &format!("retention-{}", std::process::id());
    s3.create_bucket(bucket, false);
    let work = TestDir::new();
    let mut env = JobEnv::new("acme", "www", &work.join("hot"));
    env.ftps(server.port, "/data");
    s3.configure(&mut env, &s3.endpoint, bucket);
    env.set("UNSTOPPABLE_RETENTION_KEEP_LAST", "3")
        .set("UNSTOPPABLE_RETENTION_KEEP_DAILY", "2");

    let mut ids = Vec::new();
    let mut before = 0;
    for i in 0..12u32 {
        // Every run has something new: one file grows, with its own modification time.
        let content = format!("run {i}\n").repeat(i as usize + 1);
        write_file(
            &data.join("run.txt"),
            content.as_bytes(),
            time(1000 + u64::from(i)),
        )
        .expect("write");
        if i == 9 {
            copy_tree(&data, &work.join("as-of-run-9"));
        }
        let summary = env.run(&["backup", "--time", &backup_time(i)]).assert_ok();
        let retention = summary.retention.expect("the summary reports retention");
        assert_eq!(retention.error, None);
        assert_eq!(
            retention.kept + retention.removed,
            before + 1,
            "run {i}: every snapshot of the resource is either kept or removed"
        );
        before = retention.kept;
        // The tree holds some 300 KB; the hot part keeps metadata only.
        let size = summary
            .repository
            .expect("the summary reports the repository's size");
        assert!(size.cold_bytes > 100_000 && size.hot_bytes > 0, "{size:?}");
        assert!(size.hot_bytes < size.cold_bytes, "{size:?}");
        ids.push(summary.snapshot_id.expect("snapshot id"));
    }
    // keep-last 3: runs 11, 10, 9; keep-daily 2: the newest of 6 March (11) and of 5 March (9).
    assert_eq!(before, 3);

    let repo = format!("s3:{}/{bucket}/www", s3.endpoint);
    let cache = work.join("restic-cache");
    let out = s3.restic(&cache, &["-r", &repo, "snapshots", "--json"]);
    assert!(
        out.status.success(),
        "restic snapshots: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("restic JSON");
    let mut times: Vec<jiff::Timestamp> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| {
            s["time"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .expect("snapshot time")
        })
        .collect();
    times.sort();
    let expected: Vec<jiff::Timestamp> = [9, 10, 11]
        .iter()
        .map(|i| backup_time(*i).parse().expect("time"))
        .collect();
    assert_eq!(times, expected, "restic lists exactly the kept snapshots");
    let out = s3.restic(&cache, &["-r", &repo, "check", "--read-data"]);
    assert!(
        out.status.success(),
        "restic check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The oldest kept snapshot restores byte-exact as the tree was at its run.
    let restored = work.join("restored");
    env.run(&[
        "restore",
        "--snapshot",
        &ids[9],
        "--target",
        &restored.display().to_string(),
    ])
    .assert_ok();
    assert_same_tree(&work.join("as-of-run-9"), &restored);
}

/// GETs of data packs in the requests a proxy saw (the first line of each request head).
fn data_pack_gets(heads: &[String]) -> usize {
    heads
        .iter()
        .filter_map(|h| h.lines().next())
        .filter(|line| line.starts_with("GET ") && line.contains("/www/data/"))
        .count()
}

#[test]
fn prune_runs_when_due_reclaims_what_retention_let_go_and_never_reads_a_data_pack() {
    let server = Vsftpd::start(VsftpdOptions::default());
    let data = server.data();
    sample_tree(&data, 12, 10).expect("tree");
    let s3 = s3();
    let bucket = &format!("prune-{}", std::process::id());
    s3.create_bucket(bucket, false);
    let proxy = RecordingProxy::start(&s3.endpoint);
    let work = TestDir::new();
    let mut env = JobEnv::new("acme", "www", &work.join("hot"));
    env.ftps(server.port, "/data");
    s3.configure(&mut env, &proxy.endpoint, bucket);
    // The rolling check reads its slice of the data packs on purpose; off here, so that every
    // data-pack GET counted would be the prune's.
    env.set("UNSTOPPABLE_RETENTION_KEEP_LAST", "1")
        .set("UNSTOPPABLE_MAINTENANCE_PRUNE_INTERVAL_DAYS", "7")
        .set("UNSTOPPABLE_MAINTENANCE_CHECK_SLICES", "0");

    let mut rng = Rng::new(5);
    let mut run = |day: u32| {
        // Each run replaces a 3 MiB random file: what the previous snapshots had becomes unused.
        let random: Vec<u8> = (0..(3 << 20) / 8)
            .flat_map(|_| rng.next_u64().to_le_bytes())
            .collect();
        // Written on the run's day: a same-size rewrite dated within the day of the copy before
        // it would be taken for that copy on a LIST server (`ftps.clock_skew_secs`).
        write_file(
            &data.join("big.bin"),
            &random,
            time(10_000 + u64::from(day) * 86_400),
        )
        .expect("write");
        let seen = proxy.heads().len();
        let summary = env
            .run(&["backup", "--time", &format!("2026-03-{:02}T03:00:00Z", day)])
            .assert_ok();
        (summary, data_pack_gets(&proxy.heads()[seen..]))
    };

    // Never pruned: the first backup prunes (nothing to reclaim yet).
    let (first, _) = run(1);
    let first = first.prune.expect("the first backup prunes");
    assert_eq!(first.error, None);
    // Not due again within the week.
    let (second, _) = run(3);
    assert_eq!(second.prune, None, "pruned again within the interval");
    // A week on (no backup in between counts): due. Run 3's file sits alone in its data pack and
    // is reclaimed whole; run 1's shares its pack with the files every snapshot still has, and a
    // partly used data pack is kept rather than downloaded to be repacked.
    let (third, gets) = run(12);
    let pruned = third.prune.expect("a prune a week later");
    assert_eq!(pruned.error, None);
    assert!(
        (3 << 20) * 9 / 10 <= pruned.reclaimed_bytes && pruned.reclaimed_bytes < 2 * (3 << 20),
        "reclaimed {} bytes",
        pruned.reclaimed_bytes
    );
    assert!(pruned.packs_marked > 0, "{pruned:?}");
    assert_eq!(
        gets, 0,
        "the backup with its prune downloaded data packs from the bucket"
    );

    env.assert_check_clean();
    let restored = work.join("restored");
    env.run(&["restore", "--target", &restored.display().to_string()])
        .assert_ok();
    assert_same_tree(&data, &restored);
    let repo = format!("s3:{}/{bucket}/www", s3.endpoint);
    let out = s3.restic(
        &work.join("restic-cache"),
        &["-r", &repo, "check", "--read-data"],
    );
    assert!(
        out.status.success(),
        "restic check after the prune: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_damaged_pack_is_found_by_the_rolling_check_within_its_period_and_backups_go_on() {
    let server = Vsftpd::start(VsftpdOptions::default());
    let data = server.data();
    sample_tree(&data, 13, 20).expect("tree");
    let s3 = s3();
    let bucket = &format!("check-{}", std::process::id());
    s3.create_bucket(bucket, false);
    let work = TestDir::new();
    let mut env = JobEnv::new("acme", "www", &work.join("hot"));
    env.ftps(server.port, "/data");
    s3.configure(&mut env, &s3.endpoint, bucket);
    env.set("UNSTOPPABLE_MAINTENANCE_CHECK_SLICES", "2");

    let first = env.run(&["backup"]).assert_ok();
    let check = first.check.expect("every backup checks");
    assert_eq!((check.slice.as_str(), check.error), ("1/2", None));

    // Damage the largest pack in the bucket (a data pack) through the S3 API, as bit rot or a
    // hostile writer would.
    let key = s3
        .objects(bucket, "www/data/")
        .into_iter()
        .max_by_key(|(_, size)| *size)
        .map(|(key, _)| key)
        .expect("a pack");
    let local = work.join("pack");
    let path = local.display().to_string();
    let uri = format!("s3://{bucket}/{key}");
    assert!(s3.aws(&["s3", "cp", &uri, &path]).status.success());
    let mut bytes = std::fs::read(&local).expect("pack");
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&local, bytes).expect("write");
    assert!(s3.aws(&["s3", "cp", &path, &uri]).status.success());

    // The next two runs read both slices: one of them finds the damage. Every run still writes
    // its snapshot.
    let mut found = Vec::new();
    for _ in 0..2 {
        let run = env.run(&["backup"]);
        let summary = run.summary();
        assert!(summary.snapshot_id.is_some(), "no snapshot: {}", run.stderr);
        if run.code == 4 {
            assert_eq!(summary.reason.as_deref(), Some("RepositoryDamaged"));
            assert!(!summary.success);
            let error = summary.error.unwrap_or_default();
            assert!(error.contains("damage"), "{error}");
            found.push(summary.check.map(|c| c.slice));
        } else {
            assert_eq!(run.code, 0, "{}", run.stderr);
        }
    }
    assert_eq!(
        found.len(),
        1,
        "the damaged pack is in exactly one slice: {found:?}"
    );
    // Damage never stops new backups.
    let later = env.run(&["backup"]);
    assert!(later.summary().snapshot_id.is_some(), "{}", later.stderr);
}

#[test]
fn on_a_compliance_locked_bucket_forget_and_prune_leave_delete_markers_and_every_version() {
    let server = Vsftpd::start(VsftpdOptions::default());
    let data = server.data();
    sample_tree(&data, 14, 10).expect("tree");
    let s3 = s3();
    let bucket = &format!("locked-prune-{}", std::process::id());
    s3.create_compliance_bucket(bucket, 1);
    let work = TestDir::new();
    let mut env = JobEnv::new("acme", "www", &work.join("hot"));
    env.ftps(server.port, "/data");
    s3.configure(&mut env, &s3.endpoint, bucket);
    env.set("UNSTOPPABLE_RETENTION_KEEP_LAST", "1")
        .set("UNSTOPPABLE_MAINTENANCE_PRUNE_INTERVAL_DAYS", "0");

    for day in 1..=3u32 {
        let content = format!("day {day}\n").repeat(day as usize * 1000);
        write_file(
            &data.join("day.txt"),
            content.as_bytes(),
            time(20_000 + u64::from(day)),
        )
        .expect("write");
        let summary = env
            .run(&["backup", "--time", &format!("2026-03-{day:02}T03:00:00Z")])
            .assert_ok();
        let retention = summary.retention.expect("retention");
        assert_eq!(retention.error, None, "forget on a locked bucket");
        assert_eq!(retention.kept, 1);
        let prune = summary.prune.expect("a prune every backup");
        assert_eq!(prune.error, None, "prune on a locked bucket");
    }

    // The two forgotten snapshots are gone for the repository (delete markers), and every
    // version written is still in the bucket, locked.
    let listed = s3.s3api(&[
        "list-object-versions",
        "--bucket",
        bucket,
        "--prefix",
        "www/snapshots/",
    ]);
    // Only snapshot files: the back-end also keeps a directory marker `www/snapshots/`.
    let count = |field: &str| {
        listed[field].as_array().map_or(0, |objects| {
            objects
                .iter()
                .filter(|o| o["Key"].as_str().is_some_and(|k| !k.ends_with('/')))
                .count()
        })
    };
    assert_eq!(count("Versions"), 3, "{listed}");
    assert_eq!(count("DeleteMarkers"), 2, "{listed}");
    let restored = work.join("restored");
    env.run(&["restore", "--target", &restored.display().to_string()])
        .assert_ok();
    assert_same_tree(&data, &restored);
}

#[test]
fn after_a_prune_every_object_the_repository_keeps_is_locked_for_the_full_days_again() {
    let server = Vsftpd::start(VsftpdOptions::default());
    sample_tree(&server.data(), 15, 10).expect("tree");
    let s3 = s3();
    let bucket = &format!("lock-extend-{}", std::process::id());
    // The bucket locks each new version for 1 day; the repository's data must stay locked for 5.
    s3.create_compliance_bucket(bucket, 1);
    let work = TestDir::new();
    let mut env = JobEnv::new("acme", "www", &work.join("hot"));
    env.ftps(server.port, "/data");
    s3.configure(&mut env, &s3.endpoint, bucket);
    env.set("UNSTOPPABLE_S3_OBJECT_LOCK_DAYS", "5")
        .set("UNSTOPPABLE_MAINTENANCE_PRUNE_INTERVAL_DAYS", "1");

    // The first backup prunes (never pruned before), then extends every lock ending within
    // twice the prune interval: all of them.
    let started = jiff::Timestamp::now();
    let summary = env.run(&["backup"]).assert_ok();
    let locks = summary
        .object_lock
        .expect("locks looked at after the prune");
    assert_eq!(locks.error, None);
    assert!(locks.checked >= 5, "{locks:?}");
    assert_eq!(locks.extended, locks.checked, "{locks:?}");
    let (key, _) = s3
        .objects(bucket, "www/data/")
        .into_iter()
        .next()
        .expect("a pack");
    let retention = s3.s3api(&["get-object-retention", "--bucket", bucket, "--key", &key]);
    assert_eq!(retention["Retention"]["Mode"], "COMPLIANCE");
    let until: jiff::Timestamp = retention["Retention"]["RetainUntilDate"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("a retain-until date");
    let days = until.duration_since(started).as_hours() / 24;
    assert!(days >= 4, "locked for {days} days only: {retention}");

    // The next backup is not a prune (a day has not passed): nothing to extend.
    let again = env.run(&["backup"]).assert_ok();
    assert_eq!(again.object_lock, None);

    // A lock of 2 days cannot outlast a prune interval of 1 day with its margin: refused.
    env.set("UNSTOPPABLE_S3_OBJECT_LOCK_DAYS", "2");
    let run = env.run(&["backup"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("s3.object_lock_days"), "{}", run.stderr);
}

#[test]
fn a_bad_retention_rule_is_a_configuration_error_naming_the_key() {
    let work = TestDir::new();
    let mut env = JobEnv::new("acme", "www", &work.join("hot"));
    env.cold_dir(&work.join("cold"))
        .set("UNSTOPPABLE_FTPS_HOST", "127.0.0.1")
        .set("UNSTOPPABLE_FTPS_USERNAME", "u")
        .set("UNSTOPPABLE_FTPS_PASSWORD", "p")
        .set("UNSTOPPABLE_RETENTION_KEEP_WITHIN", "a fortnight");
    let run = env.run(&["backup"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("retention.keep_within")
            && run.stderr.contains("UNSTOPPABLE_RETENTION_KEEP_WITHIN"),
        "{}",
        run.stderr
    );
}

/// `cp -a`: the copy keeps modification times, as the server's files have them.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(status.success());
}

/// A held snapshot survives the retention rules (keep-last 1) until its hold is released; then
/// the next backup's rules let it go.
#[test]
fn a_held_snapshot_survives_keep_last_1_until_released() {
    let server = Vsftpd::start(VsftpdOptions::default());
    let mut rng = Rng::new(5);
    let work = TestDir::new();
    let mut env = JobEnv::new("acme", "www", &work.join("hot"));
    env.ftps(server.port, "/data")
        .cold_dir(&work.join("cold"))
        .set("UNSTOPPABLE_RETENTION_KEEP_LAST", "1");
    let first_tree = work.join("as-of-the-first");
    for i in 0..3u64 {
        write_file(
            &server.data().join(format!("f{i}.txt")),
            &rng.bytes(1000),
            time(i),
        )
        .expect("write");
        let s = env
            .run(&["backup", "--time", &format!("2026-03-0{}T03:00:00Z", i + 1)])
            .assert_ok();
        if i == 0 {
            let id = s.snapshot_id.expect("id");
            env.run(&["hold", "--snapshot", &id]).assert_ok();
            let ok = Command::new("cp")
                .arg("-a")
                .arg(server.data())
                .arg(&first_tree)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cp -a");
        }
    }
    let listed = env.run(&["snapshots"]);
    let held: Vec<&str> = listed
        .stderr
        .lines()
        .filter(|l| l.contains("hold"))
        .collect();
    assert_eq!(env.snapshot_count(), 2, "{}", listed.stderr);
    assert_eq!(held.len(), 1, "{}", listed.stderr);
    // The held one restores as the tree was then.
    let restored = work.join("held");
    env.run(&[
        "restore",
        "--snapshot-as-of",
        "2026-03-01T03:00:00Z",
        "--target",
        &restored.display().to_string(),
    ])
    .assert_ok();
    assert_same_tree(&first_tree, &restored);

    env.run(&["release-hold"]).assert_ok();
    write_file(&server.data().join("f3.txt"), b"later", time(9)).expect("write");
    env.run(&["backup", "--time", "2026-03-05T03:00:00Z"])
        .assert_ok();
    assert_eq!(env.snapshot_count(), 1, "released, the rules let it go");
    env.assert_check_clean();
}
