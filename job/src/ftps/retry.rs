//! Retrying what another attempt can fix, with backon's exponential backoff and jitter.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use super::FtpsError;

/// Runs `op` until it succeeds, at most `retries` extra times, pausing 200 ms, 400 ms, … (at most
/// 5 s, with jitter so that parallel connections do not retry in step). Permanent errors (a 5xx
/// refusal, a login that was refused) are not retried.
pub async fn with_retries<T, F, Fut>(retries: u32, op: F) -> Result<T, FtpsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, FtpsError>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(usize::try_from(retries).unwrap_or(usize::MAX))
        .with_jitter();
    op.retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|err: &FtpsError| !err.is_permanent())
        .notify(|err, pause| tracing::warn!(retries, ?pause, "retrying: {err}"))
        .await
}
