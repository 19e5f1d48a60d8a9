//! Reading a finished Job: the pure interpretation of a Job and its pods as a run outcome.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use unstoppable_contract::{RunResult, RunSummary};

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub result: RunResult,
    /// The run stored everything (`result` is `Success`).
    pub success: bool,
    pub finished: Time,
    pub started: Option<Time>,
    /// One line: why it failed.
    pub reason: Option<String>,
    /// The job's own summary, when its pod wrote one.
    pub summary: Option<RunSummary>,
}

/// `None` while the Job still runs.
pub fn interpret(job: &Job, pods: &[Pod]) -> Option<Outcome> {
    let status = job.status.as_ref()?;
    let conditions = status.conditions.as_deref().unwrap_or_default();
    let done = conditions
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")?;
    let complete = done.type_ == "Complete";
    let finished = status
        .completion_time
        .clone()
        .or_else(|| done.last_transition_time.clone())
        .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));

    // The last pod tells what happened to the last attempt.
    let mut pods: Vec<&Pod> = pods.iter().collect();
    pods.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let last = pods.last();
    let terminated = last.and_then(|p| {
        p.status
            .as_ref()?
            .container_statuses
            .as_ref()?
            .iter()
            .find(|c| c.name == "backup")?
            .state
            .as_ref()?
            .terminated
            .clone()
    });
    let summary = terminated
        .as_ref()
        .and_then(|t| t.message.as_deref())
        .and_then(|m| serde_json::from_str::<RunSummary>(m.trim()).ok());
    // The job's own word wins; a Job that failed without one failed.
    let result = match (&summary, complete) {
        (Some(s), _) if s.result() == RunResult::Incomplete => RunResult::Incomplete,
        (Some(s), true) => s.result(),
        (None, true) => RunResult::Success,
        (_, false) => RunResult::Failed,
    };
    let success = result == RunResult::Success;

    let reason = if success {
        None
    } else if let Some(err) = summary.as_ref().and_then(|s| s.error.clone()) {
        Some(err)
    } else if let Some(t) = terminated.as_ref().filter(|t| {
        t.reason
            .as_deref()
            .is_some_and(|r| r != "Error" && r != "Completed")
    }) {
        Some(format!(
            "{} (exit code {}) without a run summary",
            t.reason.clone().unwrap_or_default(),
            t.exit_code
        ))
    } else if let Some(reason) = last.and_then(|p| p.status.as_ref()?.reason.clone()) {
        // e.g. Evicted
        let message = last
            .and_then(|p| p.status.as_ref()?.message.clone())
            .unwrap_or_default();
        Some(
            format!("pod {reason}: {message}")
                .trim_end_matches(": ")
                .to_string(),
        )
    } else {
        let why = done.reason.clone().unwrap_or_else(|| "Failed".into());
        let message = done.message.clone().unwrap_or_default();
        Some(
            format!("{why}: {message}")
                .trim_end_matches(": ")
                .to_string(),
        )
    };
    Some(Outcome {
        result,
        success,
        finished,
        started: status.start_time.clone(),
        reason,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(condition: &str, reason: &str) -> Job {
        serde_json::from_value(json!({
            "metadata": {"name": "backup-www-29000000", "namespace": "backups"},
            "status": {
                "startTime": "2026-01-10T03:00:00Z",
                "conditions": [{"type": condition, "status": "True", "reason": reason, "message": "", "lastTransitionTime": "2026-01-10T03:05:00Z"}],
            },
        }))
        .expect("job")
    }

    fn pod(terminated: serde_json::Value, status_reason: Option<&str>) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "creationTimestamp": "2026-01-10T03:00:01Z"},
            "status": {
                "reason": status_reason,
                "containerStatuses": [{
                    "name": "backup", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"terminated": terminated},
                }],
            },
        }))
        .expect("pod")
    }

    #[test]
    fn a_running_job_has_no_outcome() {
        let running: Job =
            serde_json::from_value(json!({"metadata": {"name": "j"}, "status": {"active": 1}}))
                .expect("job");
        assert_eq!(interpret(&running, &[]), None);
    }

    #[test]
    fn success_carries_the_summary() {
        let summary = RunSummary {
            success: true,
            snapshot_id: Some("abc".into()),
            files_new: 2,
            ..Default::default()
        };
        let p = pod(
            json!({"exitCode": 0, "reason": "Completed", "message": summary.to_json_line()}),
            None,
        );
        let o = interpret(&job("Complete", "Completed"), &[p]).expect("finished");
        assert!(o.success);
        assert_eq!(o.summary, Some(summary));
        assert_eq!(o.finished.0.to_string(), "2026-01-10T03:05:00Z");
        assert_eq!(o.reason, None);
    }

    #[test]
    fn an_incomplete_run_is_not_a_success_and_says_what_is_missing() {
        let summary = RunSummary {
            success: false,
            result: Some(RunResult::Incomplete),
            snapshot_id: Some("abc".into()),
            failed_paths: 2,
            error: Some("2 paths could not be read (first: `/x`: 553)".into()),
            ..Default::default()
        };
        let p = pod(
            json!({"exitCode": 3, "reason": "Error", "message": summary.to_json_line()}),
            None,
        );
        let o = interpret(&job("Failed", "PodFailurePolicy"), &[p]).expect("finished");
        assert_eq!(o.result, RunResult::Incomplete);
        assert!(!o.success);
        assert_eq!(
            o.reason.as_deref(),
            Some("2 paths could not be read (first: `/x`: 553)")
        );
    }

    #[test]
    fn failures_say_why() {
        let summary = RunSummary {
            success: false,
            error: Some("login as `x` refused".into()),
            ..Default::default()
        };
        let p = pod(
            json!({"exitCode": 1, "reason": "Error", "message": summary.to_json_line()}),
            None,
        );
        let o = interpret(&job("Failed", "BackoffLimitExceeded"), &[p]).expect("finished");
        assert!(!o.success);
        assert_eq!(o.reason.as_deref(), Some("login as `x` refused"));

        let oom = pod(json!({"exitCode": 137, "reason": "OOMKilled"}), None);
        let o = interpret(&job("Failed", "BackoffLimitExceeded"), &[oom]).expect("finished");
        assert_eq!(
            o.reason.as_deref(),
            Some("OOMKilled (exit code 137) without a run summary")
        );

        let o = interpret(&job("Failed", "DeadlineExceeded"), &[]).expect("finished");
        assert_eq!(o.reason.as_deref(), Some("DeadlineExceeded"));

        let evicted: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "status": {"reason": "Evicted", "message": "low on disk"}})).expect("pod");
        let o = interpret(&job("Failed", "BackoffLimitExceeded"), &[evicted]).expect("finished");
        assert_eq!(o.reason.as_deref(), Some("pod Evicted: low on disk"));
    }
}
