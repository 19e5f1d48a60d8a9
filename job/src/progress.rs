//! Progress lines at a steady interval while a backup runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::ftps::SourceStats;

pub fn spawn(rt: &Runtime, stats: Arc<SourceStats>, interval_secs: u64) -> JoinHandle<()> {
    rt.spawn(async move {
        if interval_secs == 0 {
            return;
        }
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(interval_secs));
        tick.tick().await;
        loop {
            tick.tick().await;
            let secs = started.elapsed().as_secs_f64().max(0.001);
            let downloaded = SourceStats::get(&stats.bytes_downloaded);
            tracing::info!(
                "progress: listed {} files in {} dirs ({} MiB), downloaded {} files ({} MiB, {:.1} MiB/s)",
                SourceStats::get(&stats.files_listed),
                SourceStats::get(&stats.dirs_listed),
                mib(SourceStats::get(&stats.bytes_listed)),
                SourceStats::get(&stats.files_downloaded),
                mib(downloaded),
                downloaded as f64 / 1_048_576.0 / secs,
            );
        }
    })
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1_048_576.0)
}
