//! Bucket provisioning against a real S3 with Object Lock (SeaweedFS, started by scripts/test.sh).

use unstoppable_operator::crd::{BackupCustomer, ColdStorage, ObjectLock, ObjectLockMode};
use unstoppable_operator::storage::{client, provision, StorageError, StorageState};

struct S3 {
    endpoint: String,
    key: String,
    secret: String,
}

fn s3() -> S3 {
    let var = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!("{k} is not set: run the tests with scripts/test.sh, which starts SeaweedFS")
        })
    };
    S3 {
        endpoint: var("UNSTOPPABLE_TEST_S3_ENDPOINT"),
        key: var("UNSTOPPABLE_TEST_S3_ACCESS_KEY"),
        secret: var("UNSTOPPABLE_TEST_S3_SECRET_KEY"),
    }
}

fn cold(lock: Option<ObjectLock>) -> ColdStorage {
    let mut c = BackupCustomer::test().spec.cold_storage;
    c.endpoint = s3().endpoint;
    c.region = "us-east-1".into();
    c.object_lock = lock;
    c
}

fn bucket(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

#[tokio::test]
async fn a_new_bucket_gets_versioning_and_compliance_lock_and_is_then_verified() {
    let s3 = s3();
    let spec = cold(Some(ObjectLock {
        mode: ObjectLockMode::Compliance,
        days: 1,
    }));
    let c = client(&spec, &s3.key, &s3.secret);
    let name = bucket("provisioned");
    assert_eq!(provision(&c, &spec, &name).await, Ok(StorageState::Created));
    let versioning = c
        .get_bucket_versioning()
        .bucket(&name)
        .send()
        .await
        .expect("versioning");
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));
    let lock = c
        .get_object_lock_configuration()
        .bucket(&name)
        .send()
        .await
        .expect("lock");
    let retention = lock
        .object_lock_configuration()
        .and_then(|l| l.rule())
        .and_then(|r| r.default_retention())
        .expect("default retention");
    assert_eq!(retention.mode().map(|m| m.as_str()), Some("COMPLIANCE"));
    assert_eq!(retention.days(), Some(1));
    // Reconciling again checks and changes nothing.
    assert_eq!(
        provision(&c, &spec, &name).await,
        Ok(StorageState::Verified)
    );

    // The same bucket against a spec that asks for other lock settings is reported, not changed.
    let other = cold(Some(ObjectLock {
        mode: ObjectLockMode::Governance,
        days: 7,
    }));
    match provision(&c, &other, &name).await {
        Err(e @ StorageError::Mismatch { .. }) => {
            assert_eq!(e.reason(), "BucketSettingsMismatch");
            assert!(
                e.to_string().contains("COMPLIANCE 1 days")
                    && e.to_string().contains("GOVERNANCE 7 days"),
                "{e}"
            );
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    let unlocked = cold(None);
    assert!(matches!(
        provision(&c, &unlocked, &name).await,
        Err(StorageError::Mismatch { .. })
    ));
}

#[tokio::test]
async fn an_existing_bucket_without_lock_is_reported_when_the_spec_wants_one() {
    let s3 = s3();
    let plain = cold(None);
    let c = client(&plain, &s3.key, &s3.secret);
    let name = bucket("plain");
    assert_eq!(
        provision(&c, &plain, &name).await,
        Ok(StorageState::Created)
    );
    let locked = cold(Some(ObjectLock {
        mode: ObjectLockMode::Compliance,
        days: 30,
    }));
    let err = provision(&c, &locked, &name).await.expect_err("mismatch");
    assert!(err.to_string().contains("has no Object Lock"), "{err}");
}

#[tokio::test]
async fn wrong_keys_are_access_denied() {
    let spec = cold(None);
    let c = client(&spec, "not-a-key", "not-a-secret");
    let err = provision(&c, &spec, &bucket("denied"))
        .await
        .expect_err("denied");
    assert_eq!(err.reason(), "BucketAccessDenied", "{err}");
}
