//! Faults on the S3 side, injected by a proxy in front of SeaweedFS: 5xx answers, connections
//! closed without an answer, and stalls, on uploads, reads and listings. Transient faults are
//! retried and the run succeeds; a fault that does not go away fails the run (exit 1, naming the
//! bucket) with no snapshot; the repository stays clean for rustic and restic, and the next run
//! succeeds.

mod common;

use std::time::Duration;

use common::s3::{s3, Fault, FaultRule, RecordingProxy, Target};
use common::servers::{Vsftpd, VsftpdOptions};
use common::tree::{time, write_file, Rng};
use common::{assert_same_tree, restic, JobEnv, TestDir};
use unstoppable_contract::reason;

fn rule(target: Target, skip: usize, times: usize, fault: Fault) -> FaultRule {
    FaultRule {
        target,
        skip,
        times,
        fault,
    }
}

#[test]
fn s3_faults_are_retried_or_fail_the_run_naming_the_bucket_and_never_leave_a_half_written_snapshot()
{
    let server = Vsftpd::start(VsftpdOptions::default());
    let mut rng = Rng::new(21);
    for i in 0..30 {
        let len = 1 + rng.below(50_000) as usize;
        let data = rng.bytes(len);
        write_file(
            &server.data().join(format!("d{}/f{i}.bin", i % 4)),
            &data,
            time(i),
        )
        .expect("write");
    }
    // Larger than rustic's first pack size, so a backup uploads several packs.
    let big = rng.bytes(12 * 1024 * 1024);
    write_file(&server.data().join("big.bin"), &big, time(99)).expect("write");

    let s3 = s3();
    let bucket = &format!("faults-{}", std::process::id());
    s3.create_bucket(bucket, false);
    let proxy = RecordingProxy::with_faults(
        &s3.endpoint,
        &[
            rule(Target::Put, 1, 2, Fault::ServerError),
            rule(Target::Put, 4, 1, Fault::Reset),
            rule(Target::Put, 6, 1, Fault::Stall(Duration::from_secs(2))),
            rule(Target::List, 0, 1, Fault::ServerError),
            rule(Target::List, 2, 1, Fault::Reset),
        ],
    );
    let work = TestDir::new();
    let mut env = JobEnv::new("acme", "faulty", &work.join("hot"));
    env.ftps(server.port, "/data");
    s3.configure(&mut env, &proxy.endpoint, bucket);
    let mut direct = env.clone();
    s3.configure(&mut direct, &s3.endpoint, bucket);

    // Transient faults: retried, the run succeeds.
    env.run(&["backup"]).assert_ok();
    let injected = proxy.injected();
    for (target, fault) in [
        (Target::Put, Fault::ServerError),
        (Target::Put, Fault::Reset),
        (Target::Put, Fault::Stall(Duration::from_secs(2))),
        (Target::List, Fault::ServerError),
    ] {
        assert!(
            injected.iter().any(|(t, f, _)| (*t, *f) == (target, fault)),
            "{fault:?} on {target:?} was never injected: {injected:?}"
        );
    }
    direct.assert_check_clean();

    // Reads: a check and a restore through failing GETs are retried too.
    proxy.set_faults(&[
        rule(Target::Get, 0, 2, Fault::ServerError),
        rule(Target::Get, 3, 1, Fault::Reset),
        rule(Target::Get, 5, 1, Fault::Stall(Duration::from_secs(2))),
    ]);
    env.assert_check_clean();
    let restored = work.join("restored-through-faults");
    env.run(&["restore", "--target", &restored.display().to_string()])
        .assert_ok();
    assert_same_tree(&server.data(), &restored);
    assert!(
        proxy.injected().iter().any(|(t, _, _)| *t == Target::Get),
        "no GET fault was injected"
    );

    // Uploads that keep failing: the run fails, names the bucket, writes no snapshot.
    write_file(
        &server.data().join("d0/changed.bin"),
        &rng.bytes(300_000),
        time(200),
    )
    .expect("write");
    proxy.set_faults(&[rule(Target::Put, 0, usize::MAX, Fault::ServerError)]);
    let run = env.run(&["backup"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let s = run.summary();
    assert_eq!(s.reason.as_deref(), Some(reason::REPOSITORY_FAILED));
    let error = s.error.unwrap_or_default();
    assert!(
        error.contains("S3") && error.contains(bucket.as_str()),
        "the error names the bucket: {error}"
    );
    assert_eq!(s.snapshot_id, None);
    assert_eq!(direct.snapshot_count(), 1);
    direct.assert_check_clean();
    let cache = work.join("restic-cache").display().to_string();
    let renv = [
        ("RESTIC_PASSWORD", "test-repository-password"),
        ("AWS_ACCESS_KEY_ID", s3.access_key.as_str()),
        ("AWS_SECRET_ACCESS_KEY", s3.secret_key.as_str()),
        ("RESTIC_CACHE_DIR", cache.as_str()),
    ];
    let repo = format!("s3:{}/{bucket}/faulty", s3.endpoint);
    let out = restic(&renv, &["-r", &repo, "check", "--read-data"]);
    assert!(
        out.status.success(),
        "restic check after the failed run: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // With S3 healthy again the next run succeeds and is complete.
    proxy.set_faults(&[]);
    env.run(&["backup"]).assert_ok();
    assert_eq!(direct.snapshot_count(), 2);
    let restored = work.join("restored");
    direct
        .run(&["restore", "--target", &restored.display().to_string()])
        .assert_ok();
    assert_same_tree(&server.data(), &restored);
}
