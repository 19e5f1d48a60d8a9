//! Credentials from Infisical (a stand-in of its documented API) and backups into an S3 bucket
//! with Object Lock (SeaweedFS), which the job's own credentials cannot destroy.

mod common;

use serde_json::json;

use common::infisical::InfisicalStandIn;
use common::s3::s3;
use common::servers::{free_port, tls, Vsftpd, VsftpdOptions, FTP_PASSWORD, FTP_USER};
use common::tree::{sample_tree, time, write_file};
use common::{assert_same_tree, JobEnv, TestDir};

const CLIENT_ID: &str = "machine-identity-id";
const CLIENT_SECRET: &str = "machine-identity-secret-7f3a";
const REPO_PASSWORD: &str = "repository-password-from-infisical-91b2";

fn standin(extra: serde_json::Value) -> InfisicalStandIn {
    let s3 = s3();
    let mut state = json!({
        "clients": {CLIENT_ID: CLIENT_SECRET},
        "projects": {"proj-1": {"prod": {"/acme": {
            "FTP_USERNAME": FTP_USER,
            "FTP_PASSWORD": FTP_PASSWORD,
            "REPOSITORY_PASSWORD": REPO_PASSWORD,
            "S3_ACCESS_KEY_ID": s3.access_key,
            "S3_SECRET_ACCESS_KEY": s3.secret_key,
        }}}},
    });
    if let (Some(state), Some(extra)) = (state.as_object_mut(), extra.as_object()) {
        state.extend(extra.clone());
    }
    InfisicalStandIn::start(state)
}

/// A job environment with no credentials at all, only where to find them in Infisical.
fn env_via_infisical(
    work: &TestDir,
    server: &Vsftpd,
    infisical: &InfisicalStandIn,
    resource: &str,
) -> JobEnv {
    let mut env = JobEnv::new("acme", resource, &work.join("hot"));
    env.vars.remove("UNSTOPPABLE_REPOSITORY_PASSWORD");
    env.set("UNSTOPPABLE_FTPS_HOST", "127.0.0.1")
        .set("UNSTOPPABLE_FTPS_PORT", &server.port.to_string())
        .set("UNSTOPPABLE_FTPS_PATH", "/data")
        .set("UNSTOPPABLE_FTPS_CA_FILE", &tls().ca.display().to_string())
        .set("UNSTOPPABLE_INFISICAL_SITE_URL", &infisical.url)
        .set("UNSTOPPABLE_INFISICAL_CLIENT_ID", CLIENT_ID)
        .set("UNSTOPPABLE_INFISICAL_CLIENT_SECRET", CLIENT_SECRET)
        .set("UNSTOPPABLE_INFISICAL_PROJECT_ID", "proj-1")
        .set("UNSTOPPABLE_INFISICAL_ENVIRONMENT", "prod")
        .set("UNSTOPPABLE_INFISICAL_SECRET_PATH", "/acme");
    env
}

fn assert_no_secret_in(run: &common::JobRun) {
    let s3 = s3();
    for secret in [
        FTP_PASSWORD,
        REPO_PASSWORD,
        CLIENT_SECRET,
        s3.secret_key.as_str(),
    ] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a secret appears in the job's output"
        );
    }
}

#[test]
fn credentials_from_infisical_back_up_into_a_locked_bucket_that_the_job_cannot_destroy() {
    let server = Vsftpd::start(VsftpdOptions::default());
    sample_tree(&server.data(), 5, 30).expect("tree");
    let infisical = standin(json!({}));
    let s3 = s3();
    let bucket = &format!("locked-{}", std::process::id());
    s3.create_compliance_bucket(bucket, 1);

    let work = TestDir::new();
    let mut env = env_via_infisical(&work, &server, &infisical, "www");
    env.set("UNSTOPPABLE_S3_ENDPOINT", &s3.endpoint)
        .set("UNSTOPPABLE_S3_BUCKET", bucket);
    let run = env.run(&["backup"]);
    assert_no_secret_in(&run);
    let summary = run.assert_ok();
    assert!(summary.files_new > 30);
    assert_eq!(infisical.logins(), 1, "{:?}", infisical.requests());

    let restored = work.join("restored");
    let run = env.run(&["restore", "--target", &restored.display().to_string()]);
    assert_no_secret_in(&run);
    run.assert_ok();
    assert_same_tree(&server.data(), &restored);

    // With the job's own credentials, no locked version of a pack, index or snapshot can be deleted.
    let versions = s3.s3api(&[
        "list-object-versions",
        "--bucket",
        bucket,
        "--prefix",
        "www/",
    ]);
    let versions = versions["Versions"].as_array().cloned().unwrap_or_default();
    for dir in ["www/data/", "www/index/", "www/snapshots/"] {
        let v = versions
            .iter()
            .find(|v| v["Key"].as_str().is_some_and(|k| k.starts_with(dir)))
            .unwrap_or_else(|| panic!("no object under {dir}"));
        let key = v["Key"].as_str().unwrap_or_default();
        let id = v["VersionId"].as_str().unwrap_or_default();
        let delete = s3.aws(&[
            "s3api",
            "delete-object",
            "--bucket",
            bucket,
            "--key",
            key,
            "--version-id",
            id,
        ]);
        assert!(
            !delete.status.success(),
            "deleting locked {key} version {id} succeeded"
        );
        let bypass = s3.aws(&[
            "s3api",
            "delete-object",
            "--bucket",
            bucket,
            "--key",
            key,
            "--version-id",
            id,
            "--bypass-governance-retention",
        ]);
        assert!(
            !bypass.status.success(),
            "COMPLIANCE lock was bypassed for {key}"
        );
    }
    env.assert_check_clean();
    assert_eq!(env.snapshot_count(), 1);
}

#[test]
fn an_expired_token_is_renewed_exactly_once() {
    let server = Vsftpd::start(VsftpdOptions::default());
    write_file(&server.data().join("a.txt"), b"a", time(1)).expect("write");
    let work = TestDir::new();

    let once = standin(json!({"expired_logins": 1}));
    let mut env = env_via_infisical(&work, &server, &once, "renew");
    env.cold_dir(&work.join("cold"));
    env.run(&["backup"]).assert_ok();
    assert_eq!(once.logins(), 2, "{:?}", once.requests());

    // If the renewed token is refused too, the run fails instead of looping.
    let always = standin(json!({"expired_logins": 100}));
    let mut env = env_via_infisical(&work, &server, &always, "renew");
    env.cold_dir(&work.join("cold"));
    let run = env.run(&["backup"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(always.logins(), 2, "{:?}", always.requests());
}

#[test]
fn infisical_problems_fail_the_run_with_the_reason_and_no_snapshot() {
    let server = Vsftpd::start(VsftpdOptions::default());
    write_file(&server.data().join("a.txt"), b"a", time(1)).expect("write");
    let work = TestDir::new();
    let forbidden = standin(json!({"forbidden": ["proj-1"]}));
    let missing =
        standin(json!({"projects": {"proj-1": {"prod": {"/acme": {"FTP_USERNAME": FTP_USER}}}}}));
    let ok = standin(json!({}));

    let case = |infisical: &InfisicalStandIn, tweak: &dyn Fn(&mut JobEnv), needle: &str| {
        let mut env = env_via_infisical(&work, &server, infisical, "errors");
        env.cold_dir(&work.join("cold"));
        tweak(&mut env);
        let run = env.run(&["backup"]);
        assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
        let error = run.summary().error.unwrap_or_default();
        assert!(
            error.contains(needle),
            "{error:?} does not mention {needle:?}"
        );
        assert_no_secret_in(&run);
    };
    case(&forbidden, &|_| {}, "denied");
    case(
        &ok,
        &|e| {
            e.set("UNSTOPPABLE_INFISICAL_ENVIRONMENT", "staging");
        },
        "has no project proj-1 environment staging",
    );
    case(&missing, &|_| {}, "FTP_PASSWORD");
    case(
        &ok,
        &|e| {
            e.set("UNSTOPPABLE_INFISICAL_CLIENT_SECRET", "wrong");
        },
        "refused the machine identity's login",
    );
    let closed = format!("http://127.0.0.1:{}", free_port());
    case(
        &ok,
        &|e| {
            e.set("UNSTOPPABLE_INFISICAL_SITE_URL", &closed);
        },
        "unreachable",
    );
    assert!(
        !work.join("cold/errors").exists(),
        "a repository was created by a failed run"
    );
}
