//! Retrying what another attempt can fix.

use super::FtpsError;

/// Runs `op` until it succeeds, at most `retries` extra times, with a short growing pause.
pub async fn with_retries<T, F, Fut>(retries: u32, mut op: F) -> Result<T, FtpsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, FtpsError>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(err) if attempt < retries && !err.is_permanent() => {
                attempt += 1;
                tracing::warn!(attempt, retries, "retrying: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt)))
                    .await;
            }
            Err(err) => return Err(err),
        }
    }
}
