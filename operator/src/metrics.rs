//! Prometheus metrics, registered in one place and handed to the controllers (no globals).
//!
//! Missed-backup alerts are computed by Prometheus from `last_success_timestamp` and
//! `expected_interval`, so they fire even when a job never starts.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry, Unit};
use unstoppable_contract::{RunResult, RunSummary};

use crate::series::{Column, ColumnCollector, Kind, Table};

/// The labels of every per-resource series, kept once per resource as the key of its row in
/// `series::Table`; shared strings keep the copies a scrape makes for labelled families cheap.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    pub namespace: Arc<str>,
    pub customer: Arc<str>,
    pub resource: Arc<str>,
}

impl ResourceLabels {
    /// The series labels of one BackupResource.
    pub fn of(res: &crate::crd::BackupResource) -> Self {
        use kube::ResourceExt;
        Self {
            namespace: res.namespace().unwrap_or_default().into(),
            customer: res.spec.customer_ref.name.as_str().into(),
            resource: res.name_any().into(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

pub struct Metrics {
    /// One registry per family, so that a scrape can encode them one at a time.
    parts: Vec<Part>,
    /// Every per-resource series, a row per resource.
    table: Arc<Table>,
    pub reconciles: Family<ControllerLabels, Counter>,
    pub reconcile_errors: Family<ControllerLabels, Counter>,
    pub reconcile_duration: Family<ControllerLabels, Histogram, fn() -> Histogram>,
    pub watch_errors: Family<ControllerLabels, Counter>,
    pub undecodable: Family<KindLabels, Gauge>,
    pub start_time: FloatGauge,
    pub leader: Gauge,
}

pub const RESULTS: [RunResult; 3] = [RunResult::Success, RunResult::Incomplete, RunResult::Failed];
/// `RESULTS` as their `result` label.
const RESULT_LABELS: [&str; 3] = ["success", "incomplete", "failure"];
const FILE_KINDS: [&str; 3] = ["new", "changed", "unmodified"];
const PARTS: [&str; 2] = ["hot", "cold"];
/// The counts of a change profile, by the `change` label of `unstoppable_backup_last_changes`.
const CHANGE_KINDS: [&str; 7] = [
    "before",
    "new",
    "changed",
    "deleted",
    "renamed",
    "incompressible",
    "new_extension",
];

// Slots of the per-resource table. The first `series::INLINE` are the series every scheduled
// resource has; the others come with its first finished job.
const READY: usize = 0;
const SUSPENDED: usize = 1;
const EXPECTED_INTERVAL: usize = 2;
const CREATED: usize = 3;
const LAST_SUCCESS: usize = 4;
const LAST_RUN: usize = 5;
const LAST_RUN_SUCCESS: usize = 6;
const LAST_FAILED_PATHS: usize = 7;
const LAST_DURATION: usize = 8;
const LAST_ADDED: usize = 9;
const REPOSITORY_DAMAGED: usize = 10;
const LAST_CHECK: usize = 11;
const LAST_PRUNE: usize = 12;
const SNAPSHOTS_KEPT: usize = 13;
const RESTORE_LAST_FAILED: usize = 14;
const RESTORE_LAST_FINISHED: usize = 15;
const SOURCE_ANOMALY: usize = 16;
/// By `RESULTS`.
const RUNS: usize = 17;
/// By `FILE_KINDS`.
const LAST_FILES: usize = 20;
/// By `PARTS`.
const REPOSITORY: usize = 23;
/// By `RESULTS`.
const RESTORE_RUNS: usize = 25;
/// By `CHANGE_KINDS`.
const LAST_CHANGES: usize = 28;

const fn column(
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    kind: Kind,
    slot: usize,
) -> Column {
    Column {
        name,
        help,
        unit,
        kind,
        slot,
        label: None,
    }
}

const fn labelled(
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    kind: Kind,
    slot: usize,
    label: (&'static str, &'static [&'static str]),
) -> Column {
    let mut c = column(name, help, unit, kind, slot);
    c.label = Some(label);
    c
}

/// The per-resource families, in the order of the exposition.
static COLUMNS: [Column; 22] = [
    column(
        "unstoppable_backup_last_success_timestamp",
        "Unix time when the last successful backup of a resource finished",
        Some(Unit::Seconds),
        Kind::Float,
        LAST_SUCCESS,
    ),
    column(
        "unstoppable_backup_last_run_timestamp",
        "Unix time when the last backup run of a resource finished, successful or not",
        Some(Unit::Seconds),
        Kind::Float,
        LAST_RUN,
    ),
    column(
        "unstoppable_backup_last_run_success",
        "1 when the last backup run of a resource succeeded completely, 0 when it failed or was incomplete",
        None,
        Kind::Int,
        LAST_RUN_SUCCESS,
    ),
    column(
        "unstoppable_backup_last_failed_paths",
        "Paths the last backup run of a resource could not read (its snapshot is tagged incomplete); 0 after a complete or a failed run",
        None,
        Kind::Int,
        LAST_FAILED_PATHS,
    ),
    column(
        "unstoppable_backup_resource_ready",
        "1 when the resource is scheduled (its CronJob is applied), 0 when it cannot be (see its Ready condition)",
        None,
        Kind::Int,
        READY,
    ),
    column(
        "unstoppable_backup_suspended",
        "1 when backups of the resource are suspended (on the resource or its customer)",
        None,
        Kind::Int,
        SUSPENDED,
    ),
    column(
        "unstoppable_backup_expected_interval",
        "Longest time between two scheduled runs of a resource, from its cron schedule",
        Some(Unit::Seconds),
        Kind::Int,
        EXPECTED_INTERVAL,
    ),
    column(
        "unstoppable_backup_resource_creation_timestamp",
        "Unix time when the BackupResource was created (for the never-succeeded alert)",
        Some(Unit::Seconds),
        Kind::Int,
        CREATED,
    ),
    labelled(
        "unstoppable_backup_runs",
        "Backup runs of a resource by result (success, incomplete, failure)",
        None,
        Kind::Counter,
        RUNS,
        ("result", &RESULT_LABELS),
    ),
    column(
        "unstoppable_backup_last_duration",
        "Duration of the last successful backup run",
        Some(Unit::Seconds),
        Kind::Float,
        LAST_DURATION,
    ),
    column(
        "unstoppable_backup_last_added",
        "Bytes the repository grew by in the last successful backup",
        Some(Unit::Bytes),
        Kind::Int,
        LAST_ADDED,
    ),
    labelled(
        "unstoppable_backup_last_files",
        "Files in the last successful backup by kind (new, changed, unmodified)",
        None,
        Kind::Int,
        LAST_FILES,
        ("kind", &FILE_KINDS),
    ),
    column(
        "unstoppable_backup_repository_damaged",
        "1 when the check after the last backup of a resource found damage in its repository (reason RepositoryDamaged), 0 after a clean check",
        None,
        Kind::Int,
        REPOSITORY_DAMAGED,
    ),
    column(
        "unstoppable_backup_last_check_timestamp",
        "Unix time when the last clean check of a resource's repository finished (all metadata and one slice of the data packs)",
        Some(Unit::Seconds),
        Kind::Float,
        LAST_CHECK,
    ),
    column(
        "unstoppable_backup_last_prune_timestamp",
        "Unix time when the last prune of a resource's repository finished",
        Some(Unit::Seconds),
        Kind::Float,
        LAST_PRUNE,
    ),
    column(
        "unstoppable_backup_snapshots_kept",
        "Snapshots of a resource its retention rules kept after its last successful backup",
        None,
        Kind::Int,
        SNAPSHOTS_KEPT,
    ),
    labelled(
        "unstoppable_backup_repository",
        "Size of a resource's repository after its last run: the hot part on its volume, the packs in the bucket",
        Some(Unit::Bytes),
        Kind::Int,
        REPOSITORY,
        ("part", &PARTS),
    ),
    labelled(
        "unstoppable_restore_runs",
        "Restores (BackupRestore jobs) of a resource by result (success, incomplete, failure)",
        None,
        Kind::Counter,
        RESTORE_RUNS,
        ("result", &RESULT_LABELS),
    ),
    column(
        "unstoppable_restore_last_failed",
        "1 when the last finished restore of a resource failed or could not write every path, 0 when it succeeded",
        None,
        Kind::Int,
        RESTORE_LAST_FAILED,
    ),
    column(
        "unstoppable_restore_last_finished_timestamp",
        "Unix time when the last restore of a resource finished",
        Some(Unit::Seconds),
        Kind::Float,
        RESTORE_LAST_FINISHED,
    ),
    column(
        "unstoppable_source_anomaly",
        "1 while the last anomaly of a resource's source (mass deletion or change, encrypted content, new extensions) is unreleased: its last good snapshot is held; see status.anomaly",
        None,
        Kind::Int,
        SOURCE_ANOMALY,
    ),
    labelled(
        "unstoppable_backup_last_changes",
        "Files of the last successful backup's change profile by change (before, new, changed, deleted, renamed, incompressible, new_extension)",
        None,
        Kind::Int,
        LAST_CHANGES,
        ("change", &CHANGE_KINDS),
    ),
];

/// A count as a gauge's `i64`; counts beyond it read as its maximum.
fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The slot of `result` in a column by `RESULTS`.
fn result_slot(first: usize, result: RunResult) -> usize {
    first + RESULTS.iter().position(|r| *r == result).unwrap_or(0)
}

/// Reconcile durations from 5 ms to about 80 s.
fn reconcile_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 4.0, 8))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registries = Families::default();
        let table = Arc::new(Table::default());
        let m = Self {
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Family::new_with_constructor(reconcile_histogram),
            watch_errors: Family::default(),
            undecodable: Family::default(),
            start_time: FloatGauge::default(),
            leader: Gauge::default(),
            parts: Vec::new(),
            table: table.clone(),
        };
        let r = &mut registries;
        for column in &COLUMNS {
            r.collector(ColumnCollector {
                table: table.clone(),
                column,
            });
        }
        r.register(
            "unstoppable_reconciles",
            "Reconciliations by controller",
            m.reconciles.clone(),
        );
        r.register(
            "unstoppable_reconcile_errors",
            "Failed reconciliations by controller",
            m.reconcile_errors.clone(),
        );
        r.register_with_unit(
            "unstoppable_reconcile_duration",
            "How long reconciliations take, by controller",
            Unit::Seconds,
            m.reconcile_duration.clone(),
        );
        r.register(
            "unstoppable_watch_errors",
            "Errors of the watches (list/watch of the API, objects that cannot be decoded) by controller",
            m.watch_errors.clone(),
        );
        r.register(
            "unstoppable_undecodable_objects",
            "Objects the operator cannot decode and therefore skips, by kind (see its log)",
            m.undecodable.clone(),
        );
        r.register(
            "unstoppable_operator_leader",
            "1 on the replica that reconciles (holds the Lease, or runs without leader election), 0 on a standby",
            m.leader.clone(),
        );
        r.register_with_unit(
            "unstoppable_operator_start_time",
            "Unix time when this operator process started (changes on every restart)",
            Unit::Seconds,
            m.start_time.clone(),
        );
        Self {
            parts: registries.0,
            ..m
        }
    }
}

/// One family of the exposition.
#[derive(Default)]
struct Part {
    registry: Registry,
    /// Length of its last text, to size the next one in one allocation.
    len: AtomicUsize,
}

/// Registers each family in a registry of its own, in order.
#[derive(Default)]
struct Families(Vec<Part>);

impl Families {
    fn next(&mut self) -> &mut Registry {
        self.0.push(Part::default());
        let last = self.0.len() - 1;
        &mut self.0[last].registry
    }

    fn register(&mut self, name: &str, help: &str, metric: impl Metric) {
        self.next().register(name, help, metric);
    }

    fn register_with_unit(&mut self, name: &str, help: &str, unit: Unit, metric: impl Metric) {
        self.next().register_with_unit(name, help, unit, metric);
    }

    fn collector(&mut self, collector: ColumnCollector) {
        self.next().register_collector(Box::new(collector));
    }
}

impl Metrics {
    /// The OpenMetrics text exposition, whole.
    pub fn encode(&self) -> String {
        (0..=self.parts.len())
            .map(|i| self.encode_part(i))
            .collect()
    }

    /// The exposition family by family, each encoded only when it is asked for. A scrape holds
    /// one family's text at a time (at 10,000 resources about 1 MB, against 4 MB for the whole),
    /// and no family is locked while the client reads: each part is encoded at once and
    /// released before it is sent.
    pub fn exposition(self: &Arc<Self>) -> impl Iterator<Item = String> + Send + 'static {
        let metrics = self.clone();
        (0..=self.parts.len()).map(move |i| metrics.encode_part(i))
    }

    /// Family `i`'s text; the one past the last is the end-of-exposition marker.
    fn encode_part(&self, i: usize) -> String {
        use prometheus_client::encoding::text;
        let Some(part) = self.parts.get(i) else {
            let mut eof = String::new();
            let _ = text::encode_eof(&mut eof);
            return eof;
        };
        // Sized from the last one: growing by doubling would hold up to three times the text.
        let last = part.len.load(Ordering::Relaxed);
        let mut out = String::with_capacity(last + last / 16 + 256);
        let _ = text::encode_registry(&mut out, &part.registry);
        part.len.store(out.len(), Ordering::Relaxed);
        out
    }

    /// What the alerts of a resource need before it ever runs: when it was created, how often
    /// it is scheduled, whether it is suspended.
    pub fn set_schedule(
        &self,
        l: &ResourceLabels,
        created: Option<i64>,
        expected_interval: Option<i64>,
        suspended: bool,
    ) {
        self.table.update(l, |row| {
            if let Some(created) = created {
                row.set_int(CREATED, created);
            }
            if let Some(interval) = expected_interval {
                row.set_int(EXPECTED_INTERVAL, interval);
            }
            row.set_int(SUSPENDED, i64::from(suspended));
        });
    }

    /// Whether the resource is scheduled (its CronJob applied).
    pub fn set_ready(&self, l: &ResourceLabels, ready: bool) {
        self.table
            .update(l, |row| row.set_int(READY, i64::from(ready)));
    }

    pub fn reconciled(&self, controller: &str, duration: std::time::Duration) {
        let labels = ControllerLabels {
            controller: controller.into(),
        };
        self.reconciles.get_or_create(&labels).inc();
        self.reconcile_duration
            .get_or_create(&labels)
            .observe(duration.as_secs_f64());
    }

    pub fn set_undecodable(&self, kind: &str, n: usize) {
        self.undecodable
            .get_or_create(&KindLabels { kind: kind.into() })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn watch_failed(&self, controller: &str) {
        self.watch_errors
            .get_or_create(&ControllerLabels {
                controller: controller.into(),
            })
            .inc();
    }

    pub fn reconcile_failed(&self, controller: &str) {
        self.reconcile_errors
            .get_or_create(&ControllerLabels {
                controller: controller.into(),
            })
            .inc();
    }

    /// A finished run: `finished` is its end as Unix seconds; `count` is false when the run was
    /// already counted (e.g. seen again after an operator restart).
    pub fn record_run(
        &self,
        l: &ResourceLabels,
        finished: f64,
        summary: Option<&RunSummary>,
        result: RunResult,
        count: bool,
    ) {
        let success = result == RunResult::Success;
        self.table.update(l, |row| {
            if count {
                row.inc(result_slot(RUNS, result));
            }
            // Jobs are re-read in no particular order after a restart: an older run never
            // overwrites what a newer one recorded.
            if !row.advance(LAST_RUN, finished) {
                return;
            }
            row.set_int(LAST_RUN_SUCCESS, i64::from(success));
            let failed_paths = match (result, summary) {
                (RunResult::Incomplete, Some(s)) => clamp(s.failed_paths.max(1)),
                // An incomplete run that left no summary still lacks at least one path.
                (RunResult::Incomplete, None) => 1,
                _ => 0,
            };
            row.set_int(LAST_FAILED_PATHS, failed_paths);
            // What ran after the snapshot: the check (also when it failed the run), prune,
            // retention.
            if let Some(s) = summary {
                if let Some(check) = &s.check {
                    let damaged = check.error.is_some();
                    row.set_int(REPOSITORY_DAMAGED, i64::from(damaged));
                    if !damaged {
                        row.set_float(LAST_CHECK, finished);
                    }
                }
                if s.prune.as_ref().is_some_and(|p| p.error.is_none()) {
                    row.set_float(LAST_PRUNE, finished);
                }
                if let Some(kept) = s
                    .retention
                    .as_ref()
                    .filter(|r| r.error.is_none())
                    .map(|r| r.kept)
                {
                    row.set_int(SNAPSHOTS_KEPT, clamp(kept));
                }
                if let Some(size) = &s.repository {
                    for (i, n) in [size.hot_bytes, size.cold_bytes].into_iter().enumerate() {
                        row.set_int(REPOSITORY + i, clamp(n));
                    }
                }
            }
            if success {
                row.set_float(LAST_SUCCESS, finished);
                if let Some(s) = summary {
                    row.set_float(LAST_DURATION, s.duration_seconds);
                    row.set_int(LAST_ADDED, clamp(s.bytes_added));
                    for (i, n) in [s.files_new, s.files_changed, s.files_unmodified]
                        .into_iter()
                        .enumerate()
                    {
                        row.set_int(LAST_FILES + i, clamp(n));
                    }
                }
            }
        });
    }

    /// The change profile of the resource's last successful backup.
    pub fn record_changes(&self, l: &ResourceLabels, p: &unstoppable_contract::ChangeProfile) {
        let counts = [
            p.files_before,
            p.files_new,
            p.files_changed,
            p.files_deleted,
            p.files_renamed,
            p.files_incompressible,
            p.files_new_extension,
        ];
        self.table.update(l, |row| {
            for (i, n) in counts.into_iter().enumerate() {
                row.set_int(LAST_CHANGES + i, clamp(n));
            }
        });
    }

    /// Whether the resource has an unreleased anomaly (also restored from its status).
    pub fn set_anomaly(&self, l: &ResourceLabels, on: bool) {
        self.table
            .update(l, |row| row.set_int(SOURCE_ANOMALY, i64::from(on)));
    }

    /// A finished restore of the resource; `count` is false when it was counted already.
    pub fn record_restore(
        &self,
        l: &ResourceLabels,
        finished: f64,
        result: RunResult,
        count: bool,
    ) {
        self.table.update(l, |row| {
            if count {
                row.inc(result_slot(RESTORE_RUNS, result));
            }
            if !row.advance(RESTORE_LAST_FINISHED, finished) {
                return;
            }
            row.set_int(RESTORE_LAST_FAILED, i64::from(result != RunResult::Success));
        });
    }

    /// Restores the last success time from a resource's status (after an operator restart).
    pub fn restore_last_success(&self, l: &ResourceLabels, finished: f64) {
        self.table.update(l, |row| {
            row.advance(LAST_SUCCESS, finished);
        });
    }

    /// Removes every series of resources for which `live` is false, so deleted resources stop
    /// alerting.
    pub fn retain(&self, live: impl Fn(&ResourceLabels) -> bool) {
        self.table.retain(live);
    }

    pub fn remove(&self, l: &ResourceLabels) {
        self.table.remove(l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(r: &str) -> ResourceLabels {
        ResourceLabels {
            namespace: "ns".into(),
            customer: "acme".into(),
            resource: r.into(),
        }
    }

    #[test]
    fn a_scrape_in_progress_blocks_no_update_and_sends_one_family_at_a_time() {
        let m = Arc::new(Metrics::default());
        for i in 0..50 {
            let l = labels(&format!("site-{i}"));
            m.set_schedule(&l, Some(1_000), Some(86_400), false);
            m.set_ready(&l, true);
        }
        let whole = m.encode();
        let mut parts = m.exposition();
        let first = parts.next().unwrap_or_default();
        // A client reading slowly holds the scrape here; reconciles must still create series
        // (a family locked across the read stopped every reconcile at thousands of resources).
        m.set_ready(&labels("late"), true);
        m.record_run(&labels("late"), 1_000.0, None, RunResult::Success, true);
        let rest: Vec<String> = parts.collect();
        assert!(
            rest.len() > 10,
            "one part per family, got {}",
            rest.len() + 1
        );
        let largest = rest.iter().map(String::len).max().unwrap_or(0);
        assert!(
            largest < whole.len() / 2,
            "a part of {largest} bytes out of {}",
            whole.len()
        );
        let streamed = first + &rest.concat();
        assert!(streamed.ends_with("# EOF\n"), "{streamed}");
        assert!(
            streamed.contains(r#"unstoppable_backup_last_run_success{namespace="ns",customer="acme",resource="late"} 1"#),
            "{streamed}"
        );
        assert_eq!(m.exposition().collect::<String>(), m.encode());
    }

    #[test]
    fn an_older_run_read_after_a_newer_one_moves_no_gauge_back() {
        let m = Metrics::default();
        let l = labels("www");
        m.record_run(&l, 2_000.0, None, RunResult::Success, true);
        m.record_run(&l, 1_000.0, None, RunResult::Failed, true);
        let text = m.encode();
        for needle in [
            r#"unstoppable_backup_last_success_timestamp_seconds{namespace="ns",customer="acme",resource="www"} 2000.0"#,
            r#"unstoppable_backup_last_run_timestamp_seconds{namespace="ns",customer="acme",resource="www"} 2000.0"#,
            r#"unstoppable_backup_last_run_success{namespace="ns",customer="acme",resource="www"} 1"#,
            r#"unstoppable_backup_runs_total{namespace="ns",customer="acme",resource="www",result="failure"} 1"#,
        ] {
            assert!(text.contains(needle), "missing {needle}\n{text}");
        }
    }

    #[test]
    fn what_ran_after_the_snapshot_is_exported_and_damage_clears_with_a_clean_check() {
        use unstoppable_contract::{CheckOutcome, PruneOutcome, RetentionOutcome};
        let m = Metrics::default();
        let damaged = RunSummary {
            reason: Some("RepositoryDamaged".into()),
            check: Some(CheckOutcome {
                slice: "2/30".into(),
                error: Some("pack abc: hash mismatch".into()),
            }),
            ..Default::default()
        };
        m.record_run(
            &labels("www"),
            1_000.0,
            Some(&damaged),
            RunResult::Failed,
            true,
        );
        let text = m.encode();
        assert!(
            text.contains(r#"unstoppable_backup_repository_damaged{namespace="ns",customer="acme",resource="www"} 1"#),
            "{text}"
        );
        assert!(
            !text.contains("unstoppable_backup_last_check_timestamp_seconds{"),
            "{text}"
        );
        let clean = RunSummary {
            success: true,
            check: Some(CheckOutcome {
                slice: "3/30".into(),
                error: None,
            }),
            prune: Some(PruneOutcome::default()),
            retention: Some(RetentionOutcome {
                kept: 9,
                removed: 1,
                error: None,
            }),
            repository: Some(unstoppable_contract::RepositorySize {
                hot_bytes: 300,
                cold_bytes: 5000,
            }),
            ..Default::default()
        };
        m.record_run(
            &labels("www"),
            2_000.0,
            Some(&clean),
            RunResult::Success,
            true,
        );
        let text = m.encode();
        for needle in [
            r#"unstoppable_backup_repository_damaged{namespace="ns",customer="acme",resource="www"} 0"#,
            r#"unstoppable_backup_last_check_timestamp_seconds{namespace="ns",customer="acme",resource="www"} 2000.0"#,
            r#"unstoppable_backup_last_prune_timestamp_seconds{namespace="ns",customer="acme",resource="www"} 2000.0"#,
            r#"unstoppable_backup_snapshots_kept{namespace="ns",customer="acme",resource="www"} 9"#,
            r#"unstoppable_backup_repository_bytes{namespace="ns",customer="acme",resource="www",part="cold"} 5000"#,
        ] {
            assert!(text.contains(needle), "missing {needle}\n{text}");
        }
    }

    /// A resource with every kind of series: schedule, a run with a full summary, a change
    /// profile, a restore, an anomaly.
    fn busy(m: &Metrics, l: &ResourceLabels) {
        use unstoppable_contract::{CheckOutcome, PruneOutcome, RepositorySize, RetentionOutcome};
        m.set_schedule(l, Some(1_600_000_000), Some(86_400), false);
        m.set_ready(l, true);
        let summary = RunSummary {
            success: true,
            duration_seconds: 12.5,
            bytes_added: 4096,
            files_new: 3,
            files_changed: 2,
            files_unmodified: 1,
            check: Some(CheckOutcome {
                slice: "1/30".into(),
                error: None,
            }),
            prune: Some(PruneOutcome::default()),
            retention: Some(RetentionOutcome {
                kept: 9,
                removed: 1,
                error: None,
            }),
            repository: Some(RepositorySize {
                hot_bytes: 300,
                cold_bytes: 5000,
            }),
            ..Default::default()
        };
        m.record_run(l, 1_700_000_000.5, Some(&summary), RunResult::Success, true);
        m.record_run(l, 1_600_000_000.0, None, RunResult::Failed, true);
        m.record_changes(
            l,
            &unstoppable_contract::ChangeProfile {
                files_before: 10,
                files_new: 3,
                ..Default::default()
            },
        );
        m.record_restore(l, 1_700_000_100.0, RunResult::Incomplete, true);
        m.set_anomaly(l, true);
    }

    #[test]
    fn every_column_has_slots_of_its_own_within_a_row() {
        let mut used = 0u64;
        for c in &COLUMNS {
            for slot in c.slot..c.slot + c.slots() {
                assert!(slot < crate::series::SLOTS, "{}: slot {slot}", c.name);
                assert_eq!(used & (1 << slot), 0, "{}: slot {slot} is taken", c.name);
                used |= 1 << slot;
            }
        }
        // Every slot is some column's: SLOTS is no larger than it needs to be.
        assert_eq!(used.count_ones() as usize, crate::series::SLOTS);
    }

    #[test]
    fn a_resource_is_one_row_whatever_its_series() {
        let m = Metrics::default();
        busy(&m, &labels("www"));
        busy(&m, &labels("db"));
        assert_eq!(m.table.len(), 2);
        m.remove(&labels("www"));
        assert_eq!(m.table.len(), 1);
        let text = m.encode();
        assert!(!text.contains(r#"resource="www""#), "{text}");
        assert!(text.contains(r#"resource="db""#), "{text}");
    }

    #[test]
    fn result_labels_are_the_results_names() {
        assert_eq!(RESULTS.map(|r| r.as_str()), RESULT_LABELS);
    }

    /// Each per-resource family reads exactly as prometheus-client's own `Family` of the same
    /// series would (help, unit suffix, type, `_total`, label order, number format), so
    /// dashboards and alert rules see no difference.
    #[test]
    fn each_family_encodes_as_prometheus_clients_own() {
        use prometheus_client::encoding::text::encode_registry;
        let m = Metrics::default();
        let resources = [labels("www"), labels("db")];
        for l in &resources {
            busy(&m, l);
        }
        type Labels = Vec<(String, String)>;
        for (i, c) in COLUMNS.iter().enumerate() {
            let mut reference = Registry::default();
            let int: Family<Labels, Gauge> = Family::default();
            let float: Family<Labels, FloatGauge> = Family::default();
            let counter: Family<Labels, Counter> = Family::default();
            let mut series = 0;
            for l in &resources {
                let values = c.label.map_or(&[""][..], |(_, v)| v);
                for (j, value) in values.iter().enumerate() {
                    let Some(bits) = m.table.get(l, c.slot + j) else {
                        continue;
                    };
                    series += 1;
                    let mut set: Labels = vec![
                        ("namespace".into(), l.namespace.to_string()),
                        ("customer".into(), l.customer.to_string()),
                        ("resource".into(), l.resource.to_string()),
                    ];
                    if let Some((name, _)) = c.label {
                        set.push((name.into(), value.to_string()));
                    }
                    match c.kind {
                        Kind::Int => {
                            int.get_or_create(&set).set(bits as i64);
                        }
                        Kind::Float => {
                            float.get_or_create(&set).set(f64::from_bits(bits));
                        }
                        Kind::Counter => {
                            counter.get_or_create(&set).inc_by(bits);
                        }
                    }
                }
            }
            assert!(series > 0, "{} has no series in the test", c.name);
            fn register(r: &mut Registry, c: &Column, metric: impl Metric) {
                match &c.unit {
                    Some(unit) => r.register_with_unit(c.name, c.help, unit.clone(), metric),
                    None => r.register(c.name, c.help, metric),
                }
            }
            match c.kind {
                Kind::Int => register(&mut reference, c, int),
                Kind::Float => register(&mut reference, c, float),
                Kind::Counter => register(&mut reference, c, counter),
            }
            let mut expected = String::new();
            encode_registry(&mut expected, &reference).expect("encodes");
            let ours = m.encode_part(i);
            let sorted = |t: &str| {
                let mut lines: Vec<String> = t.lines().map(String::from).collect();
                lines.sort();
                lines
            };
            assert_eq!(sorted(&ours), sorted(&expected), "family {}", c.name);
        }
    }

    #[test]
    fn series_with_only_a_creation_time_or_a_last_success_are_swept_too() {
        let m = Metrics::default();
        m.set_schedule(&labels("a"), Some(1), None, false);
        m.restore_last_success(&labels("b"), 5.0);
        m.retain(|_| false);
        let text = m.encode();
        assert!(
            !text.contains(r#"resource="a""#) && !text.contains(r#"resource="b""#),
            "{text}"
        );
    }

    #[test]
    fn runs_are_exposed_and_deleted_resources_disappear() {
        let m = Metrics::default();
        let summary = RunSummary {
            success: true,
            duration_seconds: 12.5,
            bytes_added: 4096,
            files_new: 3,
            ..Default::default()
        };
        m.set_schedule(&labels("www"), None, Some(86400), false);
        m.record_run(
            &labels("www"),
            1_700_000_000.0,
            Some(&summary),
            RunResult::Success,
            true,
        );
        m.record_run(
            &labels("db"),
            1_700_000_100.0,
            None,
            RunResult::Failed,
            true,
        );
        let incomplete = RunSummary {
            result: Some(RunResult::Incomplete),
            failed_paths: 7,
            ..Default::default()
        };
        m.record_run(
            &labels("ftp"),
            1_700_000_200.0,
            Some(&incomplete),
            RunResult::Incomplete,
            true,
        );
        let text = m.encode();
        for needle in [
            r#"unstoppable_backup_last_success_timestamp_seconds{namespace="ns",customer="acme",resource="www"} 1700000000.0"#,
            r#"unstoppable_backup_runs_total{namespace="ns",customer="acme",resource="www",result="success"} 1"#,
            r#"unstoppable_backup_runs_total{namespace="ns",customer="acme",resource="db",result="failure"} 1"#,
            r#"unstoppable_backup_last_run_success{namespace="ns",customer="acme",resource="db"} 0"#,
            r#"unstoppable_backup_last_added_bytes{namespace="ns",customer="acme",resource="www"} 4096"#,
            r#"unstoppable_backup_last_files{namespace="ns",customer="acme",resource="www",kind="new"} 3"#,
            r#"unstoppable_backup_expected_interval_seconds{namespace="ns",customer="acme",resource="www"} 86400"#,
            r#"unstoppable_backup_runs_total{namespace="ns",customer="acme",resource="ftp",result="incomplete"} 1"#,
            r#"unstoppable_backup_last_failed_paths{namespace="ns",customer="acme",resource="ftp"} 7"#,
            r#"unstoppable_backup_last_run_success{namespace="ns",customer="acme",resource="ftp"} 0"#,
            r#"unstoppable_backup_last_failed_paths{namespace="ns",customer="acme",resource="www"} 0"#,
        ] {
            assert!(text.contains(needle), "missing {needle}\n{text}");
        }
        m.retain(|l| *l == labels("www"));
        let text = m.encode();
        assert!(!text.contains(r#"resource="db""#), "{text}");
        assert!(text.contains(r#"resource="www""#));
        assert!(!text.contains(r#"resource="ftp""#), "{text}");
    }
}
