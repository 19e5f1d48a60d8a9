//! The aws-sdk-s3 client of the job, for what rustic's back-end does not do: Object Lock
//! retention, object versions (reading the repository as it was, recovering it).

use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::Client;
use bytes::Bytes;
use tokio::runtime::{Handle, Runtime};
use unstoppable_contract::S3Config;

/// A client for the configured bucket; credentials only from the configuration, never from
/// ambient files or instance metadata. A stuck endpoint cannot hang a run: connections time out
/// after 10 s, an answer that does not start within 2 minutes is retried, and no attempt lasts
/// longer than 15 minutes (a pack of 128 MiB at 150 KiB/s); failed attempts are retried with
/// jittered backoff, 5 attempts in all.
pub fn client(s3: &S3Config) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(5)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(10)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(120))
                .operation_attempt_timeout(Duration::from_secs(15 * 60))
                .build(),
        )
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&s3.endpoint)
        .region(Region::new(s3.region.clone()))
        .force_path_style(s3.path_style)
        .credentials_provider(Credentials::new(
            s3.access_key_id.expose(),
            s3.secret_access_key.expose(),
            None,
            None,
            "unstoppable-job-configuration",
        ))
        .build();
    Client::from_conf(config)
}

/// A runtime for S3 calls made from rustic's synchronous back-end interface. It lives as long as
/// the process: a runtime dropped on an async thread would panic.
pub fn blocking_handle() -> Result<Handle, std::io::Error> {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt.handle().clone());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("s3-versions")
        .enable_all()
        .build()?;
    Ok(RUNTIME.get_or_init(|| rt).handle().clone())
}

/// One object into memory: a given version of it (`None`: the current one), a byte range of it
/// (`(offset, length)`; `None`: all of it).
pub async fn get_bytes(
    client: &Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
    range: Option<(u32, u32)>,
) -> Result<Bytes, String> {
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_string))
        .set_range(range.map(|(offset, length)| {
            format!(
                "bytes={offset}-{}",
                u64::from(offset) + u64::from(length).max(1) - 1
            )
        }))
        .send()
        .await
        .map_err(|e| DisplayErrorContext(e).to_string())?;
    object
        .body
        .collect()
        .await
        .map(|b| b.into_bytes())
        .map_err(|e| e.to_string())
}
