//! The Grafana dashboard and the alert rules query only metrics the operator exports.

use std::collections::BTreeSet;
use std::path::Path;

use unstoppable_contract::{CheckOutcome, PruneOutcome, RetentionOutcome, RunResult, RunSummary};
use unstoppable_operator::metrics::{Metrics, ResourceLabels};

/// Every series name the operator exposes, with every family populated.
fn exported() -> BTreeSet<String> {
    let m = Metrics::default();
    let l = ResourceLabels {
        namespace: "n".into(),
        customer: "c".into(),
        resource: "r".into(),
    };
    m.set_schedule(&l, Some(1), Some(1), false);
    m.set_ready(&l, true);
    m.watch_failed("x");
    m.set_undecodable("BackupResource", 0);
    // A run after which everything ran: retention, prune and a clean check.
    let full = RunSummary {
        check: Some(CheckOutcome::default()),
        prune: Some(PruneOutcome::default()),
        retention: Some(RetentionOutcome::default()),
        ..Default::default()
    };
    m.record_run(&l, 1.0, Some(&full), RunResult::Success, true);
    m.record_run(&l, 2.0, None, RunResult::Failed, true);
    m.record_restore(&l, 3.0, RunResult::Failed, true);
    m.record_changes(&l, &Default::default());
    m.set_anomaly(&l, true);
    m.reconciled("x", std::time::Duration::from_millis(3));
    m.reconcile_failed("x");
    m.encode()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

fn referenced(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("unstoppable_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

fn chart_file(path: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../charts/unstoppable")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn dashboard_and_alerts_query_only_exported_metrics() {
    let exported = exported();
    assert!(exported.len() >= 10, "{exported:?}");
    for file in ["files/dashboard.json", "templates/prometheusrule.yaml"] {
        let text = chart_file(file);
        let used = referenced(&text);
        assert!(!used.is_empty(), "{file} queries no unstoppable metric");
        let unknown: Vec<_> = used.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{file} queries metrics the operator does not export: {unknown:?}"
        );
    }
    // The dashboard is valid JSON with panels.
    let dash: serde_json::Value =
        serde_json::from_str(&chart_file("files/dashboard.json")).expect("JSON");
    assert!(dash["panels"].as_array().is_some_and(|p| p.len() >= 5));
}
