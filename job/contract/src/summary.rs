use serde::{Deserialize, Serialize};

/// Kubernetes truncates a termination message beyond 4096 bytes; a summary never exceeds it.
pub const SUMMARY_MAX_BYTES: usize = 4096;

/// What one run of the job did. Written as JSON to the termination log and as the last line on
/// stdout, so the operator can read it without talking to the job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// `backup`, `restore`, `check`, ...
    pub command: String,
    pub success: bool,
    /// Id of the snapshot written (backup) or read (restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// RFC 3339 timestamps.
    pub start_time: String,
    pub end_time: String,
    pub duration_seconds: f64,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub dirs: u64,
    /// Sum of the sizes of all files the source listed.
    pub bytes_listed: u64,
    /// Bytes actually transferred from the source (unchanged files are never downloaded).
    pub bytes_downloaded: u64,
    /// Files actually transferred from the source.
    pub files_downloaded: u64,
    /// Bytes the repository grew by (after deduplication and compression).
    pub bytes_added: u64,
    /// One line a person can act on, when the run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunSummary {
    /// Compact JSON that fits the termination log: an overlong error message is shortened, never
    /// the counters.
    pub fn to_json_line(&self) -> String {
        let line = serde_json::to_string(self).unwrap_or_default();
        if line.len() <= SUMMARY_MAX_BYTES {
            return line;
        }
        let mut shortened = self.clone();
        if let Some(err) = &self.error {
            let excess = line.len() - SUMMARY_MAX_BYTES + 3;
            let keep = err.len().saturating_sub(excess);
            let mut cut = keep;
            while cut > 0 && !err.is_char_boundary(cut) {
                cut -= 1;
            }
            shortened.error = Some(format!("{}...", &err[..cut]));
        }
        serde_json::to_string(&shortened).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_are_cut_to_fit_the_termination_log() {
        let summary = RunSummary {
            command: "backup".into(),
            error: Some("é".repeat(5000)),
            ..Default::default()
        };
        let line = summary.to_json_line();
        assert!(line.len() <= SUMMARY_MAX_BYTES, "{} bytes", line.len());
        let back: RunSummary = serde_json::from_str(&line).expect("valid JSON");
        assert!(back.error.expect("error kept").ends_with("..."));
    }

    #[test]
    fn summary_round_trips_through_json() {
        let summary = RunSummary {
            command: "backup".into(),
            success: true,
            snapshot_id: Some("abc".into()),
            files_new: 3,
            bytes_downloaded: 42,
            ..Default::default()
        };
        let back: RunSummary = serde_json::from_str(&summary.to_json_line()).expect("valid JSON");
        assert_eq!(back, summary);
    }
}
