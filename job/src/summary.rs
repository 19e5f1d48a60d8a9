//! The run summary: last stdout line and the termination log the operator reads.

use std::time::Instant;

use jiff::Timestamp;
use unstoppable_contract::RunSummary;

/// Measures a command and fills the summary's common fields.
pub struct RunClock {
    start: Timestamp,
    started: Instant,
}

impl RunClock {
    pub fn start() -> Self {
        Self {
            start: Timestamp::now(),
            started: Instant::now(),
        }
    }

    pub fn finish(&self, command: &str, mut summary: RunSummary) -> RunSummary {
        summary.command = command.to_string();
        summary.start_time = self.start.to_string();
        summary.end_time = Timestamp::now().to_string();
        summary.duration_seconds = (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        summary
    }
}

/// Prints the summary as the last stdout line and writes it to `path` (when not empty).
/// Failing to write the file is reported but does not change the run's result.
pub fn emit(summary: &RunSummary, path: &str) {
    let line = summary.to_json_line();
    if !path.is_empty() {
        if let Err(e) = std::fs::write(path, &line) {
            tracing::warn!("cannot write the run summary to {path}: {e} (set summary_path)");
        }
    }
    println!("{line}");
}
