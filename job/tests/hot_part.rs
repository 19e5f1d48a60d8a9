//! The hot part of the repository (its metadata on the node's volume) lost while the bucket
//! keeps the cold part: the next backup rebuilds it from the bucket, stays incremental and
//! reports nothing as an error, since nothing is wrong with the repository.

mod common;

use common::s3::s3;
use common::servers::{Vsftpd, VsftpdOptions};
use common::tree::sample_tree;
use common::{assert_same_tree, JobEnv, TestDir};

#[test]
fn a_lost_hot_volume_is_rebuilt_from_the_bucket_without_errors_and_the_next_backup_is_incremental()
{
    let server = Vsftpd::start(VsftpdOptions::default());
    let data = server.data();
    sample_tree(&data, 7, 30).expect("tree");
    let s3 = s3();
    let bucket = &format!("hot-part-{}", std::process::id());
    s3.create_bucket(bucket, false);
    let work = TestDir::new();
    let hot = work.join("hot");
    let mut env = JobEnv::new("acme", "www", &hot);
    env.ftps(server.port, "/data");
    s3.configure(&mut env, &s3.endpoint, bucket);

    let first = env.run(&["backup"]).assert_ok();
    assert!(first.files_downloaded > 0, "{first:?}");

    // The node and its local volume are gone; the pod starts elsewhere with an empty one.
    std::fs::remove_dir_all(&hot).expect("wipe hot");
    let run = env.run(&["backup"]);
    let next = run.assert_ok();
    assert!(
        run.stderr.contains("lacks files of the cold part"),
        "the rebuild is reported:\n{}",
        run.stderr
    );
    // `assert_ok` above also proves the rebuild logged no ERROR line: it is routine.
    assert_eq!(next.files_downloaded, 0, "{next:?}");

    let restored = work.join("restored");
    env.run(&["restore", "--target", &restored.display().to_string()])
        .assert_ok();
    assert_same_tree(&data, &restored);
}
