//! The customer's bucket: created with versioning (and Object Lock with a default retention when
//! the spec asks), or, when it exists, checked against the spec and never changed.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CreateBucketConfiguration, DefaultRetention, ExpirationStatus, LifecycleExpiration,
    LifecycleRule, LifecycleRuleFilter, NoncurrentVersionExpiration, ObjectLockConfiguration,
    ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule, VersioningConfiguration,
};
use aws_sdk_s3::Client;

use crate::crd::{ColdStorage, ObjectLock, ObjectLockMode};

/// What provisioning found or did; becomes `StorageReady` with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageState {
    Created,
    Verified,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("access to bucket {bucket} denied: {detail}; it belongs to someone else, or the customer's S3 keys may not use it")]
    AccessDenied { bucket: String, detail: String },
    #[error("bucket {0} exists and belongs to someone else; choose another coldStorage.bucket")]
    OwnedByOthers(String),
    #[error(
        "bucket {bucket}: {detail}; existing buckets are not changed — fix the bucket or the spec"
    )]
    Mismatch { bucket: String, detail: String },
    #[error("S3 at {endpoint}: {detail}")]
    S3 { endpoint: String, detail: String },
}

impl StorageError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::AccessDenied { .. } => "BucketAccessDenied",
            Self::OwnedByOthers(_) => "BucketOwnedByOthers",
            Self::Mismatch { .. } => "BucketSettingsMismatch",
            Self::S3 { .. } => "S3Error",
        }
    }
}

/// The S3 client for a customer's storage, with its keys.
pub fn client(cold: &ColdStorage, access_key_id: &str, secret_access_key: &str) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&cold.endpoint)
        .region(Region::new(cold.region.clone()))
        .force_path_style(cold.path_style)
        .credentials_provider(Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "unstoppable-customer-secret",
        ))
        .build();
    Client::from_conf(config)
}

/// Compares a bucket's Object Lock default retention with the spec (pure).
pub fn lock_difference(want: Option<&ObjectLock>, have: Option<(String, i32)>) -> Option<String> {
    let mode_name = |m: ObjectLockMode| match m {
        ObjectLockMode::Compliance => "COMPLIANCE",
        ObjectLockMode::Governance => "GOVERNANCE",
    };
    match (want, have) {
        (None, None) => None,
        (Some(w), None) => Some(format!(
            "has no Object Lock default retention, the spec asks for {} {} days",
            mode_name(w.mode),
            w.days
        )),
        (None, Some((mode, days))) => Some(format!(
            "has Object Lock ({mode} {days} days), the spec has no objectLock; add it to the spec"
        )),
        (Some(w), Some((mode, days))) => {
            let same = mode.eq_ignore_ascii_case(mode_name(w.mode))
                && i64::from(days) == i64::from(w.days);
            (!same).then(|| {
                format!(
                    "has Object Lock {mode} {days} days, the spec asks for {} {} days",
                    mode_name(w.mode),
                    w.days
                )
            })
        }
    }
}

/// Days after which noncurrent versions expire: never before their lock ends.
pub fn noncurrent_days(lock: Option<&ObjectLock>) -> i32 {
    lock.map_or(30, |l| {
        i32::try_from(l.days).unwrap_or(i32::MAX).saturating_add(1)
    })
}

pub async fn provision(
    client: &Client,
    cold: &ColdStorage,
    bucket: &str,
) -> Result<StorageState, StorageError> {
    let s3_err = |detail: String| StorageError::S3 {
        endpoint: cold.endpoint.clone(),
        detail,
    };
    match client.head_bucket().bucket(bucket).send().await {
        Ok(_) => {
            verify(client, cold, bucket).await?;
            Ok(StorageState::Verified)
        }
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            match status {
                Some(404) => {
                    create(client, cold, bucket).await?;
                    Ok(StorageState::Created)
                }
                Some(403) => Err(StorageError::AccessDenied {
                    bucket: bucket.into(),
                    detail: "HEAD bucket answered 403".into(),
                }),
                Some(301) => Err(s3_err(format!(
                    "bucket {bucket} is in another region than {}; set coldStorage.region",
                    cold.region
                ))),
                _ => Err(s3_err(format!("HEAD bucket {bucket}: {}", describe(&e)))),
            }
        }
    }
}

async fn create(client: &Client, cold: &ColdStorage, bucket: &str) -> Result<(), StorageError> {
    let s3_err = |what: &str, e: String| StorageError::S3 {
        endpoint: cold.endpoint.clone(),
        detail: format!("{what} {bucket}: {e}"),
    };
    let mut request = client
        .create_bucket()
        .bucket(bucket)
        .object_lock_enabled_for_bucket(cold.object_lock.is_some());
    if cold.region != "us-east-1" {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(cold.region.as_str()))
                .build(),
        );
    }
    if let Err(e) = request.send().await {
        return Err(match e.code() {
            Some("BucketAlreadyExists") => StorageError::OwnedByOthers(bucket.into()),
            Some("AccessDenied") => StorageError::AccessDenied {
                bucket: bucket.into(),
                detail: describe(&e),
            },
            _ => s3_err("creating", describe(&e)),
        });
    }
    client
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map_err(|e| s3_err("enabling versioning on", describe(&e)))?;
    if let Some(lock) = &cold.object_lock {
        let mode = match lock.mode {
            ObjectLockMode::Compliance => ObjectLockRetentionMode::Compliance,
            ObjectLockMode::Governance => ObjectLockRetentionMode::Governance,
        };
        let config = ObjectLockConfiguration::builder()
            .object_lock_enabled(ObjectLockEnabled::Enabled)
            .rule(
                ObjectLockRule::builder()
                    .default_retention(
                        DefaultRetention::builder()
                            .mode(mode)
                            .days(i32::try_from(lock.days).unwrap_or(i32::MAX))
                            .build(),
                    )
                    .build(),
            )
            .build();
        client
            .put_object_lock_configuration()
            .bucket(bucket)
            .object_lock_configuration(config)
            .send()
            .await
            .map_err(|e| s3_err("setting Object Lock on", describe(&e)))?;
    }
    // Old versions and expired delete markers go once no lock holds them any more.
    let rule = LifecycleRule::builder()
        .id("unstoppable-noncurrent-versions")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .noncurrent_version_expiration(
            NoncurrentVersionExpiration::builder()
                .noncurrent_days(noncurrent_days(cold.object_lock.as_ref()))
                .build(),
        )
        .expiration(
            LifecycleExpiration::builder()
                .expired_object_delete_marker(true)
                .build(),
        )
        .build()
        .map_err(|e| s3_err("building the lifecycle rule for", e.to_string()))?;
    let lifecycle = BucketLifecycleConfiguration::builder()
        .rules(rule)
        .build()
        .map_err(|e| s3_err("building the lifecycle of", e.to_string()))?;
    client
        .put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(lifecycle)
        .send()
        .await
        .map_err(|e| s3_err("setting the lifecycle of", describe(&e)))?;
    Ok(())
}

async fn verify(client: &Client, cold: &ColdStorage, bucket: &str) -> Result<(), StorageError> {
    let mismatch = |detail: String| StorageError::Mismatch {
        bucket: bucket.into(),
        detail,
    };
    let denied = |e: String| StorageError::AccessDenied {
        bucket: bucket.into(),
        detail: e,
    };
    let versioning = client
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| denied(describe(&e)))?;
    if versioning.status() != Some(&BucketVersioningStatus::Enabled) {
        return Err(mismatch("has versioning off".into()));
    }
    let have = match client
        .get_object_lock_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => out
            .object_lock_configuration()
            .and_then(|c| c.rule())
            .and_then(|r| r.default_retention())
            .map(|d| {
                (
                    d.mode().map(|m| m.as_str().to_string()).unwrap_or_default(),
                    d.days().unwrap_or(0),
                )
            }),
        Err(e) if e.code() == Some("ObjectLockConfigurationNotFoundError") => None,
        Err(e) => return Err(denied(describe(&e))),
    };
    match lock_difference(cold.object_lock.as_ref(), have) {
        None => Ok(()),
        Some(detail) => Err(mismatch(detail)),
    }
}

fn describe<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> String {
    match e.code() {
        Some(code) => format!("{code}: {}", e.message().unwrap_or_default()),
        None => aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(mode: ObjectLockMode, days: u32) -> ObjectLock {
        ObjectLock { mode, days }
    }

    #[test]
    fn lock_settings_are_compared_precisely() {
        let want = lock(ObjectLockMode::Compliance, 30);
        assert_eq!(
            lock_difference(Some(&want), Some(("COMPLIANCE".into(), 30))),
            None
        );
        assert_eq!(lock_difference(None, None), None);
        let d = lock_difference(Some(&want), Some(("GOVERNANCE".into(), 30))).expect("differs");
        assert!(
            d.contains("GOVERNANCE 30") && d.contains("COMPLIANCE 30"),
            "{d}"
        );
        assert!(lock_difference(Some(&want), Some(("COMPLIANCE".into(), 7))).is_some());
        assert!(lock_difference(Some(&want), None)
            .expect("differs")
            .contains("no Object Lock"));
        assert!(lock_difference(None, Some(("COMPLIANCE".into(), 1)))
            .expect("differs")
            .contains("no objectLock"));
    }

    #[test]
    fn noncurrent_versions_outlive_their_lock() {
        assert_eq!(
            noncurrent_days(Some(&lock(ObjectLockMode::Compliance, 30))),
            31
        );
        assert_eq!(noncurrent_days(None), 30);
    }
}
