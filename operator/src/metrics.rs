//! Prometheus metrics, registered in one place and handed to the controllers (no globals).
//!
//! Missed-backup alerts are computed by Prometheus from `last_success_timestamp` and
//! `expected_interval`, so they fire even when a job never starts.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry, Unit};
use unstoppable_contract::{RunResult, RunSummary};

/// The labels of every per-resource series. Shared strings: a resource has a dozen series, and at
/// thousands of resources copies of the same three names were a good part of the operator's memory.
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
pub struct RunLabels {
    pub namespace: Arc<str>,
    pub customer: Arc<str>,
    pub resource: Arc<str>,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FileLabels {
    pub namespace: Arc<str>,
    pub customer: Arc<str>,
    pub resource: Arc<str>,
    pub kind: &'static str,
}

/// A part of a resource's repository: `hot` or `cold`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartLabels {
    pub namespace: Arc<str>,
    pub customer: Arc<str>,
    pub resource: Arc<str>,
    pub part: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChangeLabels {
    pub namespace: Arc<str>,
    pub customer: Arc<str>,
    pub resource: Arc<str>,
    pub change: &'static str,
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
    /// The labels of every resource with series, each once: the families' keys share their
    /// strings, and the sweep of deleted resources reads this set instead of the exposition.
    series: Mutex<HashSet<ResourceLabels>>,
    last_success: Family<ResourceLabels, FloatGauge>,
    last_run: Family<ResourceLabels, FloatGauge>,
    last_run_success: Family<ResourceLabels, Gauge>,
    last_failed_paths: Family<ResourceLabels, Gauge>,
    ready: Family<ResourceLabels, Gauge>,
    suspended: Family<ResourceLabels, Gauge>,
    expected_interval: Family<ResourceLabels, Gauge>,
    created: Family<ResourceLabels, Gauge>,
    runs: Family<RunLabels, Counter>,
    last_duration: Family<ResourceLabels, FloatGauge>,
    last_added: Family<ResourceLabels, Gauge>,
    last_files: Family<FileLabels, Gauge>,
    repository_damaged: Family<ResourceLabels, Gauge>,
    last_check: Family<ResourceLabels, FloatGauge>,
    last_prune: Family<ResourceLabels, FloatGauge>,
    snapshots_kept: Family<ResourceLabels, Gauge>,
    repository_bytes: Family<PartLabels, Gauge>,
    restore_runs: Family<RunLabels, Counter>,
    restore_last_failed: Family<ResourceLabels, Gauge>,
    restore_last_finished: Family<ResourceLabels, FloatGauge>,
    source_anomaly: Family<ResourceLabels, Gauge>,
    last_changes: Family<ChangeLabels, Gauge>,
    pub reconciles: Family<ControllerLabels, Counter>,
    pub reconcile_errors: Family<ControllerLabels, Counter>,
    pub reconcile_duration: Family<ControllerLabels, Histogram, fn() -> Histogram>,
    pub watch_errors: Family<ControllerLabels, Counter>,
    pub undecodable: Family<KindLabels, Gauge>,
    pub start_time: FloatGauge,
    pub leader: Gauge,
}

pub const RESULTS: [RunResult; 3] = [RunResult::Success, RunResult::Incomplete, RunResult::Failed];
const FILE_KINDS: [&str; 3] = ["new", "changed", "unmodified"];
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

/// Reconcile durations from 5 ms to about 80 s.
fn reconcile_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 4.0, 8))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registries = Families::default();
        let m = Self {
            last_success: Family::default(),
            last_run: Family::default(),
            last_run_success: Family::default(),
            last_failed_paths: Family::default(),
            ready: Family::default(),
            suspended: Family::default(),
            expected_interval: Family::default(),
            created: Family::default(),
            runs: Family::default(),
            last_duration: Family::default(),
            last_added: Family::default(),
            last_files: Family::default(),
            repository_damaged: Family::default(),
            last_check: Family::default(),
            last_prune: Family::default(),
            snapshots_kept: Family::default(),
            repository_bytes: Family::default(),
            restore_runs: Family::default(),
            restore_last_failed: Family::default(),
            restore_last_finished: Family::default(),
            source_anomaly: Family::default(),
            last_changes: Family::default(),
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Family::new_with_constructor(reconcile_histogram),
            watch_errors: Family::default(),
            undecodable: Family::default(),
            start_time: FloatGauge::default(),
            leader: Gauge::default(),
            parts: Vec::new(),
            series: Mutex::default(),
        };
        let r = &mut registries;
        r.register_with_unit(
            "unstoppable_backup_last_success_timestamp",
            "Unix time when the last successful backup of a resource finished",
            Unit::Seconds,
            m.last_success.clone(),
        );
        r.register_with_unit(
            "unstoppable_backup_last_run_timestamp",
            "Unix time when the last backup run of a resource finished, successful or not",
            Unit::Seconds,
            m.last_run.clone(),
        );
        r.register(
            "unstoppable_backup_last_run_success",
            "1 when the last backup run of a resource succeeded completely, 0 when it failed or was incomplete",
            m.last_run_success.clone(),
        );
        r.register(
            "unstoppable_backup_last_failed_paths",
            "Paths the last backup run of a resource could not read (its snapshot is tagged incomplete); 0 after a complete or a failed run",
            m.last_failed_paths.clone(),
        );
        r.register(
            "unstoppable_backup_resource_ready",
            "1 when the resource is scheduled (its CronJob is applied), 0 when it cannot be (see its Ready condition)",
            m.ready.clone(),
        );
        r.register(
            "unstoppable_backup_suspended",
            "1 when backups of the resource are suspended (on the resource or its customer)",
            m.suspended.clone(),
        );
        r.register_with_unit(
            "unstoppable_backup_expected_interval",
            "Longest time between two scheduled runs of a resource, from its cron schedule",
            Unit::Seconds,
            m.expected_interval.clone(),
        );
        r.register_with_unit(
            "unstoppable_backup_resource_creation_timestamp",
            "Unix time when the BackupResource was created (for the never-succeeded alert)",
            Unit::Seconds,
            m.created.clone(),
        );
        r.register(
            "unstoppable_backup_runs",
            "Backup runs of a resource by result (success, incomplete, failure)",
            m.runs.clone(),
        );
        r.register_with_unit(
            "unstoppable_backup_last_duration",
            "Duration of the last successful backup run",
            Unit::Seconds,
            m.last_duration.clone(),
        );
        r.register_with_unit(
            "unstoppable_backup_last_added",
            "Bytes the repository grew by in the last successful backup",
            Unit::Bytes,
            m.last_added.clone(),
        );
        r.register(
            "unstoppable_backup_last_files",
            "Files in the last successful backup by kind (new, changed, unmodified)",
            m.last_files.clone(),
        );
        r.register(
            "unstoppable_backup_repository_damaged",
            "1 when the check after the last backup of a resource found damage in its repository (reason RepositoryDamaged), 0 after a clean check",
            m.repository_damaged.clone(),
        );
        r.register_with_unit(
            "unstoppable_backup_last_check_timestamp",
            "Unix time when the last clean check of a resource's repository finished (all metadata and one slice of the data packs)",
            Unit::Seconds,
            m.last_check.clone(),
        );
        r.register_with_unit(
            "unstoppable_backup_last_prune_timestamp",
            "Unix time when the last prune of a resource's repository finished",
            Unit::Seconds,
            m.last_prune.clone(),
        );
        r.register(
            "unstoppable_backup_snapshots_kept",
            "Snapshots of a resource its retention rules kept after its last successful backup",
            m.snapshots_kept.clone(),
        );
        r.register_with_unit(
            "unstoppable_backup_repository",
            "Size of a resource's repository after its last run: the hot part on its volume, the packs in the bucket",
            Unit::Bytes,
            m.repository_bytes.clone(),
        );
        r.register(
            "unstoppable_restore_runs",
            "Restores (BackupRestore jobs) of a resource by result (success, incomplete, failure)",
            m.restore_runs.clone(),
        );
        r.register(
            "unstoppable_restore_last_failed",
            "1 when the last finished restore of a resource failed or could not write every path, 0 when it succeeded",
            m.restore_last_failed.clone(),
        );
        r.register_with_unit(
            "unstoppable_restore_last_finished_timestamp",
            "Unix time when the last restore of a resource finished",
            Unit::Seconds,
            m.restore_last_finished.clone(),
        );
        r.register(
            "unstoppable_source_anomaly",
            "1 while the last anomaly of a resource's source (mass deletion or change, encrypted content, new extensions) is unreleased: its last good snapshot is held; see status.anomaly",
            m.source_anomaly.clone(),
        );
        r.register(
            "unstoppable_backup_last_changes",
            "Files of the last successful backup's change profile by change (before, new, changed, deleted, renamed, incompressible, new_extension)",
            m.last_changes.clone(),
        );
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

    /// The shared copy of `l`, recorded as a resource with series.
    fn intern(&self, l: &ResourceLabels) -> ResourceLabels {
        let Ok(mut series) = self.series.lock() else {
            return l.clone();
        };
        if let Some(known) = series.get(l) {
            return known.clone();
        }
        series.insert(l.clone());
        l.clone()
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
        let l = &self.intern(l);
        if let Some(created) = created {
            self.created.get_or_create(l).set(created);
        }
        if let Some(interval) = expected_interval {
            self.expected_interval.get_or_create(l).set(interval);
        }
        self.suspended.get_or_create(l).set(i64::from(suspended));
    }

    /// Whether the resource is scheduled (its CronJob applied).
    pub fn set_ready(&self, l: &ResourceLabels, ready: bool) {
        let l = &self.intern(l);
        self.ready.get_or_create(l).set(i64::from(ready));
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
        let l = &self.intern(l);
        let success = result == RunResult::Success;
        if count {
            self.runs
                .get_or_create(&run_labels(l, result.as_str()))
                .inc();
        }
        // Jobs are re-read in no particular order after a restart: an older run never
        // overwrites what a newer one recorded.
        let last_run = self.last_run.get_or_create(l);
        if finished < last_run.get() {
            return;
        }
        last_run.set(finished);
        drop(last_run);
        self.last_run_success
            .get_or_create(l)
            .set(i64::from(success));
        let failed_paths = match (result, summary) {
            (RunResult::Incomplete, Some(s)) => {
                i64::try_from(s.failed_paths.max(1)).unwrap_or(i64::MAX)
            }
            // An incomplete run that left no summary still lacks at least one path.
            (RunResult::Incomplete, None) => 1,
            _ => 0,
        };
        self.last_failed_paths.get_or_create(l).set(failed_paths);
        // What ran after the snapshot: the check (also when it failed the run), prune, retention.
        if let Some(s) = summary {
            if let Some(check) = &s.check {
                let damaged = check.error.is_some();
                self.repository_damaged
                    .get_or_create(l)
                    .set(i64::from(damaged));
                if !damaged {
                    self.last_check.get_or_create(l).set(finished);
                }
            }
            if s.prune.as_ref().is_some_and(|p| p.error.is_none()) {
                self.last_prune.get_or_create(l).set(finished);
            }
            if let Some(kept) = s
                .retention
                .as_ref()
                .filter(|r| r.error.is_none())
                .map(|r| r.kept)
            {
                self.snapshots_kept
                    .get_or_create(l)
                    .set(i64::try_from(kept).unwrap_or(i64::MAX));
            }
            if let Some(size) = &s.repository {
                for (part, bytes) in [("hot", size.hot_bytes), ("cold", size.cold_bytes)] {
                    self.repository_bytes
                        .get_or_create(&part_labels(l, part))
                        .set(i64::try_from(bytes).unwrap_or(i64::MAX));
                }
            }
        }
        if success {
            self.last_success.get_or_create(l).set(finished);
            if let Some(s) = summary {
                self.last_duration.get_or_create(l).set(s.duration_seconds);
                self.last_added
                    .get_or_create(l)
                    .set(i64::try_from(s.bytes_added).unwrap_or(i64::MAX));
                for (kind, n) in
                    FILE_KINDS
                        .iter()
                        .zip([s.files_new, s.files_changed, s.files_unmodified])
                {
                    self.last_files
                        .get_or_create(&file_labels(l, kind))
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
            }
        }
    }

    /// The change profile of the resource's last successful backup.
    pub fn record_changes(&self, l: &ResourceLabels, p: &unstoppable_contract::ChangeProfile) {
        let l = &self.intern(l);
        let counts = [
            p.files_before,
            p.files_new,
            p.files_changed,
            p.files_deleted,
            p.files_renamed,
            p.files_incompressible,
            p.files_new_extension,
        ];
        for (change, n) in CHANGE_KINDS.iter().zip(counts) {
            self.last_changes
                .get_or_create(&change_labels(l, change))
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Whether the resource has an unreleased anomaly (also restored from its status).
    pub fn set_anomaly(&self, l: &ResourceLabels, on: bool) {
        let l = &self.intern(l);
        self.source_anomaly.get_or_create(l).set(i64::from(on));
    }

    /// A finished restore of the resource; `count` is false when it was counted already.
    pub fn record_restore(
        &self,
        l: &ResourceLabels,
        finished: f64,
        result: RunResult,
        count: bool,
    ) {
        let l = &self.intern(l);
        if count {
            self.restore_runs
                .get_or_create(&run_labels(l, result.as_str()))
                .inc();
        }
        let last = self.restore_last_finished.get_or_create(l);
        if finished < last.get() {
            return;
        }
        last.set(finished);
        drop(last);
        self.restore_last_failed
            .get_or_create(l)
            .set(i64::from(result != RunResult::Success));
    }

    /// Restores the last success time from a resource's status (after an operator restart).
    pub fn restore_last_success(&self, l: &ResourceLabels, finished: f64) {
        let l = &self.intern(l);
        let gauge = self.last_success.get_or_create(l);
        if gauge.get() < finished {
            gauge.set(finished);
        }
    }

    /// Removes every series of resources for which `live` is false, so deleted resources stop
    /// alerting.
    pub fn retain(&self, live: impl Fn(&ResourceLabels) -> bool) {
        let stale: Vec<ResourceLabels> = self.known().into_iter().filter(|l| !live(l)).collect();
        for l in stale {
            self.remove(&l);
        }
    }

    pub fn remove(&self, l: &ResourceLabels) {
        if let Ok(mut series) = self.series.lock() {
            series.remove(l);
        }
        self.last_success.remove(l);
        self.last_run.remove(l);
        self.last_run_success.remove(l);
        self.last_failed_paths.remove(l);
        self.ready.remove(l);
        self.suspended.remove(l);
        self.expected_interval.remove(l);
        self.created.remove(l);
        self.last_duration.remove(l);
        self.last_added.remove(l);
        self.repository_damaged.remove(l);
        self.last_check.remove(l);
        self.last_prune.remove(l);
        self.snapshots_kept.remove(l);
        self.restore_last_failed.remove(l);
        self.restore_last_finished.remove(l);
        self.source_anomaly.remove(l);
        for change in CHANGE_KINDS {
            self.last_changes.remove(&change_labels(l, change));
        }
        for result in RESULTS {
            self.runs.remove(&run_labels(l, result.as_str()));
            self.restore_runs.remove(&run_labels(l, result.as_str()));
        }
        for kind in FILE_KINDS {
            self.last_files.remove(&file_labels(l, kind));
        }
        for part in ["hot", "cold"] {
            self.repository_bytes.remove(&part_labels(l, part));
        }
    }

    /// Resources with any series of any per-resource family.
    fn known(&self) -> HashSet<ResourceLabels> {
        self.series.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

fn run_labels(l: &ResourceLabels, result: &'static str) -> RunLabels {
    RunLabels {
        namespace: l.namespace.clone(),
        customer: l.customer.clone(),
        resource: l.resource.clone(),
        result,
    }
}

fn part_labels(l: &ResourceLabels, part: &'static str) -> PartLabels {
    PartLabels {
        namespace: l.namespace.clone(),
        customer: l.customer.clone(),
        resource: l.resource.clone(),
        part,
    }
}

fn change_labels(l: &ResourceLabels, change: &'static str) -> ChangeLabels {
    ChangeLabels {
        namespace: l.namespace.clone(),
        customer: l.customer.clone(),
        resource: l.resource.clone(),
        change,
    }
}

fn file_labels(l: &ResourceLabels, kind: &'static str) -> FileLabels {
    FileLabels {
        namespace: l.namespace.clone(),
        customer: l.customer.clone(),
        resource: l.resource.clone(),
        kind,
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

    #[test]
    fn the_series_of_a_resource_share_one_copy_of_its_labels() {
        let m = Metrics::default();
        let first = m.intern(&labels("www"));
        let again = m.intern(&labels("www"));
        assert!(Arc::ptr_eq(&first.resource, &again.resource));
        assert!(Arc::ptr_eq(&first.namespace, &again.namespace));
        m.remove(&labels("www"));
        assert!(m.known().is_empty());
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
